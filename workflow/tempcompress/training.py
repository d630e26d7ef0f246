"""Contrastive fine-tuning with the sentence-transformers trainer, plus soups and pruning.

Positive pairs come from unlabeled documents: two different random crops of one document
(``crop``) or the same crop twice, made different by dropout (``dropout``, SimCSE-style).
In-batch negatives with ``MultipleNegativesRankingLoss(scale=1/tau)`` give InfoNCE at
temperature tau.  Checkpoints go to a folder outside the rule's declared outputs, so a
killed job resumes where it stopped.
"""

from __future__ import annotations

import csv
import math
import random
import shutil
from pathlib import Path
from typing import Any

from .config import RunSpec


class TrainingDivergedError(RuntimeError):
    """Training produced a NaN/inf loss or NaN/inf embeddings."""


# ----------------------------------------------------------------------------------------
# positive pairs


def make_pairs(
    docs: list[tuple[str, ...]], n_pairs: int, augmentation: str, crop_sentences: int, seed: int
) -> tuple[list[str], list[str]]:
    """(anchors, positives): two different crops of one document, or one crop twice (dropout)."""
    rng = random.Random(seed)
    need = 2 * crop_sentences if augmentation == "crop" else crop_sentences
    eligible = [d for d in docs if len(d) >= need]
    if not eligible:
        raise ValueError(f"no training document has the {need} sentences a '{augmentation}' pair needs")
    anchors, positives = [], []
    for _ in range(n_pairs):
        doc = rng.choice(eligible)
        starts = range(len(doc) - crop_sentences + 1)
        if augmentation == "crop":
            i, j = rng.sample(starts, 2)
            anchors.append(" ".join(doc[i : i + crop_sentences]))
            positives.append(" ".join(doc[j : j + crop_sentences]))
        elif augmentation == "dropout":
            i = rng.choice(starts)
            text = " ".join(doc[i : i + crop_sentences])
            anchors.append(text)
            positives.append(text)
        else:
            raise ValueError(f"unknown augmentation '{augmentation}' (crop or dropout)")
    return anchors, positives


# ----------------------------------------------------------------------------------------
# losses


def build_loss(model: Any, spec: RunSpec, native_dim: int, target_dims: list[int]) -> Any:
    """The training loss of a run's kind (InfoNCE, multi-temperature, Matryoshka, ...)."""
    from sentence_transformers.sentence_transformer.losses import (
        Matryoshka2dLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    from .losses import MultiTemperatureLoss

    if spec.kind in ("infonce", "sparse"):
        return MultipleNegativesRankingLoss(model, scale=1.0 / float(spec.tau))
    if spec.kind == "multi_temperature":
        prefixes = list(spec.prefix_dims) or None
        return MultiTemperatureLoss(model, [float(t) for t in spec.taus], prefixes)
    mrl_dims = sorted({native_dim, *[d for d in target_dims if d < native_dim]}, reverse=True)
    inner = MultipleNegativesRankingLoss(model, scale=1.0 / float(spec.tau))
    if spec.kind == "matryoshka":
        return MatryoshkaLoss(model, inner, matryoshka_dims=mrl_dims)
    if spec.kind == "matryoshka2d":
        return Matryoshka2dLoss(model, inner, matryoshka_dims=mrl_dims)
    raise ValueError(f"run kind '{spec.kind}' is not trained with a loss")


# ----------------------------------------------------------------------------------------
# the training loop (sentence-transformers trainer)


def _callbacks(spec: RunSpec, masks: dict[str, Any] | None) -> list[Any]:
    from transformers import TrainerCallback

    class StopOnDivergence(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"run '{spec.run_id}' (tau={spec.tau_label}) diverged: loss is {loss} at step "
                    f"{state.global_step}. Raise the temperature or lower the learning rate; "
                    "`snakemake --keep-going` finishes the other runs."
                )

    class KeepPruned(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            apply_masks(model, masks)

    cbs: list[Any] = [StopOnDivergence()]
    if masks:
        cbs.append(KeepPruned())
    return cbs


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint in a folder, if any."""
    ckpts = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[1])) if ckpts else None


def fine_tune(
    model: Any,
    spec: RunSpec,
    training: dict[str, Any],
    docs: list[tuple[str, ...]],
    checkpoint_dir: Path,
    target_dims: list[int],
    masks: dict[str, Any] | None = None,
    steps: int | None = None,
) -> list[dict[str, Any]]:
    """Fine-tune ``model`` in place; returns the trainer's log history (loss per step)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    from .models import freeze_all_but_top

    seed = int(spec.seed)
    set_seed(seed)
    steps = steps or spec.steps or training["steps"]
    model.max_seq_length = training["max_seq_length"]
    layers = spec.trainable_layers or training.get("trainable_layers")
    if layers:
        freeze_all_but_top(model, layers)
    anchors, positives = make_pairs(
        docs, steps * training["batch_size"], spec.augmentation, training["crop_sentences"], seed
    )
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    dim = model.get_embedding_dimension()
    loss = build_loss(model, spec, dim, target_dims)
    cuda = torch.cuda.is_available()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=steps,
        per_device_train_batch_size=training["batch_size"],
        learning_rate=training["learning_rate"],
        warmup_steps=training["warmup_ratio"],  # a float < 1 is a ratio of max_steps (transformers 5)
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN loss must reach StopOnDivergence, not be averaged away
        save_strategy="steps",
        save_steps=training["checkpoint_steps"],
        save_total_limit=1,
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda and training.get("precision") == "bf16",
        fp16=cuda and training.get("precision") == "fp16",
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=_callbacks(spec, masks)
    )
    resume = latest_checkpoint(checkpoint_dir)
    if resume is not None:
        print(f"resuming {spec.run_id} from {resume}", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return [h for h in trainer.state.log_history if "loss" in h]


def write_loss_curve(history: list[dict[str, Any]], path: Path, spec: RunSpec) -> None:
    """The training loss per logged step as CSV (run, tau, step, loss, learning_rate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "variant", "tau", "seed", "step", "loss", "learning_rate"])
        for h in history:
            w.writerow([spec.run_id, spec.variant, spec.tau_label, spec.seed, h.get("step"), h["loss"],
                        h.get("learning_rate")])


def check_finite_history(history: list[dict[str, Any]], spec: RunSpec) -> None:
    bad = [h for h in history if not math.isfinite(h["loss"])]
    if bad:
        raise TrainingDivergedError(
            f"run '{spec.run_id}' (tau={spec.tau_label}) diverged: loss {bad[0]['loss']} at step {bad[0].get('step')}"
        )


# ----------------------------------------------------------------------------------------
# model soup


def average_state_dicts(state_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Element-wise mean of floating-point tensors (others are taken from the first)."""
    out = {}
    for key, first in state_dicts[0].items():
        if first.is_floating_point():
            out[key] = sum(sd[key].double() for sd in state_dicts).div(len(state_dicts)).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def make_soup(parent_dirs: list[Path], device: str = "cpu") -> Any:
    """A model whose weights are the mean of the parents' (a uniform model soup)."""
    from .models import load_trained

    models = [load_trained(p, device=device) for p in parent_dirs]
    soup = models[0]
    soup.load_state_dict(average_state_dicts([m.state_dict() for m in models]))
    return soup


# ----------------------------------------------------------------------------------------
# SparseCSE-style pruning


def alignment_uniformity_loss(a: Any, b: Any, t: float = 2.0) -> Any:
    """Wang & Isola (2020): alignment E||f(x)-f(x+)||^2 + uniformity log E exp(-t||f(x)-f(y)||^2)."""
    import torch
    import torch.nn.functional as F

    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    align = (a - b).pow(2).sum(-1).mean()
    x = torch.cat([a, b])
    sq = torch.pdist(x).pow(2)
    uniform = sq.mul(-t).exp().mean().log()
    return align + uniform


def linear_weights(model: Any) -> dict[str, Any]:
    """The weight matrices of the encoder's nn.Linear layers, by parameter name."""
    import torch

    hf = model[0].auto_model
    return {
        f"{name}.weight": mod.weight
        for name, mod in hf.named_modules()
        if isinstance(mod, torch.nn.Linear) and "encoder" in name
    }


def _to_device(features: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}


def saliency_scores(model: Any, anchors: list[str], positives: list[str], batch_size: int) -> dict[str, Any]:
    """|w * dL/dw| accumulated over batches of the alignment + uniformity loss, per linear weight."""
    import torch

    weights = linear_weights(model)
    scores = {k: torch.zeros_like(w) for k, w in weights.items()}
    model.train()
    for start in range(0, len(anchors), batch_size):
        model.zero_grad(set_to_none=True)
        feats = [model.preprocess(texts) for texts in (anchors[start : start + batch_size],
                                                      positives[start : start + batch_size])]
        embs = [model(_to_device(f, model.device))["sentence_embedding"] for f in feats]
        alignment_uniformity_loss(*embs).backward()
        for k, w in weights.items():
            if w.grad is not None:
                scores[k] += (w.detach() * w.grad.detach()).abs()
    model.zero_grad(set_to_none=True)
    return scores


def prune_masks(scores: dict[str, Any], fraction: float) -> dict[str, Any]:
    """Boolean keep-masks removing exactly round(fraction * total) lowest-saliency weights (global)."""
    import torch

    flat = torch.cat([s.flatten() for s in scores.values()])
    n_prune = round(fraction * flat.numel())
    keep = torch.ones_like(flat, dtype=torch.bool)
    if n_prune:
        idx = torch.topk(flat, n_prune, largest=False).indices
        keep[idx] = False
    masks, offset = {}, 0
    for k, s in scores.items():
        masks[k] = keep[offset : offset + s.numel()].view_as(s)
        offset += s.numel()
    return masks


def apply_masks(model: Any, masks: dict[str, Any] | None) -> None:
    """Zero the pruned weights in place."""
    import torch

    if not masks:
        return
    weights = linear_weights(model)
    with torch.no_grad():
        for k, m in masks.items():
            weights[k].mul_(m.to(weights[k].device, weights[k].dtype))


def sparsity(model: Any) -> float:
    """Fraction of exactly-zero entries among the encoder's linear weights."""
    ws = list(linear_weights(model).values())
    return float(sum((w == 0).sum().item() for w in ws) / sum(w.numel() for w in ws))


def clean_checkpoints(checkpoint_dir: Path) -> None:
    """Remove a run's resumable checkpoints once its model is saved."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
