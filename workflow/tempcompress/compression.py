"""Post-training compression methods, each one small function pair (fit, transform).

A method maps full embeddings (n, D) to (n, d) at a target dim d; it may be fitted on
training-corpus embeddings (never on the scored test texts).  Adding a method = adding one
``Method`` to ``METHODS``.  Scoring uses cosine similarity on the result, which for
binarized (+/-1) vectors ranks exactly as Hamming distance does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class CompressionError(ValueError):
    """A compression request that cannot be met (e.g. target dim > embedding dim)."""


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    fit: Callable[[np.ndarray, int, dict[str, Any]], Any]  # (fit embeddings, dim, options) -> state
    transform: Callable[[np.ndarray, Any, int], np.ndarray]  # (embeddings, state, dim) -> compressed


def check_dim(dim: int, full_dim: int) -> None:
    if dim > full_dim:
        raise CompressionError(
            f"target dim {dim} is larger than the {full_dim}-dimensional embedding: "
            "remove it from compression.dims"
        )


# ---- truncation ------------------------------------------------------------------------


def truncate(x: np.ndarray, _state: Any, dim: int) -> np.ndarray:
    """Keep the first ``dim`` coordinates."""
    return np.ascontiguousarray(x[:, :dim], dtype=np.float32)


# ---- binarization ----------------------------------------------------------------------


def binarize(x: np.ndarray, _state: Any, dim: int) -> np.ndarray:
    """Sign of the first ``dim`` coordinates as +/-1 (0 maps to +1): dim bits per vector."""
    return np.where(x[:, :dim] >= 0, 1.0, -1.0).astype(np.float32)


def hamming_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between rows of two +/-1 matrices: (d - a.b) / 2."""
    return (a.shape[1] - a @ b.T) / 2.0


# ---- int8 scalar quantization ------------------------------------------------------------


def fit_int8(fit: np.ndarray, dim: int, _opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate range (1st..99th percentile) of the fit embeddings' first dim coordinates."""
    lo, hi = np.percentile(fit[:, :dim], [1, 99], axis=0)
    return lo.astype(np.float32), np.maximum(hi - lo, 1e-12).astype(np.float32)


def int8_quantize(x: np.ndarray, state: tuple[np.ndarray, np.ndarray], dim: int) -> np.ndarray:
    """Quantize to 256 levels per coordinate and map back to floats (what a int8 index stores)."""
    lo, span = state
    q = np.clip(np.round((x[:, :dim] - lo) / span * 255.0) - 128, -128, 127).astype(np.int8)
    return ((q.astype(np.float32) + 128.0) / 255.0 * span + lo).astype(np.float32)


# ---- PCA -------------------------------------------------------------------------------


def fit_pca(fit: np.ndarray, dim: int, _opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-``dim`` principal axes of the fit embeddings (float64 SVD)."""
    if dim > min(fit.shape):
        raise CompressionError(f"PCA to {dim} dims needs at least {dim} fit texts, got {fit.shape[0]}")
    x = fit.astype(np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:dim]


def pca_project(x: np.ndarray, state: tuple[np.ndarray, np.ndarray], dim: int) -> np.ndarray:
    mean, comps = state
    return ((x.astype(np.float64) - mean) @ comps[:dim].T).astype(np.float32)


# ---- random projection -------------------------------------------------------------------


def fit_random_projection(fit: np.ndarray, dim: int, opts: dict[str, Any]) -> np.ndarray:
    """A Gaussian random matrix (D, dim) with N(0, 1/dim) entries (Johnson-Lindenstrauss)."""
    rng = np.random.default_rng(opts.get("seed", 0))
    return rng.normal(0.0, 1.0 / np.sqrt(dim), size=(fit.shape[1], dim)).astype(np.float32)


def random_project(x: np.ndarray, state: np.ndarray, dim: int) -> np.ndarray:
    return (x.astype(np.float32) @ state).astype(np.float32)


# ---- HPD-style learned projection ----------------------------------------------------------


def fit_hpd(fit: np.ndarray, dim: int, opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """HPD-style projection (Zhao et al. 2022) learned on frozen full-size embeddings.

    A Dense(D -> dim, tanh) layer is initialised from PCA (W = principal axes, b = -W mean,
    as HPD initialises its projection) and trained with MSE distillation: the cosine
    similarities of projected pairs must match the full-size teacher's similarities, over
    random minibatches of the fit embeddings.  Adam, lr 1e-3, ``hpd_epochs`` epochs.
    """
    import torch

    gen = torch.Generator().manual_seed(opts.get("seed", 0))
    mean, comps = fit_pca(fit, dim, opts)
    x = torch.as_tensor(fit, dtype=torch.float32)
    teacher = torch.nn.functional.normalize(x, dim=-1)
    layer = torch.nn.Linear(x.shape[1], dim)
    with torch.no_grad():
        w = torch.as_tensor(comps, dtype=torch.float32)
        layer.weight.copy_(w)
        layer.bias.copy_(-(w @ torch.as_tensor(mean, dtype=torch.float32)))
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    batch = min(256, len(x))
    for _ in range(opts.get("hpd_epochs", 30)):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x) - 1, batch):
            idx = perm[start : start + batch]
            t = teacher[idx] @ teacher[idx].T
            s = torch.nn.functional.normalize(torch.tanh(layer(x[idx])), dim=-1)
            loss = torch.nn.functional.mse_loss(s @ s.T, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {"weight": layer.weight.detach().numpy().copy(), "bias": layer.bias.detach().numpy().copy()}


def hpd_project(x: np.ndarray, state: dict[str, np.ndarray], dim: int) -> np.ndarray:
    return np.tanh(x.astype(np.float32) @ state["weight"].T + state["bias"]).astype(np.float32)


def _no_fit(_fit: np.ndarray, _dim: int, _opts: dict[str, Any]) -> None:
    return None


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("truncation", "keep the first d coordinates", _no_fit, truncate),
        Method("binarization", "sign of the first d coordinates (d bits), Hamming-equivalent cosine",
               _no_fit, binarize),
        Method("int8", "first d coordinates, scalar-quantized to 8 bits (range fitted on training texts)",
               fit_int8, int8_quantize),
        Method("pca", "projection on the top d principal axes of training-text embeddings", fit_pca, pca_project),
        Method("random_projection", "Gaussian random projection to d dims", fit_random_projection, random_project),
        Method("hpd", "PCA-initialised Dense(d, tanh) distilled from full-size similarities", fit_hpd, hpd_project),
    )
}


def compress(method: str, fit: np.ndarray, x: np.ndarray, dim: int, opts: dict[str, Any] | None = None) -> np.ndarray:
    """Fit ``method`` at ``dim`` on ``fit`` embeddings and apply it to ``x``."""
    if method not in METHODS:
        raise CompressionError(f"unknown compression method '{method}'; choose from {sorted(METHODS)}")
    check_dim(dim, x.shape[1])
    m = METHODS[method]
    state = m.fit(fit, dim, opts or {})
    out = m.transform(x, state, dim)
    if not np.isfinite(out).all():
        raise CompressionError(f"{method} at dim {dim} produced non-finite values")
    return out
