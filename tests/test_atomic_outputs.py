"""The project's own outputs are written atomically: a write that fails half-way leaves no file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tempcompress import stages
from tempcompress.provenance import atomic_output


def _half_then_fail(path, *args, **kwargs):
    """A write killed half-way: part of the bytes land, then the process dies."""
    Path(path).write_bytes(b"PAR1 half a file")
    raise KeyboardInterrupt("killed at the time limit")


def test_a_killed_parquet_write_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "texts.parquet"
    monkeypatch.setattr(pd.DataFrame, "to_parquet", lambda self, path, *a, **k: _half_then_fail(path))
    with pytest.raises(KeyboardInterrupt):
        stages._texts_out(out, ["a", "b"])
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file


def test_a_killed_npy_write_leaves_no_file(tmp_path: Path, monkeypatch, tiny_raw) -> None:
    from tempcompress.config import expand_runs, load_config

    config = load_config(tiny_raw)
    run = next(r for r, s in expand_runs(config).items() if s.kind == "base")
    texts = tmp_path / "texts.parquet"
    stages._texts_out(texts, ["one sentence.", "another sentence."])
    monkeypatch.setattr(np, "save", _half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        stages.encode_sample(config, run, None, str(texts), str(tmp_path / "x.npy"), str(tmp_path / "x.json"),
                             str(tmp_path / "failed"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts.parquet"]


def test_atomic_output_replaces_the_old_file_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "codes.npz"
    with atomic_output(out) as tmp:
        np.savez(tmp, a=np.arange(3))
    assert np.load(out)["a"].tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        np.savez(tmp, a=np.arange(5))
        raise RuntimeError("failed after writing")
    assert np.load(out)["a"].tolist() == [0, 1, 2]  # the previous complete file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npz"]
