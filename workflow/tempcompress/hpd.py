"""HPD (Zhao et al., Findings ACL 2022): a student distilled to PCA-projected teacher embeddings.

The teacher is a run's own encoder.  Its embeddings of the fit texts are projected by PCA
to the target dimension d; the student is a copy of the encoder followed by a
``Dense(D -> d, tanh)`` layer initialised from that projection (weight = the top-d
principal axes, bias = -axes @ mean, so before training the student outputs
``tanh(PCA(teacher))``).  The whole student is then trained with MSE to the projected
teacher embeddings on the fit texts.  Unlike a fixed projection, the encoder itself
learns to put the information the d coordinates need where the projection reads it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np


def pca_axes(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, the top ``dim`` principal axes as rows) of the rows of ``x``."""
    if dim > min(x.shape):
        raise ValueError(f"HPD to {dim} dims needs at least {dim} fit texts and a {dim}-dim embedding, "
                         f"got {x.shape[0]} texts of dim {x.shape[1]}")
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:dim]


def _encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    return np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False),
                      dtype=np.float64)


def hpd_student(model: Any, fit_texts: list[str], dim: int, epochs: int = 1, batch_size: int = 32,
                seed: int = 0, learning_rate: float = 1e-4) -> tuple[Any, list[float]]:
    """The trained HPD student of ``model`` at ``dim`` dims and its MSE per step.

    ``model`` (the teacher) is not changed.  ``epochs=0`` returns the PCA-initialised
    student untrained.
    """
    import torch
    from sentence_transformers.base.modules.dense import Dense
    from transformers import set_seed

    set_seed(seed)
    teacher = _encode(model, fit_texts, batch_size)
    mean, axes = pca_axes(teacher, dim)
    targets = torch.tensor((teacher - mean) @ axes.T, dtype=torch.float32)
    student = copy.deepcopy(model)
    student.append(Dense(teacher.shape[1], dim, activation_function=torch.nn.Tanh(),
                         init_weight=torch.tensor(axes, dtype=torch.float32),
                         init_bias=torch.tensor(-axes @ mean, dtype=torch.float32)))
    student.to(model.device)
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    student.train()
    for _ in range(epochs):
        order = torch.randperm(len(fit_texts), generator=gen).tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            feats = student.preprocess([fit_texts[i] for i in idx])
            feats = {k: v.to(student.device) if hasattr(v, "to") else v for k, v in feats.items()}
            out = student(feats)["sentence_embedding"]
            loss = torch.nn.functional.mse_loss(out, targets[idx].to(out.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if not np.isfinite(losses[-1]):
                raise RuntimeError(f"HPD student training diverged at step {len(losses)} (MSE {losses[-1]})")
    student.eval()
    return student, losses


def hpd_embeddings(model: Any, fit_texts: list[str], eval_texts: list[str], dim: int, epochs: int = 1,
                   batch_size: int = 32, seed: int = 0, learning_rate: float = 1e-4) -> np.ndarray:
    """The HPD student's embeddings of ``eval_texts`` (float32, len(eval_texts) x dim).

    The student is trained on ``fit_texts`` only (held-out, in-domain texts: never the
    scored test set).
    """
    student, _ = hpd_student(model, fit_texts, dim, epochs, batch_size, seed, learning_rate)
    return _encode(student, eval_texts, batch_size).astype(np.float32)
