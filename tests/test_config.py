"""Config validation: every bad input fails before any job runs, naming the key and the fix."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
from conftest import ROOT, read_yaml
from tempcompress.config import ConfigError, evaluated_variants, expand_runs, load_config


def _fails(raw: dict, *needles: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(raw)
    msg = str(exc.value)
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_default_and_paper_configs_validate() -> None:
    for name in ("config.yaml", "tiny.yaml", "paper.yaml"):
        cfg = load_config(read_yaml(ROOT / "config" / name))
        assert cfg["intrinsic_dim"]["estimators"]


def test_defaults_are_filled(tiny_raw: dict) -> None:
    cfg = load_config(tiny_raw)
    assert cfg["training"]["learning_rate"] == pytest.approx(1e-4)
    assert cfg["resources"]["train"]["mem_mb"] > 0


def test_runs_expand_the_grid(tiny_raw: dict) -> None:
    runs = expand_runs(load_config(tiny_raw))
    assert "minilm.base" in runs
    assert {"minilm.crop.tau-0.05.seed-0", "minilm.crop.tau-1.0.seed-0"} <= set(runs)
    soup = runs["minilm.soup.seed-0"]
    assert soup.parents == ("minilm.crop.tau-0.05.seed-0", "minilm.crop.tau-1.0.seed-0")
    assert runs["minilm.agg-nested.seed-0"].prefix_dims == (384, 64, 16)
    # minilm: base, crop 2 τ × 2 seeds, dropout 2 τ and 6 single-run variants at seed 0; sre: base, crop
    assert len(runs) == (1 + 4 + 2 + 6) + (1 + 4)


def test_evaluated_variants_start_with_full(tiny_raw: dict) -> None:
    pairs = evaluated_variants(load_config(tiny_raw))
    assert pairs[0] == ("none", "full")
    n_methods = len(tiny_raw["compression"]["methods"])
    assert ("binarization", "16") in pairs and len(pairs) == 1 + n_methods * 1
    native = evaluated_variants(load_config(tiny_raw), native_dim=384)
    assert ("binarization", "384") in native and ("truncation", "384") not in native


def test_unknown_key(tiny_raw: dict) -> None:
    tiny_raw["trianing"] = {}
    _fails(tiny_raw, "trianing", "unknown key")


def test_wrong_type(tiny_raw: dict) -> None:
    tiny_raw["training"]["steps"] = "many"
    _fails(tiny_raw, "training.steps", "not of type 'integer'")


def test_temperature_must_be_positive(tiny_raw: dict) -> None:
    tiny_raw["temperatures"] = ["0.0", "0.1"]
    _fails(tiny_raw, "temperatures[0]", "must be > 0")


def test_temperature_duplicates_by_value(tiny_raw: dict) -> None:
    tiny_raw["temperatures"] = ["0.1", "0.10"]
    _fails(tiny_raw, "same temperature")


def test_target_dim_larger_than_embedding(tiny_raw: dict) -> None:
    tiny_raw["compression"]["dims"] = [16, 1024]
    _fails(tiny_raw, "compression.dims", "1024", "384-dimensional")


def test_prefix_dim_larger_than_embedding(tiny_raw: dict) -> None:
    tiny_raw["variants"]["agg-nested"]["prefix_dims"] = [512, 64, 16]
    _fails(tiny_raw, "variants.agg-nested.prefix_dims", "512")


def test_unknown_compression_method(tiny_raw: dict) -> None:
    tiny_raw["compression"]["methods"] = ["truncation", "jpeg"]
    _fails(tiny_raw, "compression.methods", "'jpeg'", "truncation")


def test_unknown_estimator(tiny_raw: dict) -> None:
    tiny_raw["intrinsic_dim"]["estimators"] = ["twonn", "danco2"]
    _fails(tiny_raw, "intrinsic_dim.estimators", "danco2")


def test_unknown_task(tiny_raw: dict) -> None:
    tiny_raw["evaluation"]["tasks"] = ["LeeSTS", "NoSuchTaskXYZ"]
    _fails(tiny_raw, "evaluation.tasks", "NoSuchTaskXYZ")


def test_real_mteb_task_name_accepted(tiny_raw: dict) -> None:
    tiny_raw["evaluation"]["tasks"] = ["LeeSTS", "STSBenchmark"]
    load_config(tiny_raw)


def test_task_names_are_checked_only_where_asked(tiny_raw: dict) -> None:
    """Cluster jobs re-parse the Snakefile with a config their submit host checked: they skip
    the registry look-up (check_task_names=False), so an unknown name passes there only."""
    tiny_raw["evaluation"]["tasks"] = ["LeeSTS", "NoSuchTaskXYZ"]
    load_config(copy.deepcopy(tiny_raw), check_task_names=False)
    _fails(tiny_raw, "NoSuchTaskXYZ")


def test_a_cluster_job_parse_imports_no_heavy_library() -> None:
    """What common.smk runs at every start-up of a cluster job (config checks without the task
    registry, the run registry, the figure names) imports no mteb, torch or matplotlib."""
    code = (
        "import sys, yaml\n"
        "from tempcompress.config import expand_runs, load_config\n"
        "from tempcompress.data import fit_sources\n"
        "from tempcompress.figure_names import FIGURE_NAMES\n"
        f"cfg = load_config(yaml.safe_load(open({str(ROOT / 'config' / 'paper.yaml')!r})), check_task_names=False)\n"
        "expand_runs(cfg)\n"
        "heavy = ('mteb', 'torch', 'matplotlib', 'seaborn', 'sentence_transformers')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "workflow")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_missing_model_path(tiny_raw: dict, tmp_path) -> None:
    tiny_raw["models"]["minilm"]["source"] = f"path:{tmp_path / 'nowhere'}"
    _fails(tiny_raw, "does not exist", "nowhere")


def test_missing_model_package(tiny_raw: dict) -> None:
    tiny_raw["models"]["minilm"]["source"] = "package:no_such_model_pkg"
    _fails(tiny_raw, "no_such_model_pkg", "not installed")


def test_missing_corpus_file(tiny_raw: dict, tmp_path) -> None:
    tiny_raw["training"]["corpus"] = [f"file:{tmp_path / 'missing.txt'}"]
    _fails(tiny_raw, "training.corpus[0]", "missing.txt")


def test_unknown_builtin_corpus(tiny_raw: dict) -> None:
    tiny_raw["training"]["corpus"] = ["wikipedia_full"]
    _fails(tiny_raw, "wikipedia_full", "lee_background")


def test_soup_must_reference_infonce_variant(tiny_raw: dict) -> None:
    bad = copy.deepcopy(tiny_raw)
    bad["variants"]["soup"]["of"] = "mrl"
    _fails(bad, "variants.soup.of")
    bad = copy.deepcopy(tiny_raw)
    bad["variants"]["soup"]["temperatures"] = ["0.05", "0.3"]
    _fails(bad, "variants.soup.temperatures", "0.3")


def test_sparse_needs_fraction(tiny_raw: dict) -> None:
    del tiny_raw["variants"]["sparse"]["prune_fraction"]
    _fails(tiny_raw, "variants.sparse", "prune_fraction")


def test_a_variant_runs_at_a_subset_of_the_seeds(tiny_raw) -> None:
    from tempcompress.config import ConfigError, expand_runs, load_config

    tiny_raw["seeds"] = [0, 1, 2]
    tiny_raw["variants"]["mrl"]["seeds"] = [0]
    del tiny_raw["variants"]["agg-sum"]["seeds"]
    runs = expand_runs(load_config(tiny_raw))
    assert "minilm.mrl.seed-0" in runs and "minilm.mrl.seed-1" not in runs
    assert {"minilm.crop.tau-1.0.seed-2", "minilm.agg-sum.seed-2"} <= set(runs)
    tiny_raw["variants"]["mrl"]["seeds"] = [5]
    with pytest.raises(ConfigError, match=r"variants.mrl.seeds.*subset"):
        load_config(tiny_raw)
    tiny_raw["variants"]["mrl"]["seeds"] = [0]
    tiny_raw["variants"]["crop"]["seeds"] = [0]
    tiny_raw["variants"]["soup"]["seeds"] = [0, 1]
    with pytest.raises(ConfigError, match=r"variants.soup.seeds.*crop"):
        load_config(tiny_raw)


def test_a_variant_runs_for_a_subset_of_the_models(tiny_raw) -> None:
    """`models:` picks the models a variant runs for; unknown names and orphaned soups are refused."""
    runs = expand_runs(load_config(tiny_raw))
    assert "minilm.mrl.seed-0" in runs and not any(r.startswith("sre.mrl") for r in runs)
    assert {"sre.base", "sre.crop.tau-1.0.seed-1"} <= set(runs)
    del tiny_raw["variants"]["mrl"]["models"]
    assert "sre.mrl.seed-0" in expand_runs(load_config(copy.deepcopy(tiny_raw)))
    tiny_raw["variants"]["mrl"]["models"] = ["bert"]
    with pytest.raises(ConfigError, match=r"variants.mrl.models.*'bert'.*subset"):
        load_config(copy.deepcopy(tiny_raw))
    tiny_raw["variants"]["mrl"]["models"] = ["minilm"]
    tiny_raw["variants"]["crop"]["models"] = ["sre"]
    with pytest.raises(ConfigError, match=r"variants.soup.models.*crop"):
        load_config(tiny_raw)
