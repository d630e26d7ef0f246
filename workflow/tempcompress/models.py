"""Loading sentence-transformers models from a package, a local folder or the hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import ConfigError, resolve_model_dir


def pick_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(source: str, *, revision: str | None = None, device: str | None = None,
               reinit_top_layers: int = 0, seed: int = 0) -> Any:
    """A SentenceTransformer from ``package:<module>``, ``path:<dir>`` or ``hub:<org/name>``.

    Hub ids go through sentence-transformers' own hub loading (honouring HF_HOME,
    HF_HUB_OFFLINE and a pre-filled cache), so cluster users load real hub models.
    ``reinit_top_layers`` re-initialises the top encoder layers (a from-scratch control).
    """
    from sentence_transformers import SentenceTransformer

    device = device or pick_device()
    kind, _, ref = source.partition(":")
    if kind == "hub":
        try:
            model = SentenceTransformer(ref, revision=revision, device=device)
        except OSError as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            raise ConfigError(
                f"cannot load hub model '{ref}'"
                + (" (HF_HUB_OFFLINE=1 and it is not in the HF cache)" if offline else "")
                + f": {exc}. Pre-download it with `hf download {ref}` or use a local 'path:' source."
            ) from exc
    else:
        model = SentenceTransformer(str(resolve_model_dir(source)), device=device)
    if reinit_top_layers:
        reinit_layers(model, reinit_top_layers, seed)
    return model


def hub_commit(repo: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str | None:
    """The commit a hub reference resolves to in the local HF cache (a branch or tag is
    resolved through the cache's refs), or None when it is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True, cache_dir=cache_dir)).name
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def load_trained(model_dir: str | Path, device: str | None = None) -> Any:
    """A fine-tuned model saved by the training stage."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device=device or pick_device())


def encoder_layers(model: Any) -> list[Any]:
    """The transformer blocks of a sentence-transformers model (BERT-style encoders)."""
    hf = model[0].auto_model
    for attr in ("encoder.layer", "layers", "transformer.layer"):
        obj = hf
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
            return list(obj)
        except AttributeError:
            continue
    raise ValueError(f"cannot find the encoder layers of {type(hf).__name__}")


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
