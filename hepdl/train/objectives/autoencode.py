"""Unsupervised reconstruction (the autoencoders of :mod:`hepdl.models.autoencoders`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from hepdl.stats import labelled_auc
from hepdl.train.objectives.base import Objective, register_objective

if TYPE_CHECKING:
    from hepdl.train.settings import TrainSettings


@register_objective
class Autoencode(Objective):
    """Weighted mean squared reconstruction error, plus ``sparsity * mean |code|``.

    The model returns ``(reconstruction, code)`` and gives its clean, standardised input via
    ``model.target(x)``. Labels are not used in the loss (data entries with label -1 train like
    any other); ``predict`` gives the per-entry reconstruction error as ``score`` (the anomaly
    score) and the latent ``code``. ``pixel_weight`` (an array broadcastable to one input, e.g.
    (C, H, W)) weights the squared errors, normalised to mean 1.
    """

    name = "autoencode"
    monitor = "mse"

    def __init__(self, input_key: str, sparsity: float = 0.0, pixel_weight: torch.Tensor | None = None) -> None:
        if sparsity < 0:
            raise ValueError(f"sparsity must be >= 0, not {sparsity}")
        self.model_inputs = (input_key,)
        self.input_keys = (input_key,)
        self.sparsity = float(sparsity)
        self.pixel_weight = None if pixel_weight is None else torch.as_tensor(pixel_weight, dtype=torch.float32)
        if self.pixel_weight is not None:
            self.pixel_weight = self.pixel_weight / self.pixel_weight.mean()

    @classmethod
    def for_model(cls, model: nn.Module, settings: TrainSettings | None) -> Autoencode:
        from hepdl.models.autoencoders import is_autoencoder

        if not is_autoencoder(model):
            raise ValueError(f"objective 'autoencode' needs an autoencoder model, not {type(model).__name__}")
        return cls(model.input_key, sparsity=model.sparsity)

    def _errors(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry weighted mean squared error and the code."""
        x = batch[self.input_key]
        recon, code = model(x)
        target = getattr(model, "module", model).target(x)
        sq = (recon.float() - target.float()) ** 2
        if self.pixel_weight is not None:
            sq = sq * self.pixel_weight.to(sq.device)
        return sq.flatten(1).mean(1), code.float()

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        err, code = self._errors(model, batch)
        w = batch.get("sample_weight")
        mse = (err * w).mean() if w is not None else err.mean()
        code_l1 = code.abs().mean()
        loss = mse + self.sparsity * code_l1 if self.sparsity > 0 else mse
        return loss, {"mse": mse.detach(), "code_l1": code_l1.detach()}

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        err, code = self._errors(model, batch)
        return {"score": err, "code": code}

    def metrics(self, outputs: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
        out = {"mse": float(np.mean(outputs["score"])), "code_l1": float(np.mean(np.abs(outputs["code"])))}
        label = arrays.get("label")
        if label is not None and np.any(label == 0) and np.any(label == 1):
            # reconstruction error as a signal-agnostic tagger (meaningful when trained on background)
            out["anomaly_auc"] = labelled_auc(outputs["score"], label, arrays.get("weight"))
        return out
