"""Overhead ratio of a finished pipeline run: pipeline wall time / pure transformer compute.

Pure compute = the trainer's optimizer steps (``train_seconds`` in each model's meta.json)
plus the forward passes of every encoding (``forward_seconds`` in the encode and sample
meta.json files), all measured inside the jobs of the same run.  Wall time = first job start
to last job end in the Snakemake log with the most finished jobs (or ``--wall``).  Also per
stage: jobs, the jobs' own seconds (Snakemake benchmark files) and the fixed cost per job
(job seconds minus its compute: start-up, imports, model loading and saving, mteb).

    python bench/overhead.py [--cores 2]   (in the run's directory)
        -> results/benchmarks/overhead.csv
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", re.M)


def log_wall(log_dir: Path) -> tuple[float, int, str]:
    """(seconds from first to last timestamp, finished jobs, log name) of the fullest log."""
    best = None
    for log in log_dir.glob("*.snakemake.log"):
        text = log.read_text(errors="replace")
        n = text.count("Finished jobid")
        stamps = [datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in STAMP.findall(text)]
        if stamps and (best is None or n > best[1]):
            best = ((stamps[-1] - stamps[0]).total_seconds(), n, log.name)
    if best is None:
        raise SystemExit(f"no Snakemake log with job timestamps under {log_dir}: run the pipeline first")
    return best


def job_seconds(bench: Path, since: float = 0.0) -> pd.DataFrame:
    """One row per job (stage, seconds) from Snakemake's benchmark files written after `since`."""
    rows = [{"stage": tsv.relative_to(bench).parts[0], "seconds": float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])}
            for tsv in bench.rglob("*.tsv") if tsv.stat().st_mtime >= since]
    return pd.DataFrame(rows, columns=["stage", "seconds"])


def compute_seconds(results: Path) -> dict[str, float]:
    """Pure transformer seconds per stage, from the jobs' own meta.json files."""
    def total(pattern: str, key: str) -> float:
        return sum(json.loads(p.read_text()).get(key, 0.0) or 0.0 for p in results.glob(pattern))

    return {"train": total("models/*/meta.json", "train_seconds"),
            "encode": total("embeddings/*/meta.json", "forward_seconds"),
            "encode_sample": total("embeddings/*/*.meta.json", "forward_seconds")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--wall", type=float, help="pipeline wall seconds (default: from .snakemake/log)")
    ap.add_argument("--cores", type=int, default=2, help="cores the run had (for the ideal-parallel line)")
    args = ap.parse_args()
    results = Path(args.results)
    jobs = job_seconds(results / "benchmarks")
    compute = compute_seconds(results)
    per = jobs.groupby("stage")["seconds"].agg(jobs="count", job_s="sum").reset_index()
    per["compute_s"] = per["stage"].map(compute).fillna(0.0)
    per["fixed_s_per_job"] = (per["job_s"] - per["compute_s"]) / per["jobs"]
    if args.wall is not None:
        wall, log = args.wall, "--wall"
    else:
        wall, _, log = log_wall(Path(".snakemake/log"))
    pure = sum(compute.values())
    total = {"stage": "pipeline", "jobs": int(per["jobs"].sum()), "job_s": per["job_s"].sum(), "compute_s": pure,
             "fixed_s_per_job": (per["job_s"].sum() - pure) / max(int(per["jobs"].sum()), 1)}
    out = pd.concat([per, pd.DataFrame([total])], ignore_index=True)
    out["wall_s"] = [float("nan")] * len(per) + [wall]
    out["overhead_ratio"] = [float("nan")] * len(per) + [wall / pure if pure else float("nan")]
    out["ideal_wall_s"] = [float("nan")] * len(per) + [out["job_s"].iloc[-1] / args.cores]
    dest = results / "benchmarks" / "overhead.csv"
    out.round(2).to_csv(dest, index=False)
    print(out.round(2).to_string(index=False))
    forward = compute["encode"] + compute["encode_sample"]
    print(f"\nwall {wall:.0f} s ({log}); pure transformer compute {pure:.0f} s "
          f"(train steps {compute['train']:.0f} s, forward passes {forward:.0f} s); "
          f"overhead ratio {wall / pure if pure else float('nan'):.2f}  -> {dest}")


if __name__ == "__main__":
    main()
