"""Compression methods on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from tempcompress.compression import (
    METHODS,
    CompressionError,
    bytes_per_vector,
    compress,
    fit_encode,
    hamming_distance,
    score_variants,
    stored_nbytes,
)


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
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)  # PCA works on L2-normalised vectors
    d_full = np.linalg.norm(xn[:, None] - xn[None], axis=-1)
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


def test_simproj_starts_from_pca_and_keeps_similarity_structure() -> None:
    x = _subspace(n=300, k=8, d=32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z = compress("simproj", x, x, 8, {"seed": 0, "simproj_epochs": 20})
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


def test_hpd_is_computed_from_the_encoder_not_from_embeddings() -> None:
    x = np.zeros((4, 8), dtype=np.float32)
    with pytest.raises(CompressionError, match="trains a student encoder"):
        compress("hpd", x, x, 4)


def test_bytes_per_vector() -> None:
    assert bytes_per_vector("none", 384) == 1536
    for name in ("truncation", "pca", "random_projection", "simproj"):
        assert bytes_per_vector(name, 64) == 256
    assert bytes_per_vector("float16", 64) == bytes_per_vector("bfloat16", 64) == 128
    assert bytes_per_vector("float8", 64) == bytes_per_vector("int8", 64) == 64
    assert bytes_per_vector("int4", 64) == 32
    assert bytes_per_vector("binarization", 384) == 48
    assert bytes_per_vector("int4", 3) == 1.5
    with pytest.raises(CompressionError):
        bytes_per_vector("zip", 8)


@pytest.mark.parametrize("name", sorted(m for m in METHODS if not METHODS[m].needs_encoder))
def test_stored_codes_take_the_documented_bytes(name: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 48)).astype(np.float32)
    codes = fit_encode(name, x, x, 32, {"seed": 0, "simproj_epochs": 1})
    per_coordinate_state = sum(v.nbytes for k, v in codes.items() if k in ("lo", "span", "dim"))
    assert stored_nbytes(codes) - per_coordinate_state == 64 * bytes_per_vector(name, 32)


def test_float_formats_are_plain_casts() -> None:
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.1, size=(40, 24)).astype(np.float32)
    np.testing.assert_array_equal(compress("float16", x, x, 24), x.astype(np.float16).astype(np.float32))
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(compress("bfloat16", x, x, 24), t.to(torch.bfloat16).float().numpy())
    f8 = compress("float8", x, x, 24)
    np.testing.assert_array_equal(f8, t.to(torch.float8_e4m3fn).float().numpy())
    assert len(np.unique(f8)) <= 256 and not np.array_equal(f8, x)
    # the cast keeps the relative error within each format's precision
    for name, rel in (("float16", 2**-11), ("bfloat16", 2**-8)):
        z = compress(name, x, x, 24)
        assert np.abs(z - x).max() <= rel * np.abs(x).max()


def test_int4_has_16_levels_and_bounded_error() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 31)).astype(np.float32)  # odd dim: the last byte holds one code
    z = compress("int4", x, x, 31)
    assert z.shape == (500, 31)
    assert max(len(np.unique(z[:, j])) for j in range(31)) <= 16
    lo, hi = np.percentile(x, [1, 99], axis=0)
    inside = (x > lo) & (x < hi)
    assert (np.abs(z - x) <= (hi - lo) / 15 / 2 + 1e-5)[inside].all()
    assert np.abs(z - x).mean() < np.abs(compress("int8", x, x, 31) - x).mean() * 20


def test_binarization_codes_are_packed_bits() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 20)).astype(np.float32)
    codes = fit_encode("binarization", x, x, 20)
    assert codes["bits"].dtype == np.uint8 and codes["bits"].shape == (10, 3)
    np.testing.assert_array_equal(compress("binarization", x, x, 20), np.where(x >= 0, 1, -1))


def test_pca_ignores_the_norm_of_each_vector() -> None:
    """PCA is fitted on, and applied to, L2-normalised embeddings: rescaling rows changes nothing."""
    x = _subspace(n=200, k=6, d=32, seed=4)
    rng = np.random.default_rng(5)
    scaled = x * rng.uniform(0.1, 10, size=(len(x), 1)).astype(np.float32)
    np.testing.assert_allclose(compress("pca", scaled, scaled, 5), compress("pca", x, x, 5), atol=1e-5)


def test_quantizers_are_also_scored_at_the_native_dim() -> None:
    pairs = score_variants(["truncation", "binarization", "int8", "pca"], [64, 16], 384)
    assert pairs[0] == ("none", "full")
    assert ("binarization", "384") in pairs and ("int8", "384") in pairs
    assert ("truncation", "384") not in pairs and ("pca", "384") not in pairs
    assert len(pairs) == 1 + 4 * 2 + 2
    # a native dim listed among the target dims is not scored twice
    assert score_variants(["int8"], [384, 16], 384).count(("int8", "384")) == 1
