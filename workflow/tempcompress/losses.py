"""Temperature-aggregation loss: InfoNCE at several temperatures, optionally on nested prefixes.

``MultiTemperatureLoss`` embeds the batch once and sums sentence-transformers'
``MultipleNegativesRankingLoss`` (InfoNCE, logits = cos / tau) over (tau_i, prefix_i)
pairs, term i scaled by ``weights[i]``.  Without prefixes every temperature sees the full vector (variant a); with
prefixes, temperature i only sees the first ``prefix_i`` coordinates (variant b), e.g.
low tau on the full vector and high tau on short prefixes, making truncation "flexible".

Every InfoNCE term is a ``Fp32MultipleNegativesRankingLoss``: its similarities and the 1/tau
scaling are computed in float32 with autocast off, so that bf16 / fp16 mixed-precision training
does not round the logits (bf16 cosines step by 2^-8, i.e. logit steps of 0.39 at tau = 0.01).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor, nn


class Fp32MultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """``MultipleNegativesRankingLoss`` whose similarities, 1/tau scaling and softmax run in float32.

    Under bf16 / fp16 autocast the similarity matmul would otherwise return half-precision
    cosines, which at low tau turns rounding error into logit noise.  The embeddings are
    cast to float32 and autocast is disabled for the loss; the encoder itself keeps running
    in mixed precision.  Matryoshka losses wrapping it are covered too (they call it).
    """

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        import torch

        device_type = embeddings[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return super().compute_loss_from_embeddings([e.float() for e in embeddings], labels)


class MultiTemperatureLoss(nn.Module):
    """Sum of InfoNCE losses at several temperatures, each on a prefix of the embedding."""

    def __init__(
        self,
        model: Any,
        temperatures: Sequence[float],
        prefix_dims: Sequence[int | None] | None = None,
        weights: Sequence[float] | None = None,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        if prefix_dims is None:
            prefix_dims = [None] * len(temperatures)
        if len(prefix_dims) != len(temperatures):
            raise ValueError("need one prefix size per temperature")
        self.model = model
        self.temperatures = [float(t) for t in temperatures]
        self.prefix_dims = list(prefix_dims)
        self.weights = [1.0] * len(temperatures) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.temperatures):
            raise ValueError("need one weight per temperature")
        self.symmetric = symmetric
        extra: dict[str, Any] = (
            {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"} if symmetric else {}
        )
        self.losses = nn.ModuleList(
            Fp32MultipleNegativesRankingLoss(model, scale=1.0 / t, **extra) for t in self.temperatures
        )

    def terms(self, embeddings: list[Tensor], labels: Tensor | None) -> list[Tensor]:
        """The weighted InfoNCE terms, one per temperature (their sum is the loss)."""
        out = []
        for loss, dim, weight in zip(self.losses, self.prefix_dims, self.weights, strict=True):
            cols = embeddings if dim is None else [e[..., :dim] for e in embeddings]
            out.append(weight * loss.compute_loss_from_embeddings(cols, labels))
        return out

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        terms = self.terms(embeddings, labels)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = embed_columns(self.model, sentence_features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperatures": self.temperatures, "prefix_dims": self.prefix_dims, "weights": self.weights,
                "symmetric": self.symmetric}
