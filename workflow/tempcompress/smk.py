"""Glue for the Snakemake scripts: logging to the rule's log file, thread limits."""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterator
from typing import Any

TORCH_RULES = {"train", "encode", "encode_sample", "compress", "hpd"}


@contextlib.contextmanager
def rule_context(snakemake: Any) -> Iterator[dict[str, Any]]:
    """Send stdout/stderr to the rule's log, cap threads, and log a failure's traceback."""
    threads = str(getattr(snakemake, "threads", 1) or 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, threads)
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
