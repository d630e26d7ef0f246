"""Faults injected into finished artifacts, one per row: `tempcompress.verify` names each broken
file, and a stage that reads a damaged matrix stops naming the file and the fix, never reaching
a number.  The artifacts are copied from the shared tiny run (its meta.json records each matrix's
hash and shape), so the table checks what the pipeline really writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tempcompress.artifacts import ArtifactError, load_matrix
from tempcompress.verify import verify

pytestmark = pytest.mark.slow
A, B = "minilm.crop.tau-1.0.seed-0", "minilm.crop.tau-0.05.seed-0"  # B: the run whose files replace A's


@pytest.fixture(scope="module")
def results(tiny_run, tmp_path_factory) -> Path:
    """A copy of part of the tiny run's results: two runs' embeddings, one run's model, scores, ID
    estimates, a tidy table and mteb cache entries."""
    src, dst = Path(tiny_run) / "results", tmp_path_factory.mktemp("verify") / "results"
    for rel in [f"embeddings/{A}", f"embeddings/{B}", f"models/{A}", f"models/{B}"]:
        shutil.copytree(src / rel, dst / rel)
    for rel in [f"scores/{A}.csv", f"scores/{B}.csv", f"intrinsic_dim/{A}.csv", f"intrinsic_dim/{B}.csv",
                "tables/scores.parquet"]:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)
    entries = sorted((src / "mteb").rglob(f"*{A}*/**/LeeSTS.json"))[:1]
    for f in entries:
        (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        for part in (f, f.with_name(f.name + ".sha256")):  # the entry and its recorded hash
            shutil.copy2(part, dst / part.relative_to(src))
    assert entries
    return dst


def _mteb_entry(root: Path) -> str:
    return str(next((root / "mteb").rglob("LeeSTS.json")).relative_to(root))


# artifact (path under results/, or a function of it) x fault
MATRICES = [f"embeddings/{A}/eval.npy", f"embeddings/{A}/idsample.npy", f"embeddings/{A}/fit.npy"]
FAULTS_MATRIX = ["truncated", "zero bytes", "deleted", "replaced by another run's", "NaN rows", "wrong shape"]
PARSED = [f"embeddings/{A}/eval_texts.parquet", "tables/scores.parquet", f"models/{A}/meta.json",
          f"embeddings/{A}/meta.json", f"embeddings/{A}/fit.meta.json", "MTEB"]
FAULTS_PARSED = ["truncated", "zero bytes", "garbage"]
CSVS = [f"scores/{A}.csv", f"intrinsic_dim/{A}.csv", f"models/{A}/loss.csv"]
FAULTS_CSV = ["zero bytes", "deleted", "garbage", "replaced by an empty table"]
WEIGHTS = [f"models/{A}/model/model.safetensors"]
FAULTS_WEIGHTS = ["truncated", "zero bytes", "deleted"]
ROWS = ([(a, f) for a in MATRICES for f in FAULTS_MATRIX] + [(a, f) for a in PARSED for f in FAULTS_PARSED]
        + [("MTEB", "a score edited")]  # parses, but is not what mteb wrote: its recorded hash differs
        + [(a, f) for a in CSVS for f in FAULTS_CSV] + [(a, f) for a in WEIGHTS for f in FAULTS_WEIGHTS])


def _inject(path: Path, fault: str) -> None:
    data = path.read_bytes()
    if fault == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif fault == "zero bytes":
        path.write_bytes(b"")
    elif fault == "deleted":
        path.unlink()
    elif fault == "garbage":
        path.write_bytes(b"\x00\xff not what was written \x13" * 4)
    elif fault == "replaced by another run's":
        path.write_bytes(Path(str(path).replace(A, B)).read_bytes())
    elif fault == "a score edited":
        path.write_text(data.decode().replace('"main_score": ', '"main_score": 0.0', 1))
    elif fault == "replaced by an empty table":
        path.write_text(data.decode().splitlines()[0] + "\n")
    elif fault == "NaN rows":
        m = np.load(path)
        m[3] = np.nan
        np.save(path, m)
    elif fault == "wrong shape":
        np.save(path, np.load(path)[:, :-1])
    else:
        raise ValueError(fault)


def test_the_fault_table_has_every_artifact_and_fault() -> None:
    assert len(ROWS) >= 30 and len(set(ROWS)) == len(ROWS)


def test_a_finished_run_verifies_clean(tiny_run) -> None:
    n, problems = verify(Path(tiny_run) / "results")
    assert n > 100 and problems == [], "\n".join(p.line() for p in problems)


@pytest.mark.parametrize("artifact,fault", ROWS, ids=[f"{a.split('/')[-1]}-{f}" for a, f in ROWS])
def test_verify_names_each_injected_fault(results: Path, artifact: str, fault: str) -> None:
    rel = _mteb_entry(results) if artifact == "MTEB" else artifact
    target = results / rel
    reported = target.parent if artifact in WEIGHTS else target  # a model is checked as its folder
    saved = target.read_bytes()
    assert verify(results)[1] == []
    try:
        _inject(target, fault)
        _, problems = verify(results)
        flagged = {p.path for p in problems}
        assert reported in flagged, f"{rel} {fault}: not reported; reported {flagged}"
        # nothing outside the damaged file's folder (an eval matrix of another shape also makes its
        # texts table disagree with it; a damaged meta.json also stops the matrices it records)
        assert {p.parent for p in flagged} == {reported.parent}, flagged
        line = next(p.line() for p in problems if p.path == reported)
        assert str(reported) in line and "fix: delete it" in line
    finally:
        target.write_bytes(saved)
    assert verify(results)[1] == []


@pytest.mark.parametrize("fault", FAULTS_MATRIX)
def test_a_reader_of_a_damaged_matrix_stops_naming_the_file_and_the_fix(results: Path, fault: str) -> None:
    target = results / "embeddings" / A / "idsample.npy"
    saved = target.read_bytes()
    try:
        _inject(target, fault)
        with pytest.raises(ArtifactError) as err:
            load_matrix(target)
        assert str(target) in str(err.value) and f"Delete {target}" in str(err.value)
    finally:
        target.write_bytes(saved)
    assert load_matrix(target).shape[1] == 384
