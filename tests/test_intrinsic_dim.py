"""ID estimators on points with a known intrinsic dimension."""

from __future__ import annotations

import numpy as np
import pytest
from tempcompress.intrinsic_dim import IntrinsicDimError, estimate, prepare_sample


def _linear(k: int, n: int = 1500, d: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(n, k)) @ rng.normal(size=(k, d))


@pytest.mark.parametrize("k", [3, 8])
def test_estimators_recover_a_linear_subspace(k: int) -> None:
    rows = {r["estimator"]: r["id"] for r in estimate(_linear(k), ["twonn", "mle", "lpca"], {"mle_k": 20})}
    assert rows["lpca"] == k
    assert abs(rows["twonn"] - k) < 0.25 * k + 0.5
    assert abs(rows["mle"] - k) < 0.25 * k + 0.5


def test_higher_dimension_gives_higher_estimates() -> None:
    low = {r["estimator"]: r["id"] for r in estimate(_linear(3), ["twonn", "mle"])}
    high = {r["estimator"]: r["id"] for r in estimate(_linear(12), ["twonn", "mle"])}
    assert high["twonn"] > 2 * low["twonn"] and high["mle"] > 2 * low["mle"]


def test_duplicates_are_removed_before_estimating() -> None:
    x = _linear(5, n=800)
    dup = np.concatenate([x, x[:400]])
    assert len(prepare_sample(dup)) == 800
    a = {r["estimator"]: r["id"] for r in estimate(dup, ["mle", "twonn"])}
    b = {r["estimator"]: r["id"] for r in estimate(x, ["mle", "twonn"])}
    assert a == pytest.approx(b)
    assert a["mle"] > 3  # skdim's MLE returns 0 on duplicates; ours must not


def test_nan_embeddings_are_refused() -> None:
    x = _linear(3, n=100)
    x[5, 2] = np.nan
    with pytest.raises(IntrinsicDimError, match="NaN"):
        estimate(x, ["mle"])


def test_unknown_estimator_and_tiny_sample() -> None:
    with pytest.raises(IntrinsicDimError, match="unknown estimator"):
        estimate(_linear(3, n=100), ["nope"])
    with pytest.raises(IntrinsicDimError, match="distinct points"):
        estimate(np.ones((50, 4)), ["mle"])
