"""Synthetic per-run score / ID / loss files with the pipeline's own columns, for analysis tests.

The numbers follow a known model: ID falls and retention rises with log τ, the second model
scores ``MODEL_OFFSET`` higher everywhere, seeds add small noise.  The files go through the
real aggregation (``tables.aggregate``), so the tests exercise the same path as a run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from tempcompress.config import expand_runs
from tempcompress.tables import aggregate

TASKS = [("LeeSTS", "STS", "cosine_spearman"), ("BBCNewsClassification", "Classification", "accuracy"),
         ("BBCNewsClustering", "Clustering", "v_measure"), ("BBCHeadlineRetrieval", "Retrieval", "ndcg_at_10")]
MODEL_OFFSET = {"m1": 0.0, "m2": 0.1}
BASE_FULL = {"STS": 0.5, "Classification": 0.7, "Clustering": 0.5, "Retrieval": 0.6}


def synth_config(seeds: tuple[str, ...] = ("0", "1", "2"), models: tuple[str, ...] = ("m1", "m2")) -> dict:
    """A config dict with the keys the analysis reads (not validated: the models are fake)."""
    return {
        "models": {m: {"source": f"path:/nowhere/{m}"} for m in models},
        "temperatures": ["0.01", "0.1", "1.0"],
        "seeds": list(seeds),
        "variants": {
            "crop": {"kind": "infonce", "augmentation": "crop"},
            "dropout": {"kind": "infonce", "augmentation": "dropout"},
            "agg-sum": {"kind": "multi_temperature", "temperatures": ["0.01", "0.1", "1.0"]},
            "mrl": {"kind": "matryoshka", "temperature": "0.1"},
        },
        "compression": {"methods": ["truncation", "binarization", "pca"], "dims": [64, 16]},
        "intrinsic_dim": {"estimators": ["twonn", "mle"]},
    }


def _tau_effect(spec) -> float:
    """log10 τ in [-2, 0] for single-τ runs; aggregation at the middle; base below the grid."""
    if spec.tau is not None:
        return math.log10(float(spec.tau))
    return -1.0 if spec.taus else -2.5


def write_run_files(config: dict, root: Path, noise: float = 0.01, id_noise: float = 0.3,
                    trend: float = 1.0, seed: int = 0, id_samples: bool = True, within_tau: float = 0.0,
                    lossless_gap: float = 0.0, method_gain: dict[str, float] | None = None) -> dict[str, list[str]]:
    """Per-run scores / ID / loss CSVs under ``root``; returns the path lists aggregate() takes.

    ``within_tau`` > 0: each run gets an ID offset 2u, u ~ N(0, 1), that lowers its compressed scores
    by ``within_tau`` · u (0: ID varies within τ by ``id_noise`` only and predicts nothing there).  A quantizer
    scored at the native dim 384 other than binarization scores the float score + ``lossless_gap``
    (clustering only).  ``method_gain`` adds a constant to every compressed score of a method
    (e.g. {"hpd": 0.03}: the student scores 0.03 above the others, at every dim and task)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[str]] = {"scores": [], "ids": [], "losses": []}
    for run, spec in expand_runs(config).items():
        lt = _tau_effect(spec)  # -2 .. 0
        off = MODEL_OFFSET[spec.model]
        aug = -0.05 if spec.augmentation == "dropout" else 0.0
        rows = []
        u = float(rng.normal())
        for task, ttype, metric in TASKS:
            full = BASE_FULL[ttype] + off + aug + 0.02 * trend * lt * (-1 if ttype == "Retrieval" else 1)
            full += rng.normal(0, noise)
            rows.append({"run": run, "method": "none", "dim": "full", "task": task, "task_type": ttype,
                         "metric": metric, "score": full})
            for method in config["compression"]["methods"]:
                dims = [str(d) for d in config["compression"]["dims"]]
                if method in ("binarization", "int8", "float16"):
                    dims = [*dims, "384"]
                for dim in dims:
                    keep = 1 - (0.3 if dim == "16" else 0.1 if dim == "64" else 0.02) * (1 - 0.3 * trend * (lt + 2))
                    if spec.kind == "matryoshka":
                        keep = min(1.0, keep + 0.1)
                    score = full * keep + rng.normal(0, noise) - within_tau * u + (method_gain or {}).get(method, 0.0)
                    if method in ("int8", "float16") and dim == "384":
                        score = full + (lossless_gap if ttype == "Clustering" else 0.0)
                    rows.append({"run": run, "method": method, "dim": dim, "task": task, "task_type": ttype,
                                 "metric": metric, "score": score})
        p = root / f"scores-{run}.csv"
        pd.DataFrame(rows).to_csv(p, index=False)
        paths["scores"].append(str(p))
        ids = []
        for sample in (["corpus", "eval"] if id_samples else [None]):
            for est in config["intrinsic_dim"]["estimators"]:
                value = 20 - 4 * trend * (lt + 2) + (2 if sample == "corpus" else 0) + rng.normal(0, id_noise)
                value += 2 * u if within_tau else 0.0
                row = {"run": run, "estimator": est, "id": value, "n_points": 1000}
                if sample:
                    row["sample"] = sample
                ids.append(row)
        p = root / f"id-{run}.csv"
        pd.DataFrame(ids).to_csv(p, index=False)
        paths["ids"].append(str(p))
        if spec.kind not in ("base", "soup"):
            p = root / f"loss-{run}.csv"
            pd.DataFrame({"run": run, "variant": spec.variant, "tau": spec.tau_label, "seed": spec.seed,
                          "step": [1, 2, 3], "loss": [2.0, 1.5, 1.2 + rng.normal(0, 0.01)],
                          "learning_rate": 1e-4}).to_csv(p, index=False)
            paths["losses"].append(str(p))
    return paths


def build_tables(config: dict, root: Path, **kw) -> dict[str, str]:
    """Run the real aggregation over synthetic per-run files; returns {table: csv path}."""
    paths = write_run_files(config, root / "runs", **kw)
    out = {name: str(root / "tables" / f"{name}.csv") for name in ("scores", "intrinsic_dim", "variants",
                                                                   "training_loss")}
    (root / "tables").mkdir(parents=True, exist_ok=True)
    aggregate(config, paths["scores"], paths["ids"], paths["losses"], out)
    return out
