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


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
sys.path.insert(0, {workflow!r})
import numpy as np
from tempcompress import stages
from tempcompress.provenance import atomic_output, write_json
out, entry = Path({out!r}), Path({entry!r})
# Python ignores SIGXFSZ, so the write fails with EFBIG (as ENOSPC would on a full disk); with the
# default action, the kernel kills the process part-way through the write
signal.signal(signal.SIGXFSZ, signal.SIG_IGN if {fail!r} else signal.SIG_DFL)
def _npy(path):
    with atomic_output(path) as tmp:
        np.save(tmp, np.ones((200, 384), dtype=np.float32))
def _mteb(path):  # mteb rewrites an entry in place (here: a result with many scores)
    import mteb
    from mteb.results import TaskResult
    scores = {{"main_score": 0.25, **{{f"score_{{i}}": 0.125 for i in range(5000)}}}}
    TaskResult.from_task_results(mteb.get_task("STSBenchmark"), {{"test": {{"default": scores}}}},
                                 evaluation_time=1.0).to_disk(path)
writes = {{
    "texts.parquet": lambda: stages._texts_out(out / "texts.parquet", [f"sentence {{i}}" for i in range(20000)]),
    "eval.npy": lambda: _npy(out / "eval.npy"),
    "meta.json": lambda: write_json(out / "meta.json", {{"rows": list(range(20000))}}),
    "mteb entry": lambda: _mteb(entry),
}}
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    writes[{name!r}]()
    print("written")
except OSError as exc:
    print(f"OSError errno {{exc.errno}}")
"""
WRITES = ["texts.parquet", "eval.npy", "meta.json", "mteb entry"]


@pytest.mark.parametrize("fail", [True, False], ids=["write fails", "process killed"])
@pytest.mark.parametrize("name", WRITES)
def test_a_full_disk_leaves_no_file_a_later_run_would_accept(tmp_path: Path, cached_entry: Path, name: str,
                                                             fail: bool) -> None:
    """A size limit (RLIMIT_FSIZE) stands in for a full disk: the write stops part-way, either
    failing (EFBIG, as ENOSPC would) or with the process killed (SIGXFSZ).  The project's own
    outputs leave nothing under their name; mteb's result, which mteb writes in place, is left
    part-written and no longer matches its recorded hash, so the next score moves it aside and
    recomputes it."""
    import subprocess
    import sys

    from conftest import ROOT
    from tempcompress.mteb_bridge import read_result

    out = tmp_path / "out"
    out.mkdir()
    code = FULL_DISK.format(workflow=str(ROOT / "workflow"), out=str(out), entry=str(cached_entry), fail=fail,
                            name=name)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if fail:
        assert proc.returncode == 0 and "OSError" in proc.stdout, (proc.stdout, proc.stderr[-3000:])  # numpy: no errno
    else:
        assert proc.returncode == -25, (proc.returncode, proc.stdout, proc.stderr[-2000:])  # SIGXFSZ
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []  # nothing under its own name
    if name == "mteb entry":
        assert cached_entry.stat().st_size > 0  # part-written in place ...
        with pytest.raises(ValueError, match="does not match the hash recorded"):
            read_result(cached_entry)  # ... and refused


@pytest.fixture
def cached_entry(tmp_path: Path) -> Path:
    """A cached mteb result with its recorded hash, as the score stage leaves it."""
    import mteb
    from mteb.results import TaskResult
    from tempcompress.mteb_bridge import read_result, record_hash

    entry = tmp_path / "mteb" / "STSBenchmark.json"
    entry.parent.mkdir()
    TaskResult.from_task_results(mteb.get_task("STSBenchmark"), {"test": {"default": {"main_score": 0.5}}},
                                 evaluation_time=1.0).to_disk(entry)
    record_hash(entry)
    assert read_result(entry).get_score() == 0.5
    return entry
