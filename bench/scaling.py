"""How the pipeline's wall time grows with the grid: runs, then target dims on a finished run.

Each point is a real `snakemake --cores N` run of the default config shrunk or grown along one
axis, in its own scratch directory (``--work``), from a clean ``results/``:

- runs: 2 (base + 1 trained run), 4 (base + 3 τ at seed 0) and the full default (its run
  count is in the `runs` column);
- dims: then, on the finished 4-run point, one more target dim (compress + score only: the
  already-scored variants come from the mteb result cache, so the score jobs measure their
  fixed cost plus the new variants).

For every point: wall seconds, jobs, the jobs' own seconds per stage (Snakemake benchmark
files), and the fixed (non-transformer) seconds per job from bench/overhead.py's reading of
the jobs' meta.json.

    python bench/scaling.py [--points runs-2 runs-4 dims-4 default] [--cores 2] [--work /tmp/scaling]
        -> results/benchmarks/scaling.csv
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from overhead import compute_seconds, job_seconds  # noqa: E402


def shrink(cfg: dict, temperatures: list[float], seeds: list[int], variants: list[str]) -> dict:
    out = copy.deepcopy(cfg)
    out["temperatures"], out["seeds"] = temperatures, seeds
    out["variants"] = {k: v for k, v in cfg["variants"].items() if k in variants}
    return out


def points(cfg: dict) -> dict[str, tuple[str | None, dict]]:
    """name -> (the point whose finished directory it continues, config)."""
    four = shrink(cfg, cfg["temperatures"], [0], ["crop"])
    more_dims = copy.deepcopy(four)
    more_dims["compression"]["dims"] = [*four["compression"]["dims"], 8]
    return {
        "runs-2": (None, shrink(cfg, [cfg["temperatures"][-1]], [0], ["crop"])),
        "runs-4": (None, four),
        "dims-4": ("runs-4", more_dims),
        "default": (None, cfg),
    }


def run_point(name: str, cfg: dict, work: Path, cores: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    continued = (work / "results").exists()
    since = time.time()
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
                          "--cores", str(cores), "--configfile", str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"point {name} failed:\n{res.stderr[-3000:]}")
    jobs = job_seconds(work / "results" / "benchmarks", since)  # only the jobs this call ran
    n_runs = len(list((work / "results" / "scores").glob("*.csv")))
    compute = compute_seconds(work / "results")
    row = {"point": name, "runs": n_runs, "dims": len(cfg["compression"]["dims"]),
           "methods": len(cfg["compression"]["methods"]), "wall_s": round(wall, 1),
           "jobs": res.stderr.count("Finished jobid")}
    for stage, g in jobs.groupby("stage"):
        row[f"{stage}_s"] = round(float(g["seconds"].sum()), 1)
    if not continued:
        row["compute_s"] = round(sum(compute.values()), 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", nargs="+", default=["runs-2", "runs-4", "dims-4", "default"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--work", default="/tmp/tempcompress-scaling")
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--out", default="results/benchmarks/scaling.csv")
    args = ap.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    plan = points(cfg)
    rows = []
    for name in args.points:
        parent, pcfg = plan[name]
        work = Path(args.work) / (parent or name)
        rows.append(run_point(name, pcfg, work, args.cores))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
