"""Check every finished artifact of a results folder without touching anything.

    python -m tempcompress.verify [results]     (exit status 1 when something is broken)

Each problem names the file, what is wrong and the fix (delete the file: the next `snakemake`
recomputes it and what read it).  Embedding matrices are checked against the hash, shape and
dtype their meta.json records (``artifacts.load_matrix``); tables, loss curves, scores, ID
estimates and JSON records must parse; mteb's cached results must also match the hash recorded
when they were written; a trained model's folder must hold
its config and readable weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import ArtifactError, load_matrix
from .mteb_bridge import read_result


@dataclass(frozen=True)
class Problem:
    path: Path
    problem: str
    recomputed_by: str

    def line(self) -> str:
        return (f"BROKEN {self.path}: {self.problem}\n"
                f"  fix: delete it; the next `snakemake` recomputes it ({self.recomputed_by}) and what read it")


def _csv(path: Path, required: tuple[str, ...] = (), allow_empty: bool = False) -> None:
    df = pd.read_csv(path)
    if df.empty and not allow_empty:
        raise ValueError("no rows")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"no column {missing}")
    for c in required:
        if pd.api.types.is_numeric_dtype(df[c]) and not np.isfinite(df[c].to_numpy(float)).all():
            raise ValueError(f"column '{c}' holds NaN or inf")


def _is_soup(loss_csv: Path) -> bool:
    try:
        return json.loads(loss_csv.with_name("meta.json").read_text()).get("kind") == "soup"
    except (OSError, ValueError):
        return False


def _json(path: Path) -> None:
    json.loads(path.read_text())


def _parquet(path: Path) -> None:
    pd.read_parquet(path)


def _model(folder: Path) -> None:
    from safetensors import safe_open

    for name in ("modules.json", "config.json"):
        if not (folder / name).is_file():
            raise ValueError(f"no {name}")
        json.loads((folder / name).read_text())
    weights = list(folder.glob("*.safetensors"))
    if not weights and not list(folder.glob("*.bin")):
        raise ValueError("no weights file")
    for w in weights:
        with safe_open(str(w), framework="numpy") as f:
            if not list(f.keys()):
                raise ValueError(f"{w.name} holds no tensors")


def _runs(results: Path) -> list[str]:
    """Every run that any stage of ``results`` holds an artifact of."""
    runs = {p.name for sub in ("embeddings", "models") for p in (results / sub).glob("*/")}
    runs |= {p.stem for sub in ("scores", "intrinsic_dim") for p in (results / sub).glob("*.csv")}
    return sorted(runs)


def _checks(results: Path) -> Iterator[tuple[Path, Callable[[Path], None], str]]:
    """(artifact, check, stage that recomputes it) for every artifact a finished run of ``results``
    has: each run seen in any stage must have all of its embeddings, scores and ID estimates, and a
    trained run its model, loss curve and meta.json."""
    for run in _runs(results):
        emb = results / "embeddings" / run
        for name, stage in (("eval.npy", "encode"), ("fit.npy", "encode_sample"), ("idsample.npy", "encode_sample")):
            yield emb / name, load_matrix, stage
        yield emb / "eval_texts.parquet", _eval_texts, "encode"
        for meta in ("meta.json", "fit.meta.json", "idsample.meta.json"):
            yield emb / meta, _json, "encode or encode_sample"
        yield results / "scores" / f"{run}.csv", lambda p: _csv(p, ("score",)), "score"
        yield results / "intrinsic_dim" / f"{run}.csv", lambda p: _csv(p, ("id",)), "intrinsic_dim"
        model = results / "models" / run
        if model.is_dir():
            yield model / "meta.json", _json, "train"
            # a soup's loss curve is its header only (averaged, not trained)
            yield model / "loss.csv", lambda p: _csv(p, ("step", "loss"), allow_empty=_is_soup(p)), "train"
            yield model / "model", _model, "train"
    for f in sorted((results / "tables").glob("*.parquet")):
        yield f, _parquet, "aggregate"
    for f in sorted((results / "data").glob("*.parquet")):
        yield f, _parquet, "prepare"
    for f in sorted((results / "compressed").glob("*.npz")):
        yield f, lambda p: np.load(p).files, "compress"
    for f in sorted((results / "mteb").rglob("*.json")):
        yield (f, _json if f.name == "model_meta.json" else read_result,
               "score (a broken mteb cache entry is also moved aside and recomputed by itself)")


def _eval_texts(path: Path) -> None:
    texts = pd.read_parquet(path)
    matrix = path.with_name("eval.npy")
    if matrix.is_file():
        rows = np.load(matrix, mmap_mode="r").shape[0]
        if len(texts) != rows:
            raise ValueError(f"{len(texts)} texts for the {rows} rows of eval.npy")


def verify(results: str | Path) -> tuple[int, list[Problem]]:
    """(artifacts checked, problems) of a results folder; reads only."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"{results} is not a results folder (run from the pipeline's working directory)")
    n, problems = 0, []
    for path, check, stage in _checks(results):
        n += 1
        try:
            if not path.exists():
                raise ValueError("missing (not finished, or deleted)")
            check(path)
        except ArtifactError as exc:
            problems.append(Problem(path, str(exc).split(" Delete ")[0], stage))
        except Exception as exc:  # noqa: BLE001  (any failure to read is the finding)
            problems.append(Problem(path, f"{type(exc).__name__}: {exc}", stage))
    return n, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="?", default="results")
    args = ap.parse_args(argv)
    n, problems = verify(args.results)
    for p in problems:
        print(p.line())
    print(f"{n} artifacts checked under {args.results}: " + (f"{len(problems)} broken" if problems else "all clean"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
