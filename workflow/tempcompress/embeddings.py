"""Encoding text with a sentence-transformers model, with a finiteness check.

Kept free of mteb so that training jobs (which probe their model once) do not import it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

_FORWARD = {"seconds": 0.0}  # time this process spent in encode_texts (bench/overhead.py)


def forward_seconds() -> float:
    """Seconds this process has spent encoding in ``encode_texts`` (the transformer's forward
    passes), recorded in the encode stages' meta.json as ``forward_seconds``."""
    return round(_FORWARD["seconds"], 3)


class EmbeddingsNotFiniteError(RuntimeError):
    """A model produced NaN/inf embeddings (usually a diverged training run)."""


def encode_texts(model: Any, texts: list[str], batch_size: int, label: str) -> np.ndarray:
    """float32 embeddings of texts (sentence-transformers sorts them by length into batches)."""
    t0 = time.perf_counter()
    emb = model.encode(
        texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=len(texts) > 2000
    ).astype(np.float32)
    _FORWARD["seconds"] += time.perf_counter() - t0
    if not np.isfinite(emb).all():
        bad = int((~np.isfinite(emb).all(axis=1)).sum())
        raise EmbeddingsNotFiniteError(
            f"{label}: {bad} of {len(texts)} embeddings are NaN/inf; the model diverged "
            "(retrain with a higher temperature or lower learning rate)"
        )
    return emb
