"""Loading sentence-transformers models from a package, a local folder or the hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import ConfigError, resolve_model_dir

ALLOW_CPU_FOR_GPU = "TEMPCOMPRESS_ALLOW_CPU_FOR_GPU"  # rehearsals only: a GPU job may run on the CPU


class GPUUnavailableError(RuntimeError):
    """A job requested GPUs but does not see exactly that many."""


def pick_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cuda_unavailable_cause() -> str:
    """Why torch sees no GPU: a CPU-only torch build, or the CUDA initialisation error
    (no driver, a driver too old for this torch's CUDA, no visible device)."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f"CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else "CUDA_VISIBLE_DEVICES unset"
    if torch.version.cuda is None:
        return (f"torch {torch.__version__} is a CPU-only build: the job runs in a CPU environment "
                f"(GPU rules need envs/cuda.yaml) ({where})")
    try:
        torch.cuda.init()
    except Exception as exc:  # noqa: BLE001  (the driver's own message is the cause)
        return f"CUDA failed to initialise with torch {torch.__version__} (CUDA {torch.version.cuda}): {exc} ({where})"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU ({where})"


def job_device(requested: int, stage: str) -> str:
    """The device of a job that requested ``requested`` GPUs (``resources.<stage>.gpu``).

    No GPU requested: the visible GPU if any, else the CPU.  GPUs requested: 'cuda' when
    exactly one GPU was requested and exactly one is visible; otherwise fail at once with the
    cause (a CPU-only torch, a driver too old, no or several visible devices), instead of
    training in fp32 on the CPU until the time limit.  The jobs use one GPU each (no
    DataParallel), so more than one is refused too.  ``TEMPCOMPRESS_ALLOW_CPU_FOR_GPU=1``
    (for rehearsals on a cluster whose GPU partition has no real GPUs only) turns the failure
    into a loud warning and runs on what is there.
    """
    import torch

    if requested <= 0:
        return pick_device()
    available = torch.cuda.is_available()
    count = torch.cuda.device_count() if available else 0
    if requested == 1 and count == 1:
        return "cuda"
    if requested > 1:
        problem = (f"resources.{stage}.gpu is {requested}, but a job uses one GPU (no multi-GPU training): "
                   f"set resources.{stage}.gpu: 1")
    elif not available:
        problem = f"resources.{stage}.gpu is {requested}, but no GPU is usable: {cuda_unavailable_cause()}"
    else:
        problem = (f"resources.{stage}.gpu is {requested}, but {count} GPUs are visible "
                   f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}): the scheduler should "
                   "give the job exactly the GPUs it requested")
    if os.environ.get(ALLOW_CPU_FOR_GPU) == "1":
        device = pick_device()
        banner = "!" * 100
        print(f"{banner}\nWARNING {problem}.\n{ALLOW_CPU_FOR_GPU}=1 (for rehearsals only): running on "
              f"{device} instead. Never set it for a real run.\n{banner}", flush=True)
        return device
    raise GPUUnavailableError(f"{problem}. To run this stage on the CPU on purpose, set resources.{stage}.gpu: 0 "
                              f"(for a rehearsal without GPUs only: {ALLOW_CPU_FOR_GPU}=1).")


def stage_device(config: dict[str, Any], stage: str) -> str:
    """``job_device`` for a stage's configured GPU request (``resources.<stage>.gpu``)."""
    requested = (config.get("resources", {}).get(stage) or {}).get("gpu", 0) or 0
    return job_device(int(requested), stage)


def _driver_version() -> str | None:
    """The NVIDIA driver version (nvidia-smi), else the CUDA driver API version torch reports."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout.split()
            if out:
                return out[0]
        except (OSError, subprocess.SubprocessError):
            pass
    import torch

    get = getattr(torch._C, "_cuda_getDriverVersion", None)
    if get is None:
        return None
    version = int(get())
    return f"CUDA driver API {version // 1000}.{version % 1000 // 10}"


def peak_memory_bytes(device: str) -> int:
    """Peak memory of this process: torch.cuda.max_memory_allocated on a GPU, else the CPU peak RSS."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def device_report(device: str) -> dict[str, Any]:
    """What a job ran on, for its meta.json: device, GPU name, driver, torch's CUDA, peak memory,
    and whether the rehearsal-only escape hatch was open."""
    import torch

    on_gpu = device.startswith("cuda")
    report: dict[str, Any] = {
        "device": device,
        "gpu_name": torch.cuda.get_device_name() if on_gpu else None,
        "gpu_driver": _driver_version() if on_gpu else None,
        "torch_cuda": torch.version.cuda,
        "peak_memory_bytes": peak_memory_bytes(device),
        "peak_memory_of": "torch.cuda.max_memory_allocated" if on_gpu else "process peak RSS",
        "cpu_for_gpu_allowed": os.environ.get(ALLOW_CPU_FOR_GPU) == "1",  # a rehearsal's output, never a result
    }
    print(f"device {device}{' (' + report['gpu_name'] + ')' if on_gpu else ''}: peak memory "
          f"{report['peak_memory_bytes'] / 2**30:.2f} GiB ({report['peak_memory_of']})", flush=True)
    return report


def load_model(source: str, *, revision: str | None = None, device: str | None = None,
               keep_layers: int | None = None, reinit_top_layers: int = 0, seed: int = 0,
               trust_remote_code: bool = False) -> Any:
    """A SentenceTransformer from ``package:<module>``, ``path:<dir>`` or ``hub:<org/name>``.

    Hub ids go through sentence-transformers' own hub loading (honouring HF_HOME,
    HF_HUB_OFFLINE and a pre-filled cache), so cluster users load real hub models.
    ``keep_layers`` keeps only the bottom encoder layers (a shallower start, cheaper per step);
    ``reinit_top_layers`` then re-initialises the top encoder layers (a from-scratch control).
    ``trust_remote_code`` lets a model run the Python code its repository ships (the model
    entry's ``trust_remote_code`` key, off unless the config says so).
    """
    from sentence_transformers import SentenceTransformer

    device = device or pick_device()
    kind, _, ref = source.partition(":")
    if kind == "hub":
        try:
            model = _remote_code_checked(source, lambda: SentenceTransformer(
                ref, revision=revision, device=device, trust_remote_code=trust_remote_code))
        except OSError as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            raise ConfigError(
                f"cannot load hub model '{ref}'"
                + (" (HF_HUB_OFFLINE=1 and it is not in the HF cache)" if offline else "")
                + f": {exc}. Pre-download it with `hf download {ref}` or use a local 'path:' source."
            ) from exc
    else:
        model = _remote_code_checked(source, lambda: SentenceTransformer(
            str(resolve_model_dir(source)), device=device, trust_remote_code=trust_remote_code))
    if keep_layers is not None:
        keep_bottom_layers(model, keep_layers)
    if reinit_top_layers:
        reinit_layers(model, reinit_top_layers, seed)
    return model


def _remote_code_checked(source: str, load: Any) -> Any:
    """``load()``, with transformers' refusal of a model that ships its own code turned into an
    error that names the model and the config key that allows it."""
    try:
        return load()
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise ConfigError(
            f"model '{source}' runs Python code from its own repository, which is off by default: if you "
            "trust that code, set `trust_remote_code: true` on this model's entry under `models:` "
            f"(transformers: {str(exc).splitlines()[0]})"
        ) from exc


def hub_commit(repo: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str | None:
    """The commit a hub reference resolves to in the local HF cache (a branch or tag is
    resolved through the cache's refs), or None when it is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True, cache_dir=cache_dir)).name
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def load_trained(model_dir: str | Path, device: str | None = None, trust_remote_code: bool = False) -> Any:
    """A fine-tuned model saved by the training stage (``trust_remote_code``: as its base model's)."""
    from sentence_transformers import SentenceTransformer

    return _remote_code_checked(str(model_dir), lambda: SentenceTransformer(
        str(model_dir), device=device or pick_device(), trust_remote_code=trust_remote_code))


def _layer_stack(model: Any) -> tuple[Any, str]:
    """The module that holds a sentence-transformers model's transformer blocks, and the name of
    its attribute that lists them (BERT-style, decoder-style and DistilBERT-style encoders)."""
    hf = model[0].auto_model
    for attr in ("encoder.layer", "layers", "transformer.layer"):
        *path, name = attr.split(".")
        owner = hf
        try:
            for part in path:
                owner = getattr(owner, part)
            getattr(owner, name)
        except AttributeError:
            continue
        return owner, name
    raise ValueError(f"cannot find the encoder layers of {type(hf).__name__}")


def encoder_layers(model: Any) -> list[Any]:
    """The transformer blocks of a sentence-transformers model."""
    owner, name = _layer_stack(model)
    return list(getattr(owner, name))


def keep_bottom_layers(model: Any, n_keep: int) -> None:
    """Drop every encoder layer above the bottom n_keep, in place, and record the new depth in
    the model's config so that the saved model loads with the same depth."""
    import torch

    owner, name = _layer_stack(model)
    layers = list(getattr(owner, name))
    if not 0 < n_keep <= len(layers):
        raise ValueError(f"keep_layers={n_keep}: the model has {len(layers)} encoder layers")
    setattr(owner, name, torch.nn.ModuleList(layers[:n_keep]))
    model[0].auto_model.config.num_hidden_layers = n_keep


def reinit_layers(model: Any, n_top: int, seed: int) -> None:
    """Re-initialise the top n_top encoder layers with the model's own initialiser.

    transformers marks loaded tensors ``_is_hf_initialized`` and its initialisers skip
    marked tensors, so the marks are cleared first (otherwise nothing would change).  The
    global RNG state is left as it was.
    """
    import torch

    layers = encoder_layers(model)
    if not 0 < n_top <= len(layers):
        raise ValueError(f"reinit_top_layers={n_top}: the model has {len(layers)} encoder layers")
    hf = model[0].auto_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in layers[-n_top:]:
            for tensor in (*layer.parameters(), *layer.buffers()):
                if hasattr(tensor, "_is_hf_initialized"):
                    tensor._is_hf_initialized = False
            for module in layer.modules():
                if hasattr(module, "_is_hf_initialized"):
                    module._is_hf_initialized = False
            layer.apply(hf._init_weights)


def freeze_all_but_top(model: Any, n_top: int) -> None:
    """Train only the top n_top encoder layers (and anything after the encoder)."""
    hf = model[0].auto_model
    for p in hf.parameters():
        p.requires_grad_(False)
    for layer in encoder_layers(model)[-n_top:]:
        for p in layer.parameters():
            p.requires_grad_(True)
