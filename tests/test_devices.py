"""GPU jobs: fail at once unless exactly the requested GPUs are visible, never DataParallel,
and record the device, driver and peak memory in meta.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tempcompress import models, stages
from tempcompress.config import expand_runs, load_config
from tempcompress.models import ALLOW_CPU_FOR_GPU, GPUUnavailableError, device_report, job_device


def _gpus(monkeypatch, count: int, cuda_build: str | None = "12.8", init_error: str | None = None) -> None:
    """Make torch.cuda look like a machine with ``count`` usable GPUs (0: none usable)."""
    monkeypatch.delenv(ALLOW_CPU_FOR_GPU, raising=False)
    monkeypatch.setattr(torch.version, "cuda", cuda_build)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    def init() -> None:
        if init_error:
            raise RuntimeError(init_error)

    monkeypatch.setattr(torch.cuda, "init", init)


def test_a_requested_gpu_that_is_visible_is_used(monkeypatch) -> None:
    _gpus(monkeypatch, 1)
    assert job_device(1, "train") == "cuda"


def test_no_gpu_requested_takes_what_is_there(monkeypatch) -> None:
    _gpus(monkeypatch, 0)
    assert job_device(0, "encode") == "cpu"
    _gpus(monkeypatch, 1)
    assert job_device(0, "encode") == "cuda"


@pytest.mark.parametrize("count,build,init_error,cause", [
    (0, None, None, "CPU-only build"),
    (0, "12.8", "The NVIDIA driver on your system is too old (found version 11040)", "driver.*too old"),
    (0, "12.8", None, "sees no GPU"),
    (2, "12.8", None, "2 GPUs are visible"),
])
def test_a_gpu_job_without_exactly_its_gpu_fails_with_the_cause(monkeypatch, count, build, init_error, cause) -> None:
    _gpus(monkeypatch, count, build, init_error)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1" if count == 2 else "")
    with pytest.raises(GPUUnavailableError, match=cause) as err:
        job_device(1, "train")
    assert "resources.train.gpu is 1" in str(err.value)
    assert ALLOW_CPU_FOR_GPU in str(err.value)  # the rehearsal hatch is named


def test_several_requested_gpus_are_refused(monkeypatch) -> None:
    _gpus(monkeypatch, 2)
    with pytest.raises(GPUUnavailableError, match="one GPU"):
        job_device(2, "train")


def test_the_rehearsal_hatch_warns_loudly_and_runs_on_the_cpu(monkeypatch, capsys) -> None:
    _gpus(monkeypatch, 0, None)
    monkeypatch.setenv(ALLOW_CPU_FOR_GPU, "1")
    assert job_device(1, "encode") == "cpu"
    out = capsys.readouterr().out
    assert "WARNING" in out and "CPU-only build" in out and "rehearsals only" in out
    assert device_report("cpu")["cpu_for_gpu_allowed"] is True  # meta.json marks a rehearsal's output
    monkeypatch.setenv(ALLOW_CPU_FOR_GPU, "0")  # only "1" opens it
    with pytest.raises(GPUUnavailableError):
        job_device(1, "encode")


def test_the_trainer_never_uses_data_parallel(monkeypatch) -> None:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from tempcompress.training import one_device

    _gpus(monkeypatch, 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)  # transformers counts visible GPUs
    args = SentenceTransformerTrainingArguments(output_dir="unused", use_cpu=False, report_to="none")
    assert args.n_gpu == 4  # what the trainer would wrap in DataParallel
    one_device(args)
    assert args.n_gpu == 1


def test_device_report_on_the_cpu_and_on_a_gpu(monkeypatch) -> None:
    cpu = device_report("cpu")
    assert cpu["device"] == "cpu" and cpu["gpu_name"] is None
    assert cpu["peak_memory_bytes"] > 50 * 2**20  # this process's peak RSS (torch alone is larger)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 123456789)
    monkeypatch.setattr(models, "_driver_version", lambda: "550.54.15")
    gpu = device_report("cuda:0")
    assert (gpu["gpu_name"], gpu["gpu_driver"], gpu["peak_memory_bytes"]) == (
        "NVIDIA H100 80GB HBM3", "550.54.15", 123456789)


def test_train_stage_fails_before_loading_the_model(tiny_raw, tmp_path: Path, monkeypatch) -> None:
    tiny_raw["resources"] = {"train": {"gpu": 1}}
    config = load_config(tiny_raw)
    run = next(r for r, s in expand_runs(config).items() if s.kind == "infonce")
    _gpus(monkeypatch, 0, None)
    monkeypatch.setattr(stages, "_load_base", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(GPUUnavailableError, match="CPU-only build"):
        stages.train(config, run, "docs", str(tmp_path / "model"), str(tmp_path / "loss.csv"),
                     str(tmp_path / "meta.json"), str(tmp_path / "ckpt"), [], str(tmp_path / "failed"))


def test_encode_sample_records_device_and_peak_memory(tiny_raw, tmp_path: Path) -> None:
    config = load_config(tiny_raw)
    run = next(r for r, s in expand_runs(config).items() if s.kind == "base")
    texts = tmp_path / "texts.parquet"
    stages._texts_out(texts, ["a first sentence.", "a second one."])
    meta = tmp_path / "meta.json"
    stages.encode_sample(config, run, None, str(texts), str(tmp_path / "x.npy"), str(meta), str(tmp_path / "f"))
    rec = json.loads(meta.read_text())
    assert rec["device"] == "cpu" and rec["peak_memory_bytes"] > 0 and "gpu_driver" in rec


def test_a_gpu_type_reaches_gpu_jobs_only(tiny_raw, tmp_path: Path) -> None:
    """resources.<stage>.gpu_model is the SLURM plugin's gpu_model resource, for GPU jobs only."""
    import yaml
    from conftest import snakemake

    tiny_raw["resources"] = {"train": {"gpu": 1, "gpu_model": "a100"}, "encode": {"gpu": 0, "gpu_model": "a100"}}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_raw))
    res = snakemake("-n", "--configfile", str(cfg), "--forceall", "-p", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    by_rule: dict[str, list[str]] = {}
    for block in (res.stdout + res.stderr).split("\n\n"):
        rule = next((line.split()[1].rstrip(":") for line in block.splitlines()
                     if line.strip().startswith(("rule ", "localrule "))), None)
        if rule:
            by_rule.setdefault(rule, []).append(block)
    trained = [b for b in by_rule["train"] if "soup" not in b]
    assert trained and all("gpu_model=a100" in b and "gpu=1" in b for b in trained)
    assert all("gpu_model" not in b for b in by_rule["encode"])  # no GPU requested: no GPU type
