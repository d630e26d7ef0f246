"""Intrinsic-dimension estimates of an embedding sample, with scikit-dimension's estimators.

Duplicates (zero-distance neighbours) make skdim's MLE silently return 0 and break TwoNN,
so samples are deduplicated (exact duplicates and zero-distance rows) in float64 first.
The k-nearest-neighbour search dominates the cost of both: it is computed once per sample
with scikit-learn (brute force over memory-bounded chunks, O(n k) memory instead of skdim's
O(n^2) distance rows) and handed to MLE as ``precomputed_knn_arrays`` and to TwoNN as its
(r1, r2) neighbour distances (``dist=True``).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


class IntrinsicDimError(ValueError):
    """An estimate that cannot be made (too few distinct points, non-finite input)."""


def prepare_sample(x: np.ndarray, min_points: int = 10) -> np.ndarray:
    """Float64 copy of the sample without duplicate points; refuses non-finite input."""
    if not np.isfinite(x).all():
        raise IntrinsicDimError("embeddings contain NaN/inf: the model diverged; retrain it before estimating ID")
    x = np.unique(x.astype(np.float64), axis=0)
    if len(x) < min_points:
        raise IntrinsicDimError(f"only {len(x)} distinct points: raise intrinsic_dim.sample_size")
    return x


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float64): the cosine geometry the contrastive loss trains.

    Without it, a model with no Normalize module would also count the norm direction.
    Refuses non-finite input and zero rows.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise IntrinsicDimError("embeddings contain NaN/inf: the model diverged; retrain it before estimating ID")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise IntrinsicDimError(f"{int((norms == 0).sum())} zero-length embedding(s): cannot L2-normalise them")
    return x / norms


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the k nearest other points (self excluded)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x)
    dist, idx = nn.kneighbors(x)
    return dist[:, 1:], idx[:, 1:]


def _shared_knn(x: np.ndarray, opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """kNN of the sample with k = max(mle_k, 2), computed once and kept in ``opts``."""
    k = max(opts.get("mle_k", 20), 2)
    if opts.get("_knn_k") != k or opts.get("_knn_n") != len(x):
        opts["_knn"], opts["_knn_k"], opts["_knn_n"] = knn(x, k), k, len(x)
    return opts["_knn"]


def twonn(x: np.ndarray, opts: dict[str, Any]) -> float:
    """TwoNN (Facco et al. 2017): ratio of 2nd to 1st neighbour distance, from the shared kNN."""
    import skdim

    dist, _ = _shared_knn(x, opts)
    return float(skdim.id.TwoNN(dist=True).fit(dist[:, :2]).dimension_)


def mle(x: np.ndarray, opts: dict[str, Any]) -> float:
    """Levina-Bickel MLE with k neighbours, on the shared kNN.

    skdim combines the per-point estimates m_i by their harmonic mean, 1 / mean(1 / m_i)
    (its default ``comb="mle"``, MacKay & Ghahramani's correction), not the arithmetic mean.
    """
    import skdim

    k = opts.get("mle_k", 20)
    dist, idx = _shared_knn(x, opts)
    est = skdim.id.MLE(K=k).fit(x, precomputed_knn_arrays=(dist[:, :k], idx[:, :k]), n_neighbors=k)
    return float(est.dimension_)


def lpca(x: np.ndarray, _opts: dict[str, Any]) -> float:
    """Global PCA estimate, Fukunaga-Olsen rule (eigenvalues above 5% of the largest)."""
    import skdim

    return float(skdim.id.lPCA(ver="FO", verbose=False).fit(x).dimension_)


ESTIMATORS: dict[str, Callable[[np.ndarray, dict[str, Any]], float]] = {
    "twonn": twonn,
    "mle": mle,
    "lpca": lpca,
}


def estimate(x: np.ndarray, estimators: list[str], opts: dict[str, Any] | None = None,
             measure_memory: bool = False) -> list[dict[str, Any]]:
    """One record per estimator: estimate, points used, seconds (and Python peak MiB if asked)."""
    opts = dict(opts or {})
    sample = prepare_sample(x)
    rows = []
    for name in estimators:
        if name not in ESTIMATORS:
            raise IntrinsicDimError(f"unknown estimator '{name}'; choose from {sorted(ESTIMATORS)}")
        if measure_memory:
            tracemalloc.start()
        t0 = time.perf_counter()
        value = ESTIMATORS[name](sample, opts)
        row = {"estimator": name, "id": value, "n_points": len(sample), "seconds": time.perf_counter() - t0}
        if measure_memory:
            row["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        if not np.isfinite(value) or value <= 0:
            raise IntrinsicDimError(f"{name} returned {value}: check the sample for near-duplicates")
        rows.append(row)
    return rows
