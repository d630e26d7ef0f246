"""ID estimation: time and Python peak memory of each estimator vs sample size (384 dims).

Data: a 20-dimensional nonlinear manifold embedded in 384 dimensions (float64), so the
estimators have a known target and no duplicates.

    python bench/id_scaling.py [--sizes 1000 5000 20000]   -> results/benchmarks/id_scaling.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from tempcompress.intrinsic_dim import estimate  # noqa: E402


def manifold(n: int, k: int = 20, d: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, size=(n, k))
    a, b = rng.normal(size=(k, d)), rng.normal(size=(k, d))
    return np.tanh(z @ a / np.sqrt(k)) + 0.3 * np.sin(z @ b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--out", default="results/benchmarks/id_scaling.csv")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        x = manifold(n)
        for r in estimate(x, ["twonn", "mle", "lpca"], {"mle_k": 20}, measure_memory=True):
            rows.append({"n": n, **r})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
