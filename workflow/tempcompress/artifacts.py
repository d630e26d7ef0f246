"""Embedding matrices with a record of what they should be: the encode stages write each
matrix's content hash, shape and dtype into its meta.json, and every reader checks them (and
that no row is NaN or inf) before use.  A file cut short by a kill, emptied by a full disk,
replaced by another run's or damaged otherwise stops its reader with the file's name and the
fix, never reaches a number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .provenance import file_sha256


class ArtifactError(RuntimeError):
    """A finished artifact that is not what its producer wrote."""


def fix_for(path: str | Path) -> str:
    return (f"Delete {path} and run snakemake again: it recomputes the file and everything that read it "
            "(`python -m tempcompress.verify results` lists every broken artifact).")


def matrix_record(path: str | Path) -> dict[str, Any]:
    """What a reader checks a saved matrix against: its SHA-256, shape and dtype."""
    arr = np.load(path, mmap_mode="r")
    return {"sha256": file_sha256(path), "shape": [int(s) for s in arr.shape], "dtype": str(arr.dtype)}


def meta_path(path: str | Path) -> Path:
    """The meta.json that records ``path``: ``<name>.meta.json`` beside it (the shared samples),
    else the folder's ``meta.json`` (eval.npy)."""
    path = Path(path)
    own = path.with_name(path.stem + ".meta.json")
    return own if own.is_file() else path.with_name("meta.json")


def recorded(path: str | Path) -> dict[str, Any] | None:
    """The record of ``path`` in its meta.json (None where the meta.json predates records)."""
    path = Path(path)
    meta = meta_path(path)
    if not meta.is_file():
        return None
    try:
        record = json.loads(meta.read_text())
    except ValueError as exc:
        raise ArtifactError(f"{meta} does not parse ({exc}). {fix_for(meta)}") from exc
    return (record.get("artifacts") or {}).get(path.name)


def load_matrix(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A saved embedding matrix, checked: it loads, matches the hash and shape its meta.json
    records, and every value is finite.  Raises ArtifactError naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing. {fix_for(path)}")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path} cannot be read as a matrix ({exc}): it was cut short, emptied or "
                            f"overwritten. {fix_for(path)}") from exc
    rec = recorded(path)
    if rec is not None:
        if [int(s) for s in arr.shape] != list(rec["shape"]) or str(arr.dtype) != rec["dtype"]:
            raise ArtifactError(f"{path} holds a {arr.dtype} matrix of shape {list(arr.shape)}; its meta.json "
                                f"records {rec['dtype']} {rec['shape']}: it was replaced. {fix_for(path)}")
        if file_sha256(path) != rec["sha256"]:
            raise ArtifactError(f"{path} does not match the SHA-256 its meta.json records: it was replaced "
                                f"or changed after it was written. {fix_for(path)}")
    if arr.ndim != 2:
        raise ArtifactError(f"{path} is not a matrix (shape {list(arr.shape)}). {fix_for(path)}")
    bad = int((~np.isfinite(np.asarray(arr))).any(axis=1).sum())
    if bad:
        raise ArtifactError(f"{path} has {bad} rows with NaN or inf values (a diverged model, or a damaged "
                            f"file). {fix_for(path)}")
    return arr
