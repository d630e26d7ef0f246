"""Contrastive fine-tuning with the sentence-transformers trainer, plus soups and pruning.

Positive pairs come from unlabeled documents: two different random crops of one document
(``crop``) or the same crop twice, made different by dropout (``dropout``, SimCSE-style).
In-batch negatives with ``MultipleNegativesRankingLoss(scale=1/tau)`` give InfoNCE at
temperature tau (``training.symmetric: true`` adds the positive -> anchor direction).
Every batch holds distinct documents (no in-batch false negatives), and the trainer keeps
the batches in the order ``make_pairs`` built them.  Checkpoints go to a folder outside the
rule's declared outputs, keyed by the run's training settings, so a killed job resumes
where it stopped and a changed setting starts afresh.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import RunSpec


class TrainingDivergedError(RuntimeError):
    """Training produced a NaN/inf loss or NaN/inf embeddings."""


# ----------------------------------------------------------------------------------------
# positive pairs


@dataclass(frozen=True)
class Pair:
    """One training pair: two texts from document ``doc`` (an index into the eligible documents)."""

    doc: int
    anchor: str
    positive: str


def _crop_starts(rng: random.Random, n_sentences: int, crop: int, augmentation: str) -> tuple[int, int]:
    """Start sentences of the two crops: non-overlapping windows (crop), or one window twice (dropout)."""
    last = n_sentences - crop
    if augmentation == "dropout":
        i = rng.randint(0, last)
        return i, i
    while True:  # rejection sampling: uniform over ordered pairs of non-overlapping windows
        i, j = rng.randint(0, last), rng.randint(0, last)
        if abs(i - j) >= crop:
            return i, j


def make_pair_records(
    docs: list[tuple[str, ...]], n_pairs: int, augmentation: str, crop_sentences: int, seed: int, batch_size: int
) -> list[Pair]:
    """Positive pairs in batch order: every consecutive block of ``batch_size`` pairs comes
    from distinct documents and holds no text twice (except the two sides of a dropout pair),
    so no in-batch negative is a crop of the anchor's own document.  Crop pairs are two
    non-overlapping windows of ``crop_sentences`` sentences; dropout pairs one window twice.
    """
    if augmentation not in ("crop", "dropout"):
        raise ValueError(f"unknown augmentation '{augmentation}' (crop or dropout)")
    rng = random.Random(seed)
    need = 2 * crop_sentences if augmentation == "crop" else crop_sentences
    eligible = [d for d in docs if len(d) >= need]
    if not eligible:
        raise ValueError(f"no training document has the {need} sentences a '{augmentation}' pair needs")
    if batch_size > len(eligible):
        raise ValueError(
            f"a batch needs {batch_size} distinct documents, but only {len(eligible)} training documents have "
            f"the {need} sentences a '{augmentation}' pair needs: lower training.batch_size or add documents "
            "(training.corpus / training.max_documents)"
        )
    pairs: list[Pair] = []
    while len(pairs) < n_pairs:
        size = min(batch_size, n_pairs - len(pairs))
        block: list[Pair] = []
        texts: set[str] = set()
        candidates = rng.sample(range(len(eligible)), min(len(eligible), 2 * size + 8))
        for _attempt in range(2):
            for k in candidates:
                if len(block) == size:
                    break
                if any(p.doc == k for p in block):
                    continue
                doc = eligible[k]
                i, j = _crop_starts(rng, len(doc), crop_sentences, augmentation)
                a, b = " ".join(doc[i : i + crop_sentences]), " ".join(doc[j : j + crop_sentences])
                if a in texts or b in texts:
                    continue  # the same text in another document of the batch: a false negative
                block.append(Pair(k, a, b))
                texts.update((a, b))
            if len(block) == size:
                break
            candidates = rng.sample(range(len(eligible)), len(eligible))  # rare: try every document
        if len(block) < size:
            raise ValueError(
                f"cannot fill a batch of {size} pairs with distinct documents and texts from {len(eligible)} "
                "documents: lower training.batch_size or add documents"
            )
        pairs += block
    return pairs


def make_pairs(
    docs: list[tuple[str, ...]], n_pairs: int, augmentation: str, crop_sentences: int, seed: int, batch_size: int
) -> tuple[list[str], list[str]]:
    """(anchors, positives) of ``make_pair_records``, in batch order."""
    records = make_pair_records(docs, n_pairs, augmentation, crop_sentences, seed, batch_size)
    return [p.anchor for p in records], [p.positive for p in records]


def in_order_batches(dataset: Any, batch_size: int, drop_last: bool, valid_label_columns: Any = None,
                     generator: Any = None, seed: int = 0) -> Any:
    """Batch sampler for the trainer: consecutive blocks of the dataset in order (no shuffle),
    so the document-distinct blocks of ``make_pair_records`` are exactly the batches."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler

    return DefaultBatchSampler(SequentialSampler(range(len(dataset))), batch_size=batch_size, drop_last=drop_last,
                               valid_label_columns=valid_label_columns, generator=generator, seed=seed)


# ----------------------------------------------------------------------------------------
# losses


def infonce(model: Any, tau: float, symmetric: bool = False) -> Any:
    """InfoNCE at temperature tau with in-batch negatives (logits = cos / tau).

    ``symmetric`` averages the anchor -> positive and positive -> anchor cross-entropies
    (CLIP-style); otherwise only anchor -> positive, as ``MultipleNegativesRankingLoss``.
    Similarities and logits are float32 even under mixed precision (``Fp32MultipleNegativesRankingLoss``).
    """
    from .losses import Fp32MultipleNegativesRankingLoss

    if symmetric:
        return Fp32MultipleNegativesRankingLoss(model, scale=1.0 / tau, directions=("query_to_doc", "doc_to_query"),
                                                partition_mode="per_direction")
    return Fp32MultipleNegativesRankingLoss(model, scale=1.0 / tau)


def term_weights(spec: RunSpec) -> list[float]:
    """Weights of a temperature aggregation's InfoNCE terms: the configured ``weights``, or
    ``weighting: tau`` (each term times its tau, so that the terms' initial gradients, which
    scale as 1/tau, have matching sizes), or ``weighting: equal`` (all 1)."""
    if spec.weights:
        return [float(w) for w in spec.weights]
    if spec.weighting == "tau":
        return [float(t) for t in spec.taus]
    return [1.0] * len(spec.taus)


def build_loss(model: Any, spec: RunSpec, native_dim: int, target_dims: list[int], symmetric: bool = False) -> Any:
    """The training loss of a run's kind (InfoNCE, multi-temperature, Matryoshka, ...)."""
    from sentence_transformers.sentence_transformer.losses import Matryoshka2dLoss, MatryoshkaLoss

    from .losses import MultiTemperatureLoss

    if spec.kind in ("infonce", "sparse"):
        return infonce(model, float(spec.tau), symmetric)
    if spec.kind == "multi_temperature":
        prefixes = list(spec.prefix_dims) or None
        return MultiTemperatureLoss(model, [float(t) for t in spec.taus], prefixes, term_weights(spec), symmetric)
    mrl_dims = sorted({native_dim, *[d for d in target_dims if d < native_dim]}, reverse=True)
    inner = infonce(model, float(spec.tau), symmetric)
    if spec.kind == "matryoshka":
        return MatryoshkaLoss(model, inner, matryoshka_dims=mrl_dims)
    if spec.kind == "matryoshka2d":
        return Matryoshka2dLoss(model, inner, matryoshka_dims=mrl_dims)
    raise ValueError(f"run kind '{spec.kind}' is not trained with a loss")


def term_gradient_norms(terms: list[Any], params: list[Any]) -> list[float]:
    """L2 norm of each loss term's gradient with respect to ``params`` (the graph is kept)."""
    import torch

    norms = []
    for term in terms:
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        norms.append(math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None)))
    return norms


GRADIENT_SHARES_MICRO_BATCH = 32


def gradient_shares(model: Any, loss: Any, anchors: list[str], positives: list[str],
                    micro_batch_size: int = GRADIENT_SHARES_MICRO_BATCH) -> list[dict[str, Any]]:
    """Each weighted term's gradient norm (w.r.t. the trainable weights) and share of the sum,
    on one batch at the start of training (eval mode: no dropout).  One row per term.

    Micro-batched with cached embedding gradients, as ``saliency_scores``: the batch is
    embedded without a graph, each term's gradient with respect to the embeddings is taken
    (cheap: the loss couples only the embeddings), then each micro-batch is re-embedded with
    a graph and every term's embedding gradient is backpropagated through it into that term's
    own parameter-gradient sum.  Equal to the one-shot gradients; memory holds one micro-batch
    of activations (plus one gradient buffer per term), whatever the batch size.
    """
    import torch

    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    cols = [anchors, positives]
    try:
        with torch.no_grad():
            embs = [torch.cat([_embed(model, col[i : i + micro_batch_size])
                               for i in range(0, len(col), micro_batch_size)]) for col in cols]
        embs = [e.detach().float().requires_grad_(True) for e in embs]
        terms = loss.terms(embs, None)
        emb_grads = [torch.autograd.grad(term, embs, retain_graph=k < len(terms) - 1) for k, term in enumerate(terms)]
        sums = [[torch.zeros_like(p) for p in params] for _ in terms]
        for c, col in enumerate(cols):
            for i in range(0, len(col), micro_batch_size):
                out = _embed(model, col[i : i + micro_batch_size])
                for k, grads in enumerate(emb_grads):
                    seed = grads[c][i : i + micro_batch_size].to(out.dtype)
                    part = torch.autograd.grad(out, params, grad_outputs=seed, retain_graph=k < len(emb_grads) - 1,
                                               allow_unused=True)
                    for acc, g in zip(sums[k], part, strict=True):
                        if g is not None:
                            acc += g
        norms = [math.sqrt(sum(float(a.double().pow(2).sum()) for a in acc)) for acc in sums]
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    total = sum(norms) or 1.0
    return [{"tau": t, "prefix_dim": d, "weight": w, "grad_norm": n, "share": n / total}
            for t, d, w, n in zip(loss.temperatures, loss.prefix_dims, loss.weights, norms, strict=True)]


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

    class NoFinalCheckpoint(TrainerCallback):
        """The last step's checkpoint is never resumed from (the model is saved right after
        training and the checkpoints deleted); writing it costs a model plus optimizer state."""

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if state.global_step >= state.max_steps:
                control.should_save = False

    class KeepPruned(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            apply_masks(model, masks)

    cbs: list[Any] = [StopOnDivergence(), NoFinalCheckpoint()]
    if masks:
        cbs.append(KeepPruned())
    return cbs


class TrainingTerminated(RuntimeError):
    """Training stopped on SIGTERM after saving a resumable checkpoint."""


class TimedCheckpoints:
    """Trainer callback: a resumable checkpoint every ``minutes`` of training (None: none on a
    clock) and, on SIGTERM (SLURM's notice before its kill at the time limit, or scancel), one at
    once before training stops.  A checkpoint costs a model plus optimizer state (about 3x the
    model), so a clock bounds both the work lost and the writes, whatever a step takes."""

    def __init__(self, minutes: float | None) -> None:
        import time

        self.minutes = minutes
        self.terminated = False
        self.last = time.monotonic()
        self._previous: Any = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.terminated = True

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import signal
        import threading
        import time

        self.last = time.monotonic()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import time

        if self.terminated:
            control.should_save = True
            control.should_training_stop = True
        elif (self.minutes is not None and state.global_step < state.max_steps
              and time.monotonic() - self.last >= 60 * self.minutes):
            control.should_save = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import time

        self.last = time.monotonic()


def checkpoint_callback(minutes: float | None) -> Any:
    """A TimedCheckpoints instance that is also a transformers TrainerCallback."""
    from transformers import TrainerCallback

    cls = type("TimedCheckpointsCallback", (TimedCheckpoints, TrainerCallback), {})
    return cls(minutes)


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint in a folder, if any."""
    ckpts = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[1])) if ckpts else None


def resolve_precision(requested: str) -> str:
    """The precision training really uses: fp32 on CPU; on a GPU, bf16 only where the GPU
    supports it (else fp16 autocast with loss scaling), fp16 as asked, or fp32."""
    import torch

    if not torch.cuda.is_available():
        return "fp32"
    if requested == "bf16" and not torch.cuda.is_bf16_supported():
        print(f"training.precision is bf16, but {torch.cuda.get_device_name()} does not support bf16: "
              "training in fp16 autocast instead", flush=True)
        return "fp16"
    return requested


def checkpoint_key(settings: dict[str, Any]) -> str:
    """Short hash of everything a resumed run must share with the run that wrote the checkpoint."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def settings_checkpoint_dir(checkpoint_dir: Path, settings: dict[str, Any]) -> Path:
    """The folder, under a run's checkpoint folder, for checkpoints made with these settings.

    Checkpoints made with other settings (another learning rate, step count, corpus, ...)
    are deleted with a message: resuming them would silently mix two runs.
    """
    key = checkpoint_key(settings)
    folder = Path(checkpoint_dir) / f"settings-{key}"
    if Path(checkpoint_dir).is_dir():
        for old in Path(checkpoint_dir).iterdir():
            if old != folder and (old.name.startswith(("settings-", "checkpoint-"))):
                print(f"discarding checkpoints in {old}: they were made with other training settings "
                      f"(these settings: {folder.name}); training starts afresh", flush=True)
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n")
    return folder


def build_trainer(
    model: Any,
    spec: RunSpec,
    training: dict[str, Any],
    docs: list[tuple[str, ...]],
    checkpoint_dir: Path,
    target_dims: list[int],
    masks: dict[str, Any] | None = None,
    steps: int | None = None,
) -> Any:
    """The sentence-transformers trainer of one run, its batches in the order of ``make_pairs``."""
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
    batch_size = training["batch_size"]
    anchors, positives = make_pairs(
        docs, steps * batch_size, spec.augmentation, training["crop_sentences"], seed, batch_size
    )
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    dim = model.get_embedding_dimension()
    loss = build_loss(model, spec, dim, target_dims, bool(training.get("symmetric", False)))
    precision = resolve_precision(training.get("precision", "fp32"))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        batch_sampler=in_order_batches,  # the document-distinct blocks of make_pairs, unshuffled
        learning_rate=training["learning_rate"],
        warmup_steps=training["warmup_ratio"],  # a float < 1 is a ratio of max_steps (transformers 5)
        # linear decay to 0 by default; constant_with_warmup keeps the rate, so that a flat loss at the
        # end is convergence (convergence.plateau_check), not a learning rate annealed to zero
        lr_scheduler_type=lr_scheduler(training),
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN loss must reach StopOnDivergence, not be averaged away
        # checkpoints on a clock and at SIGTERM (checkpoint_callback); every N steps only if asked
        save_strategy="steps" if training.get("checkpoint_steps") else "no",
        save_steps=training.get("checkpoint_steps") or 1,
        save_total_limit=1,
        report_to="none",
        use_cpu=not _cuda(),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=0,
        disable_tqdm=True,
        gradient_checkpointing=bool(training.get("gradient_checkpointing", False)),
    )
    one_device(args)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[*_callbacks(spec, masks),
                                                                 checkpoint_callback(training.get("checkpoint_minutes"))]
    )
    return trainer


def lr_scheduler(training: dict[str, Any]) -> str:
    """The learning-rate schedule after warmup: ``training.lr_scheduler``, absent = linear decay to 0."""
    return training.get("lr_scheduler", "linear")


def one_device(args: Any) -> None:
    """Train on one device: with several visible GPUs the HF trainer would wrap the model in
    DataParallel, which splits each document-distinct batch across GPUs (each InfoNCE term
    then sees only its shard's negatives).  Uses the trainer's own ``_n_gpu`` override."""
    if args.n_gpu > 1:
        print(f"{args.n_gpu} GPUs visible: training on {args.device} only (no DataParallel)", flush=True)
        args._n_gpu = 1


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


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
    trainer = build_trainer(model, spec, training, docs, checkpoint_dir, target_dims, masks, steps)
    resume = latest_checkpoint(Path(checkpoint_dir))
    if resume is not None:
        print(f"resuming {spec.run_id} from {resume}", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    clock = next((c for c in trainer.callback_handler.callbacks if isinstance(c, TimedCheckpoints)), None)
    if clock is not None and clock.terminated:
        raise TrainingTerminated(
            f"run '{spec.run_id}' got SIGTERM (time limit or scancel) at step {trainer.state.global_step}: "
            f"checkpoint saved in {checkpoint_dir}; the job's retry resumes from it"
        )
    return [h for h in trainer.state.log_history if "loss" in h]


def write_loss_curve(history: list[dict[str, Any]], path: Path, spec: RunSpec) -> None:
    """The training loss per logged step as CSV (run, tau, step, loss, learning_rate)."""
    from .provenance import atomic_output

    with atomic_output(path) as tmp, tmp.open("w", newline="") as fh:
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


def make_soup(parent_dirs: list[Path], device: str = "cpu", trust_remote_code: bool = False) -> Any:
    """A model whose weights are the mean of the parents' (a uniform model soup)."""
    from .models import load_trained

    models = [load_trained(p, device=device, trust_remote_code=trust_remote_code) for p in parent_dirs]
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


SALIENCY_MICRO_BATCH = 32


def _embed(model: Any, texts: list[str]) -> Any:
    return model(_to_device(model.preprocess(texts), model.device))["sentence_embedding"]


def saliency_scores(model: Any, anchors: list[str], positives: list[str], batch_size: int,
                    micro_batch_size: int = SALIENCY_MICRO_BATCH, seed: int = 0) -> dict[str, Any]:
    """|w * dL/dw| summed over batches of the alignment + uniformity loss, per linear weight.

    Computed in eval mode (no dropout), after seeding.  The loss couples every pair of a
    batch (uniformity), so each batch is run in micro-batches with cached embedding
    gradients: embed all micro-batches without a graph, take the loss's gradient with
    respect to the embeddings, then re-run each micro-batch with a graph and backpropagate
    its slice (gradients accumulate).  The result equals the one-shot gradient, and memory
    holds one micro-batch of activations whatever ``batch_size`` is.
    """
    import torch

    torch.manual_seed(seed)
    weights = linear_weights(model)
    scores = {k: torch.zeros_like(w) for k, w in weights.items()}
    was_training = model.training
    model.eval()
    wanted = {id(w) for w in weights.values()}
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in grad_flags:  # gradients of the scored weights only (no embedding-table gradient)
        p.requires_grad_(id(p) in wanted)
    try:
        for start in range(0, len(anchors), batch_size):
            cols = [anchors[start : start + batch_size], positives[start : start + batch_size]]
            model.zero_grad(set_to_none=True)
            with torch.no_grad():
                embs = [torch.cat([_embed(model, col[i : i + micro_batch_size])
                                   for i in range(0, len(col), micro_batch_size)]) for col in cols]
            embs = [e.detach().requires_grad_(True) for e in embs]
            grads = torch.autograd.grad(alignment_uniformity_loss(*embs), embs)
            for col, grad in zip(cols, grads, strict=True):
                for i in range(0, len(col), micro_batch_size):
                    _embed(model, col[i : i + micro_batch_size]).backward(grad[i : i + micro_batch_size])
            for k, w in weights.items():
                if w.grad is not None:
                    scores[k] += (w.detach() * w.grad.detach()).abs()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        for p, flag in grad_flags:
            p.requires_grad_(flag)
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
