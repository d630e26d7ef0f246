"""Glue for the Snakemake scripts: logging to the rule's log file, thread limits.

Imports nothing heavy: a script imports this module first and its stage module inside
``rule_context``, so that the thread limits are in the environment before numpy or torch
is imported (OpenMP and BLAS read them once, when they load).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

TORCH_RULES = {"train", "encode", "encode_sample", "compress", "hpd"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "GOTO_NUM_THREADS")


def limit_threads(threads: int | str) -> None:
    """Set the OpenMP / BLAS thread limits to the job's thread count; warn if numpy or torch
    was imported before (then the limits come too late to take effect)."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    early = [m for m in ("numpy", "torch") if m in sys.modules]
    if early:
        print(f"WARNING {', '.join(early)} imported before the thread limits were set: import the stage "
              "module inside rule_context", file=sys.stderr)


@contextlib.contextmanager
def rule_context(snakemake: Any) -> Iterator[dict[str, Any]]:
    """Cap threads (before anything heavy is imported), send stdout/stderr to the rule's log,
    and log a failure's traceback."""
    threads = str(getattr(snakemake, "threads", 1) or 1)
    limit_threads(threads)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log_path = snakemake.log[0] if len(snakemake.log) else None
    stream = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
    try:
        with contextlib.ExitStack() as stack:
            if stream is not None:
                stack.enter_context(contextlib.redirect_stdout(stream))
                stack.enter_context(contextlib.redirect_stderr(stream))
            if getattr(snakemake, "rule", "") in TORCH_RULES:
                import torch

                torch.set_num_threads(int(threads))
            try:
                yield dict(snakemake.config)
            except Exception:
                traceback.print_exc()
                raise
    finally:
        if stream is not None:
            stream.close()
