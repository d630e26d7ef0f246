"""Provenance: a small JSON beside every artifact (config hash, seed, versions, git commit)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "sentence-transformers", "transformers", "mteb", "scikit-dimension", "numpy", "snakemake")


@cache
def git_commit() -> str:
    """The commit of the project checkout (with '+dirty' if it has uncommitted changes)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_hash(config: dict[str, Any]) -> str:
    """Short SHA-256 of the config, canonically serialised."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def provenance(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The record written beside an artifact; ``extra`` holds stage facts (seed, run, ...)."""
    rec: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "host": platform.node(),
        "packages": package_versions(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    if config is not None:
        rec["config_hash"] = config_hash(config)
        rec["run_name"] = config.get("run_name")
    rec.update(extra)
    return rec


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` (os.replace) when the
    block succeeds, deleted when it fails, so a killed or failed job never leaves half a file.
    The temporary name keeps the suffix (numpy appends .npy / .npz to names without it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, record: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so a killed job never leaves half a file."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


DIGEST_CACHE = Path(".snakemake") / "tempcompress" / "digests.json"


def content_digests(paths: dict[str, str | Path], cache_file: str | Path = DIGEST_CACHE) -> dict[str, str | None]:
    """SHA-256 (first 16 hex digits) of each existing file, None for one not written yet.

    Rules take these as params: Snakemake compares params with those of the finished job, so an
    artifact replaced by another of different content (another run's, a repaired one) reruns what
    read it, also where the files in between are temp() and gone, while a touched or rewritten file
    of the same content reruns nothing.  Hashes are cached by the file's stat in ``cache_file``
    (a missing or unreadable cache only costs a rehash)."""
    cache_path = Path(cache_file)
    try:
        known = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        known = {}
    out: dict[str, str | None] = {}
    changed = False
    for name, p in paths.items():
        path = Path(p)
        try:
            st = path.stat()
        except OSError:
            out[name] = None
            continue
        # ctime too: a copy over the file with its time kept (cp -p) keeps size and mtime, never ctime
        key = f"{path.resolve()}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        if key not in known:
            known[key] = file_sha256(path)[:16]
            changed = True
        out[name] = known[key]
    if changed:
        with contextlib.suppress(OSError):
            write_json(cache_path, known)
    return out
