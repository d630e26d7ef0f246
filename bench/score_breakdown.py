"""Where a score job's seconds go: its fixed cost (imports) and its cost per variant and task.

A score job pays a fixed cost once (Python, numpy/pandas, mteb, torch, which mteb's
dataloaders import, and the sentence-transformers import that ``mteb.evaluate`` always does
to recognise a model) and then, per served variant, one ``mteb.evaluate`` call per task.
This measures both parts on a finished run's embeddings, single-threaded as a 1-thread
Snakemake job runs:

* imports: each set timed in a fresh interpreter (median of ``--import-repeats``);
* per variant: every configured task, loaded once, evaluated on ``--variants`` truncations of
  the run's eval matrix (each L2-normalised, as the score stage serves it) through
  ``mteb_bridge.run_tasks`` (mteb's own evaluators, no result cache), after one warm-up call
  (which pays the sentence-transformers import).

    python bench/score_breakdown.py --emb-dir <results>/embeddings/minilm.crop.tau-0.1.seed-0
        -> results/benchmarks/score_breakdown.csv (part, what, seconds)

The default grid's score job = fixed + (variants per run) x (sum over tasks of the per-variant
seconds); the score stage's benchmark files measure the whole job.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = {
    "python, numpy, pandas": "import numpy, pandas",
    "+ mteb": "import numpy, pandas, mteb",
    "+ mteb, torch (mteb's dataloaders import it)": "import numpy, pandas, mteb, torch",
    "+ mteb, sentence_transformers": "import numpy, pandas, mteb, sentence_transformers",
}


def import_seconds(statement: str, repeats: int) -> float:
    """Median wall seconds of a fresh interpreter that runs ``statement``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_variant_seconds(emb_dir: Path, config_path: Path, n_variants: int) -> dict[str, float]:
    """Mean seconds of one variant's ``mteb.evaluate`` call, per configured task."""
    sys.path.insert(0, str(ROOT / "workflow"))
    import numpy as np
    import yaml
    from tempcompress.compression import l2_normalize
    from tempcompress.config import load_config
    from tempcompress.mteb_bridge import LookupEncoder, model_meta, run_tasks
    from tempcompress.stages import read_texts
    from tempcompress.tasks import build_tasks

    ev = load_config(yaml.safe_load(config_path.read_text()))["evaluation"]
    texts = read_texts(emb_dir / "eval_texts.parquet")
    full = np.load(emb_dir / "eval.npy")
    dims = [full.shape[1] >> k for k in range(n_variants)]

    def served(i: int) -> LookupEncoder:  # a truncation, served as the score stage serves it
        return LookupEncoder(texts, l2_normalize(full[:, : dims[i]]), model_meta(f"b{i}", "bench", dims[i]))

    tasks = build_tasks(ev["tasks"], ev)
    run_tasks(served(0), tasks[:1], None, ev["batch_size"])  # warm-up: the imports mteb.evaluate does
    out = {}
    for task in tasks:
        task.load_data()
        t0 = time.perf_counter()
        for i in range(n_variants):
            run_tasks(served(i), [task], None, ev["batch_size"])
        out[task.metadata.name] = (time.perf_counter() - t0) / n_variants
        task.unload_data()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emb-dir", required=True, help="an encode stage's output folder (eval.npy, eval_texts.parquet)")
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--variants", type=int, default=6, help="truncations timed per task (384, 192, ...)")
    ap.add_argument("--import-repeats", type=int, default=3)
    ap.add_argument("--out", default="results/benchmarks/score_breakdown.csv")
    args = ap.parse_args()
    import pandas as pd

    rows = [{"part": "import", "what": what, "seconds": import_seconds(stmt, args.import_repeats)}
            for what, stmt in IMPORTS.items()]
    rows += [{"part": "per variant", "what": task, "seconds": s}
             for task, s in per_variant_seconds(Path(args.emb_dir), Path(args.config), args.variants).items()]
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False))
    per_variant = df.loc[df["part"] == "per variant", "seconds"].sum()
    print(f"per variant, all tasks: {per_variant:.3f} s")


if __name__ == "__main__":
    main()
