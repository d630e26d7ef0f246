"""Per-stage wall time and peak memory of a finished pipeline run, from Snakemake's
benchmark files (results/benchmarks/<rule>/...tsv), plus the time of a no-op rerun.

    python bench/pipeline_summary.py   -> results/benchmarks/pipeline_stages.csv
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    root = Path("results/benchmarks")
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        stage = tsv.relative_to(root).parts[0]
        df = pd.read_csv(tsv, sep="\t")
        rows.append({"stage": stage, "job": str(tsv.relative_to(root)), "seconds": df["s"].iloc[0],
                     "max_rss_mb": df["max_rss"].iloc[0]})
    jobs = pd.DataFrame(rows)
    summary = jobs.groupby("stage").agg(jobs=("job", "count"), total_s=("seconds", "sum"),
                                        mean_s=("seconds", "mean"), max_rss_mb=("max_rss_mb", "max")).reset_index()
    t0 = time.perf_counter()
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n"], capture_output=True, text=True)
    noop = time.perf_counter() - t0
    nothing = "Nothing to be done" in dry.stdout + dry.stderr
    summary.loc[len(summary)] = {"stage": f"no-op rerun (snakemake -n; nothing to do: {nothing})", "jobs": 0,
                                 "total_s": noop, "mean_s": noop, "max_rss_mb": float("nan")}
    summary.to_csv(root / "pipeline_stages.csv", index=False)
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
