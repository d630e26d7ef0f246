"""Compression methods on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from tempcompress.compression import METHODS, CompressionError, compress, hamming_distance


def _subspace(n: int = 400, k: int = 6, d: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, k)) @ rng.normal(size=(k, d))).astype(np.float32)


def test_truncation_keeps_prefix() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(compress("truncation", x, x, 2), x[:, :2])


def test_binarization_is_sign_and_matches_hamming_ranking() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 16)).astype(np.float32)
    b = compress("binarization", x, x, 16)
    assert set(np.unique(b)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(b, np.where(x >= 0, 1, -1))
    # cosine on +/-1 vectors = 1 - 2 * hamming / d: identical rankings
    cos = (b @ b.T) / 16
    ham = hamming_distance(b, b)
    np.testing.assert_allclose(cos, 1 - 2 * ham / 16)
    assert hamming_distance(b[:1], -b[:1])[0, 0] == 16


def test_pca_on_a_k_dim_subspace_preserves_distances() -> None:
    x = _subspace(k=6)
    z = compress("pca", x, x, 6)
    d_full = np.linalg.norm(x[:, None] - x[None], axis=-1)
    d_pca = np.linalg.norm(z[:, None] - z[None], axis=-1)
    np.testing.assert_allclose(d_pca, d_full, rtol=1e-3, atol=1e-3)
    # one fewer axis loses information
    z5 = compress("pca", x, x, 5)
    assert np.abs(np.linalg.norm(z5[:, None] - z5[None], axis=-1) - d_full).max() > 0.1


def test_pca_is_fitted_on_the_fit_set_only() -> None:
    fit = _subspace(seed=2)
    other = _subspace(seed=3)
    a = compress("pca", fit, other, 4)
    b = compress("pca", other, other, 4)
    assert not np.allclose(np.abs(a), np.abs(b), atol=1e-3)


def test_random_projection_approximately_preserves_norms() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 256)).astype(np.float32)
    z = compress("random_projection", x, x, 128, {"seed": 0})
    ratio = np.linalg.norm(z, axis=1) / np.linalg.norm(x, axis=1)
    assert abs(ratio.mean() - 1) < 0.05 and ratio.std() < 0.1
    again = compress("random_projection", x, x, 128, {"seed": 0})
    np.testing.assert_array_equal(z, again)


def test_int8_error_is_small() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 32)).astype(np.float32)
    z = compress("int8", x, x, 32)
    inside = np.abs(x) < 2  # within the fitted 1..99 percentile range
    assert np.abs(z - x)[inside].max() < 5.0 / 255 * 2
    assert len(np.unique(z[:, 0])) <= 256


def test_hpd_starts_from_pca_and_keeps_similarity_structure() -> None:
    x = _subspace(n=300, k=8, d=32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z = compress("hpd", x, x, 8, {"seed": 0, "hpd_epochs": 20})
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    err = np.abs(zn @ zn.T - x @ x.T).mean()
    assert err < 0.1, err


def test_dim_larger_than_embedding_is_refused() -> None:
    x = np.zeros((4, 8), dtype=np.float32)
    for name in METHODS:
        with pytest.raises(CompressionError, match="larger than the 8-dimensional"):
            compress(name, x, x, 16)


def test_unknown_method() -> None:
    x = np.zeros((4, 8), dtype=np.float32)
    with pytest.raises(CompressionError, match="unknown compression method 'zip'"):
        compress("zip", x, x, 4)
