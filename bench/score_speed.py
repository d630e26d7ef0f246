"""Seconds of the compress and score stages for one run, as the pipeline's jobs run them.

Runs ``tempcompress.stages.compress`` and ``score`` (with an empty mteb result cache, so
every variant is really evaluated) on an encode stage's output, single-threaded as Snakemake runs a
1-thread job (OMP/BLAS threads = 1).  ``--src`` points at another checkout of this
repository (e.g. ``git archive <commit> | tar -x -C /tmp/old``) to time its code on the
same embeddings and config: before/after numbers on one machine in one session.

    python bench/score_speed.py --emb-dir <results>/embeddings/minilm.base [--src DIR] [--repeats 2]
        -> results/benchmarks/score_speed.csv (one row per source tree and repeat, appended)

Wall seconds depend on what else runs on the machine; CPU seconds (process time) less so.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn, *args) -> tuple[float, float]:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emb-dir", required=True, help="an encode stage's output folder (eval.npy, fit.npy, ...)")
    ap.add_argument("--src", default=str(ROOT), help="repository checkout whose code and config/config.yaml to time")
    ap.add_argument("--config", default=None, help="config file (default: <src>/config/config.yaml)")
    ap.add_argument("--run", default="minilm.base")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--label", default=None, help="name of this source tree in the table")
    ap.add_argument("--out", default="results/benchmarks/score_speed.csv")
    args = ap.parse_args()
    src = Path(args.src).resolve()
    sys.path.insert(0, str(src / "workflow"))
    import pandas as pd
    import yaml
    from tempcompress.config import load_config
    from tempcompress.stages import compress, score

    config = load_config(yaml.safe_load(Path(args.config or src / "config" / "config.yaml").read_text()))
    compact = "out_npz" in inspect.signature(compress).parameters  # else: one .npy per variant (older code)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        codes = str(Path(tmp) / ("codes.npz" if compact else "compressed"))
        out = str(Path(tmp) / "scores.csv")
        # repeat 0 pays the imports and first calls, as every pipeline job does
        for rep in range(args.repeats):
            c_wall, c_cpu = _timed(compress, config, args.run, args.emb_dir, codes)
            cache = str(Path(tmp) / f"mteb-{rep}")  # a fresh mteb result cache: every variant evaluated
            s_wall, s_cpu = _timed(score, config, args.run, args.emb_dir, codes, out, cache)
            scores = pd.read_csv(out)
            n_var = scores.groupby(["method", "dim"]).ngroups
            rows.append({"source": args.label or src.name, "repeat": rep, "variants": n_var,
                         "tasks": scores["task"].nunique(), "compress_wall_s": c_wall, "compress_cpu_s": c_cpu,
                         "score_wall_s": s_wall, "score_cpu_s": s_cpu, "score_cpu_s_per_variant": s_cpu / n_var})
            print(rows[-1], flush=True)
        scores.to_csv(Path(args.out).with_name(f"score_speed_{args.label or src.name}_scores.csv"), index=False)
    df = pd.DataFrame(rows)
    df.to_csv(args.out, mode="a", header=not Path(args.out).is_file(), index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
