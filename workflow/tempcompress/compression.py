"""Post-training compression methods: fit on the held-out fit set, store compactly, serve floats.

A method maps full embeddings (n, D) to (n, d) at a target dim d.  It is three small
functions: ``fit`` (on the fit-set embeddings, never on the scored test texts), ``encode``
(the compact form an index would store: float32/float16 values, bfloat16 / float8 bit
patterns, int8 codes, packed int4 nibbles, packed sign bits) and ``decode`` (the float32
matrix that scoring serves).  Adding a method = adding one ``Method`` to ``METHODS``.

Scoring L2-normalises every served matrix (``l2_normalize``), so cosine-based tasks are
unchanged and classifiers see vectors of one length; for binarized (+/-1) vectors cosine
ranks exactly as Hamming distance does.

Quantizers (``Method.quantizer``) quantize the first d coordinates; they are also scored
at the model's native dimension (the whole vector), see ``score_variants``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Codes = dict[str, np.ndarray]

# old method names -> new ones (the old name is refused with this hint)
RENAMED: dict[str, str] = {}  # old method names -> the hint that refuses them


class CompressionError(ValueError):
    """A compression request that cannot be met (e.g. target dim > embedding dim)."""


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    bits: float  # stored bits per output coordinate
    fit: Callable[[np.ndarray, int, dict[str, Any]], Any]  # (fit embeddings, dim, options) -> state
    encode: Callable[[np.ndarray, Any, int], Codes]  # (embeddings, state, dim) -> compact codes
    decode: Callable[[Codes], np.ndarray]  # codes -> float32 (n, dim) matrix as served
    quantizer: bool = False  # coordinate-wise quantization: also scored at the native dim
    needs_encoder: bool = False  # computed by its own rule from the run's encoder (HPD), not from embeddings

    def transform(self, x: np.ndarray, state: Any, dim: int) -> np.ndarray:
        return self.decode(self.encode(x, state, dim))


def check_dim(dim: int, full_dim: int) -> None:
    if dim > full_dim:
        raise CompressionError(
            f"target dim {dim} is larger than the {full_dim}-dimensional embedding: "
            "remove it from compression.dims"
        )


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32; an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.float32(1e-12))).astype(np.float32)


def _l2_64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _no_fit(_fit: np.ndarray, _dim: int, _opts: dict[str, Any]) -> None:
    return None


def _encoder_only(_fit: np.ndarray, dim: int, _opts: dict[str, Any]) -> None:
    raise CompressionError(f"this method trains a student encoder: its codes come from the 'hpd' rule "
                           f"(stages.hpd_compress), not from cached embeddings (dim {dim})")


def _floats(z: np.ndarray) -> Codes:
    return {"x": np.ascontiguousarray(z, dtype=np.float32)}


def _floats_of(x: np.ndarray, _state: Any, _dim: int) -> Codes:
    return _floats(x)


def _decode_floats(codes: Codes) -> np.ndarray:
    return np.asarray(codes["x"], dtype=np.float32)


# ---- truncation ------------------------------------------------------------------------


def truncate(x: np.ndarray, _state: Any, dim: int) -> Codes:
    """Keep the first ``dim`` coordinates."""
    return _floats(x[:, :dim])


# ---- binarization ----------------------------------------------------------------------


def binarize(x: np.ndarray, _state: Any, dim: int) -> Codes:
    """Sign bits of the first ``dim`` coordinates (0 counts as +), packed: dim/8 bytes per vector."""
    return {"bits": np.packbits(x[:, :dim] >= 0, axis=1), "dim": np.array(dim)}


def unbinarize(codes: Codes) -> np.ndarray:
    """Packed sign bits -> +/-1 float32."""
    bits = np.unpackbits(codes["bits"], axis=1, count=int(codes["dim"]))
    return np.where(bits == 1, 1.0, -1.0).astype(np.float32)


def hamming_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between rows of two +/-1 matrices: (d - a.b) / 2."""
    return (a.shape[1] - a @ b.T) / 2.0


# ---- scalar quantization (int8, int4) ----------------------------------------------------


def fit_scalar_range(fit: np.ndarray, dim: int, _opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate range (1st..99th percentile) of the fit embeddings' first dim coordinates."""
    lo, hi = np.percentile(fit[:, :dim], [1, 99], axis=0)
    return lo.astype(np.float32), np.maximum(hi - lo, 1e-12).astype(np.float32)


def int8_quantize(x: np.ndarray, state: tuple[np.ndarray, np.ndarray], dim: int) -> Codes:
    """256 levels per coordinate over the fitted range (clipped outside it): int8 codes."""
    lo, span = state
    q = np.clip(np.round((x[:, :dim] - lo) / span * 255.0) - 128, -128, 127).astype(np.int8)
    return {"q": q, "lo": lo, "span": span}


def int8_dequantize(codes: Codes) -> np.ndarray:
    lo, span = codes["lo"], codes["span"]
    return ((codes["q"].astype(np.float32) + 128.0) / 255.0 * span + lo).astype(np.float32)


def int4_quantize(x: np.ndarray, state: tuple[np.ndarray, np.ndarray], dim: int) -> Codes:
    """16 levels per coordinate over the fitted range; two 4-bit codes packed per byte."""
    lo, span = state
    nib = np.clip(np.round((x[:, :dim] - lo) / span * 15.0), 0, 15).astype(np.uint8)
    if dim % 2:
        nib = np.pad(nib, ((0, 0), (0, 1)))
    return {"q": (nib[:, 0::2] << 4) | nib[:, 1::2], "lo": lo, "span": span, "dim": np.array(dim)}


def int4_dequantize(codes: Codes) -> np.ndarray:
    packed, dim = codes["q"], int(codes["dim"])
    nib = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.uint8)
    nib[:, 0::2], nib[:, 1::2] = packed >> 4, packed & 0x0F
    return (nib[:, :dim].astype(np.float32) / 15.0 * codes["span"] + codes["lo"]).astype(np.float32)


# ---- float formats (float16, bfloat16, float8) -------------------------------------------
# Plain casts of the first d coordinates, as mteb's CompressionWrapper does (round to nearest
# even); torch does the bfloat16 / float8 (e4m3fn) casts, numpy has no such types.


def to_float16(x: np.ndarray, _state: Any, dim: int) -> Codes:
    return {"x": np.ascontiguousarray(x[:, :dim], dtype=np.float32).astype(np.float16)}


def _torch_cast(x: np.ndarray, dim: int, dtype_name: str, view_as: str) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x[:, :dim], dtype=np.float32))
    return t.to(getattr(torch, dtype_name)).view(getattr(torch, view_as)).numpy().copy()


def _torch_uncast(bits: np.ndarray, dtype_name: str) -> np.ndarray:
    import torch

    return torch.from_numpy(np.ascontiguousarray(bits)).view(getattr(torch, dtype_name)).float().numpy()


def to_bfloat16(x: np.ndarray, _state: Any, dim: int) -> Codes:
    return {"bits": _torch_cast(x, dim, "bfloat16", "int16")}


def from_bfloat16(codes: Codes) -> np.ndarray:
    return _torch_uncast(codes["bits"], "bfloat16")


def to_float8(x: np.ndarray, _state: Any, dim: int) -> Codes:
    return {"bits": _torch_cast(x, dim, "float8_e4m3fn", "uint8")}


def from_float8(codes: Codes) -> np.ndarray:
    return _torch_uncast(codes["bits"], "float8_e4m3fn")


# ---- PCA -------------------------------------------------------------------------------


def fit_pca(fit: np.ndarray, dim: int, _opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-``dim`` principal axes of the L2-normalised fit embeddings (float64 SVD).

    Normalising first keeps the norm direction out of the axes for models without a
    Normalize module (the cosine loss never trains the norm).
    """
    if dim > min(fit.shape):
        raise CompressionError(f"PCA to {dim} dims needs at least {dim} fit texts, got {fit.shape[0]}")
    x = _l2_64(fit)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:dim]


def pca_project(x: np.ndarray, state: tuple[np.ndarray, np.ndarray], dim: int) -> Codes:
    mean, comps = state
    return _floats((_l2_64(x) - mean) @ comps[:dim].T)


# ---- random projection -------------------------------------------------------------------


def fit_random_projection(fit: np.ndarray, dim: int, opts: dict[str, Any]) -> np.ndarray:
    """A Gaussian random matrix (D, dim) with N(0, 1/dim) entries (Johnson-Lindenstrauss)."""
    rng = np.random.default_rng(opts.get("seed", 0))
    return rng.normal(0.0, 1.0 / np.sqrt(dim), size=(fit.shape[1], dim)).astype(np.float32)


def random_project(x: np.ndarray, state: np.ndarray, dim: int) -> Codes:
    return _floats(x.astype(np.float32) @ state)


# ---- similarity-preserving projection (simproj; formerly "hpd") --------------------------


def fit_simproj(fit: np.ndarray, dim: int, opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """A similarity-preserving projection learned on frozen, L2-normalised full-size embeddings.

    A Dense(D -> dim, tanh) layer is initialised from PCA (W = principal axes, b = -W mean,
    as HPD initialises its projection) and trained so that the cosine similarities of
    projected pairs match the full-size similarities (MSE), over random minibatches of the
    fit embeddings.  Adam, lr 1e-3, ``simproj_epochs`` epochs.  Unlike HPD (Zhao et al.
    2022) the encoder stays frozen and the target is pairwise similarity, not the
    PCA-projected teacher embedding.
    """
    import torch

    gen = torch.Generator().manual_seed(opts.get("seed", 0))
    mean, comps = fit_pca(fit, dim, opts)
    x = torch.as_tensor(_l2_64(fit), dtype=torch.float32)
    teacher = x
    layer = torch.nn.Linear(x.shape[1], dim)
    with torch.no_grad():
        w = torch.as_tensor(comps, dtype=torch.float32)
        layer.weight.copy_(w)
        layer.bias.copy_(-(w @ torch.as_tensor(mean, dtype=torch.float32)))
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    batch = min(256, len(x))
    for _ in range(opts.get("simproj_epochs", 30)):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x) - 1, batch):
            idx = perm[start : start + batch]
            t = teacher[idx] @ teacher[idx].T
            s = torch.nn.functional.normalize(torch.tanh(layer(x[idx])), dim=-1)
            loss = torch.nn.functional.mse_loss(s @ s.T, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {"weight": layer.weight.detach().numpy().copy(), "bias": layer.bias.detach().numpy().copy()}


def simproj_project(x: np.ndarray, state: dict[str, np.ndarray], dim: int) -> Codes:
    z = _l2_64(x).astype(np.float32)
    return _floats(np.tanh(z @ state["weight"].T + state["bias"]))


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("truncation", "keep the first d coordinates", 32, _no_fit, truncate, _decode_floats),
        Method("binarization", "sign of the first d coordinates (d bits), Hamming-equivalent cosine",
               1, _no_fit, binarize, unbinarize, quantizer=True),
        Method("int8", "first d coordinates, 8-bit scalar quantization (range fitted on the fit set)",
               8, fit_scalar_range, int8_quantize, int8_dequantize, quantizer=True),
        Method("int4", "first d coordinates, 4-bit scalar quantization (range fitted on the fit set)",
               4, fit_scalar_range, int4_quantize, int4_dequantize, quantizer=True),
        Method("float16", "first d coordinates cast to IEEE float16", 16, _no_fit, to_float16, _decode_floats,
               quantizer=True),
        Method("bfloat16", "first d coordinates cast to bfloat16", 16, _no_fit, to_bfloat16, from_bfloat16,
               quantizer=True),
        Method("float8", "first d coordinates cast to float8 (e4m3fn)", 8, _no_fit, to_float8, from_float8,
               quantizer=True),
        Method("pca", "projection on the top d principal axes of the L2-normalised fit-set embeddings",
               32, fit_pca, pca_project, _decode_floats),
        Method("random_projection", "Gaussian random projection to d dims", 32, fit_random_projection,
               random_project, _decode_floats),
        Method("simproj", "similarity-preserving projection: PCA-initialised Dense(d, tanh) fitted to "
               "full-size cosine similarities (formerly 'hpd')", 32, fit_simproj, simproj_project, _decode_floats),
        Method("hpd", "HPD (Zhao et al. 2022): a copy of the run's encoder plus a PCA-initialised Dense(d, tanh), "
               "trained with MSE to the PCA-projected embeddings on the fit texts (rule 'hpd')", 32,
               _encoder_only, _floats_of, _decode_floats, needs_encoder=True),
    )
}


def check_method(name: str) -> Method:
    """The method of that name, or a CompressionError naming the choices (and renames)."""
    if name in METHODS:
        return METHODS[name]
    if name in RENAMED:
        raise CompressionError(f"compression method '{name}' was renamed: use {RENAMED[name]}")
    raise CompressionError(f"unknown compression method '{name}'; choose from {sorted(METHODS)}")


def bytes_per_vector(method: str, dim: int) -> float:
    """Stored bytes per vector: 4d for float32 methods (and 'none', the native float vector),
    2d for float16/bfloat16, d for float8/int8, d/2 for int4, d/8 for binarization.
    Per-coordinate quantization ranges are shared by all vectors and not counted."""
    bits = 32 if method == "none" else check_method(method).bits
    return bits * dim / 8


def score_variants(methods: list[str], dims: list[int], native_dim: int) -> list[tuple[str, str]]:
    """Every (method, dim label) scored per run: ('none', 'full') first, the float reference;
    then each method at each target dim, and each quantizer also at the native dim (the whole
    vector, labelled with its size, e.g. '384')."""
    pairs = [("none", "full")]
    for name in methods:
        targets = [int(d) for d in dims]
        if check_method(name).quantizer and native_dim not in targets:
            targets.append(native_dim)
        pairs += [(name, str(d)) for d in targets]
    return pairs


def fit_encode(method: str, fit: np.ndarray, x: np.ndarray, dim: int, opts: dict[str, Any] | None = None) -> Codes:
    """Fit ``method`` at ``dim`` on ``fit`` embeddings and return the compact codes of ``x``."""
    m = check_method(method)
    check_dim(dim, x.shape[1])
    return m.encode(x, m.fit(fit, dim, opts or {}), dim)


def decode(method: str, codes: Codes) -> np.ndarray:
    """The float32 matrix that scoring serves for ``method``'s codes (checked finite)."""
    out = check_method(method).decode(codes)
    if not np.isfinite(out).all():
        raise CompressionError(f"{method} produced non-finite values")
    return out


def compress(method: str, fit: np.ndarray, x: np.ndarray, dim: int, opts: dict[str, Any] | None = None) -> np.ndarray:
    """Fit ``method`` at ``dim`` on ``fit`` embeddings and apply it to ``x`` (float32, as served)."""
    out = decode(method, fit_encode(method, fit, x, dim, opts))
    if out.shape != (x.shape[0], dim):
        raise CompressionError(f"{method} at dim {dim} returned shape {out.shape}")
    return out


def stored_nbytes(codes: Codes) -> int:
    """Bytes of the compact codes (what the compressed file holds for one variant)."""
    return int(sum(a.nbytes for a in codes.values()))
