"""Growing the grid: after a complete run, an edit reruns only what depends on it.

Starts from the completed tiny run (shared with test_e2e.py), writes each edited config to a
file and asserts the exact jobs per rule that `snakemake -n` plans, and that no existing
(protected) model would be retrained unless the edit changes what it was trained with.
EXPECTED is the one table to update when a rule is added or restructured.
"""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT, job_counts, read_yaml, snakemake
from tempcompress.figures import FIGURES

N_RUNS = 18  # tiny: 2 models x (base + crop x 2 tau x 2 seeds); minilm also dropout x 2 tau + 6 single-run variants
N_CROP_SEED = 4  # the runs one more seed adds: crop x 2 tau x 2 models (the other variants run at seed 0)

# after any change of a run's scores or ID: the tables, every figure, the summary
TABLES_AND_FIGURES = {"aggregate": 1, "budget": 1, "findings": 1, "summary": 1, "all": 1,
                      **{f"figure_{f}": 1 for f in FIGURES}}
ITEM_NOISE = {"item_noise": 1}  # item-level bootstrap: new or re-encoded runs, tasks, the smallest dim


def per_run(n: int, *, train: bool = True) -> dict[str, int]:
    """Jobs of n new (or retrained) runs and everything downstream of their models."""
    jobs = {"encode": n, "encode_sample": 2 * n, "intrinsic_dim": n, "compress": n, "score": n}
    return {"train": n, **jobs} if train else jobs


def _set(path: str, value):
    def edit(cfg: dict) -> None:
        *parents, key = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value

    return edit


def _drop(path: str, item):
    def edit(cfg: dict) -> None:
        section, key = path.split(".")
        cfg[section][key] = [x for x in cfg[section][key] if x != item]

    return edit


def _add_variant(cfg: dict) -> None:
    cfg["variants"]["mrl-hot"] = {"kind": "matryoshka", "temperature": 1.0}  # both models, both seeds


def _reorder_keys(cfg: dict) -> None:
    for section in ("training", "compression", "intrinsic_dim"):
        cfg[section] = dict(reversed(list(cfg[section].items())))


# edit -> (how the config changes, expected jobs per rule, existing runs whose model is retrained)
# tiny.yaml already uses every compression method, ID estimator and local task, so those rows
# drop one: the same params change, hence the same reruns, as adding one.
EXPECTED = {
    "add a target dim": (
        _set("compression.dims", [16, 8]),
        {"compress": N_RUNS, "score": N_RUNS, **ITEM_NOISE, **TABLES_AND_FIGURES},
        set(),
    ),
    "a compression method": (
        _drop("compression.methods", "random_projection"),
        {"compress": N_RUNS, "score": N_RUNS, **TABLES_AND_FIGURES},
        set(),
    ),
    "an ID estimator": (
        _drop("intrinsic_dim.estimators", "lpca"),
        {"intrinsic_dim": N_RUNS, **TABLES_AND_FIGURES},
        set(),
    ),
    "change mle_k": (_set("intrinsic_dim.mle_k", 5), {"intrinsic_dim": N_RUNS, **TABLES_AND_FIGURES}, set()),
    "an evaluation task": (
        _drop("evaluation.tasks", "BBCNewsClustering"),
        {"encode": N_RUNS, "intrinsic_dim": N_RUNS, "compress": N_RUNS, "score": N_RUNS, **ITEM_NOISE,
         **TABLES_AND_FIGURES},
        set(),
    ),
    "add a temperature": (  # crop: 2 models x 2 seeds; dropout: minilm at seed 0
        _set("temperatures", [0.05, 0.5, 1.0]), {**per_run(5), **ITEM_NOISE, **TABLES_AND_FIGURES}, set()
    ),
    "add a seed": (_set("seeds", [0, 1, 2]), {**per_run(N_CROP_SEED), **ITEM_NOISE, **TABLES_AND_FIGURES}, set()),
    "a variant's seeds written out": (_set("variants.crop.seeds", [0, 1]), {}, set()),
    "a variant's models written out": (_set("variants.crop.models", ["minilm", "sre"]), {}, set()),
    "add a variant": (_add_variant, {**per_run(4), **ITEM_NOISE, **TABLES_AND_FIGURES}, set()),
    "change fit_size": (
        _set("compression.fit_size", 80),
        {"prepare_fit_texts": 1, "encode_sample": N_RUNS, "compress": N_RUNS, "score": N_RUNS,
         **TABLES_AND_FIGURES},
        set(),
    ),
    "change simproj_epochs": (
        _set("compression.simproj_epochs", 2),
        {"compress": N_RUNS, "score": N_RUNS, **TABLES_AND_FIGURES},
        set(),
    ),
    "change the ID sample size": (
        _set("intrinsic_dim.sample_size", 150),
        {"prepare_id_texts": 1, "encode_sample": N_RUNS, "intrinsic_dim": N_RUNS, **TABLES_AND_FIGURES},
        set(),
    ),
    "change checkpoint_steps": (_set("training.checkpoint_steps", 1), {}, set()),
    "change evaluation.batch_size": (_set("evaluation.batch_size", 7), {}, set()),
    "resources": (_set("resources", {"cpu": {"mem_mb": 1234, "threads": 2}}), {}, set()),
    "grid values as YAML numbers": (_set("temperatures", [0.05, 1]), {}, set()),
    "reordered keys": (_reorder_keys, {}, set()),
}


def planned_runs(stdout: str, rule: str) -> set[str]:
    """The {run} wildcard of every planned job of `rule`."""
    runs = set()
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", stdout):
        if block.lstrip().startswith((f"rule {rule}:", f"localrule {rule}:")):
            m = re.search(r"wildcards: run=([^\s,]+)", block)
            if m:
                runs.add(m.group(1))
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("edit", list(EXPECTED))
def test_an_edit_reruns_only_what_depends_on_it(tiny_run, tmp_path, edit: str) -> None:
    change, expected, retrained = EXPECTED[edit]
    raw = read_yaml(ROOT / "config" / "tiny.yaml")
    change(raw)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = snakemake("-n", "--configfile", str(path), cwd=tiny_run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert job_counts(res.stdout) == expected, res.stdout[-6000:]
    existing = {p.parent.name for p in (tiny_run / "results" / "models").glob("*/model")}
    assert planned_runs(res.stdout, "train") & existing == retrained
    if not expected:
        assert "Nothing to be done" in res.stdout + res.stderr


def test_rules_declare_cpu_threads_and_soups_ask_for_no_gpu(tmp_path) -> None:
    """CPU rules honour resources.cpu.threads; a soup gets the CPU resources, not the GPU request."""
    raw = read_yaml(ROOT / "config" / "tiny.yaml")
    raw["resources"] = {"train": {"mem_mb": 9000, "runtime": 240, "gpu": 1, "threads": 6},
                        "cpu": {"mem_mb": 3000, "runtime": 20, "threads": 3}}
    path = tmp_path / "res.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = snakemake("-n", "--cores", "8", "--configfile", str(path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    blocks = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", res.stdout):
        m = re.search(r"wildcards: run=([^\s,]+)", block)
        name = block.lstrip().split(":")[0].split()[-1]
        blocks[(name, m.group(1) if m else "")] = block
    soup = blocks[("train", "minilm.soup.seed-0")]
    crop = blocks[("train", "minilm.crop.tau-1.0.seed-0")]
    assert "gpu=1" in crop and "threads: 6" in crop and "runtime=240" in crop
    assert "gpu=0" in soup and "runtime=20" in soup and "mem_mb=3000" in soup and "threads: 3" in soup
    assert "threads: 3" in blocks[("intrinsic_dim", "minilm.base")]
    assert "threads: 3" in blocks[("prepare_documents", "")]


def test_the_edit_table_covers_the_issue() -> None:
    """Every kind of edit the README's "Growing the grid" table lists has a row here."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Growing the grid")[1].split("\n## ")[0]
    for edit in EXPECTED:
        assert edit in section, edit
