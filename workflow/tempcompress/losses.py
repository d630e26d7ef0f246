"""Temperature-aggregation loss: InfoNCE at several temperatures, optionally on nested prefixes.

``MultiTemperatureLoss`` embeds the batch once and sums sentence-transformers'
``MultipleNegativesRankingLoss`` (InfoNCE, logits = cos / tau) over (tau_i, prefix_i)
pairs.  Without prefixes every temperature sees the full vector (variant a); with
prefixes, temperature i only sees the first ``prefix_i`` coordinates (variant b), e.g.
low tau on the full vector and high tau on short prefixes, making truncation "flexible".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor, nn


class MultiTemperatureLoss(nn.Module):
    """Sum of InfoNCE losses at several temperatures, each on a prefix of the embedding."""

    def __init__(
        self,
        model: Any,
        temperatures: Sequence[float],
        prefix_dims: Sequence[int | None] | None = None,
        weights: Sequence[float] | None = None,
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
        self.losses = nn.ModuleList(MultipleNegativesRankingLoss(model, scale=1.0 / t) for t in self.temperatures)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        total = None
        for loss, dim, weight in zip(self.losses, self.prefix_dims, self.weights, strict=True):
            cols = embeddings if dim is None else [e[..., :dim] for e in embeddings]
            term = weight * loss.compute_loss_from_embeddings(cols, labels)
            total = term if total is None else total + term
        return total

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = embed_columns(self.model, sentence_features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperatures": self.temperatures, "prefix_dims": self.prefix_dims, "weights": self.weights}
