"""A dense network on expert jet variables (mass, N-subjettiness ratios, pT, multiplicities).

The standardisation constants (per-feature mean and standard deviation of the
training split) live in the model as buffers, so a saved model applies them itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.jet_cnn import dense_head
from hepdl.models.registry import register_model


class Standardise(nn.Module):
    """``(x - mean) / std`` with constants stored as buffers (saved with the weights)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@register_model("jet_mlp")
class ExpertMLP(ModelBase):
    """MLP on ``(N, F)`` expert features; ``forward`` returns logits ``(N,)`` or ``(N, K)``.

    Call :meth:`fit_standardisation` with the training split's features before training.
    """

    input_keys = ("expert",)
    standardisation_keys = ("expert",)

    def __init__(
        self,
        *,
        n_features: int = 9,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.1,
        n_outputs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("hidden must list at least one layer width")
        self.standardise = Standardise(int(n_features))
        layers: list[nn.Module] = [self.standardise]
        width = int(n_features)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            width = int(h)
        self.body = nn.Sequential(*layers)
        self.body_dim = width
        self.head = dense_head(width, (), n_outputs, 0.0)
        self.n_outputs = int(n_outputs)
        initialise_weights(self, seed, output_layers=(self.head[-1],))

    @torch.no_grad()
    def fit_standardisation(self, features: np.ndarray | torch.Tensor, weights: np.ndarray | None = None) -> None:
        """Set the standardisation buffers from training features ``(N, F)`` (optionally weighted)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.standardise.mean.numel():
            raise ValueError(f"expert features have shape {x.shape}, model expects (N, {self.standardise.mean.numel()})")
        w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
        mean = np.average(x, axis=0, weights=w)
        std = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
        # a constant feature would divide by zero; leave it unscaled instead
        std = np.where(std > 1e-12, std, 1.0)
        self.standardise.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.standardise.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(features))
        return logits.squeeze(-1) if self.n_outputs == 1 else logits
