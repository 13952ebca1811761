"""Classification: binary (one logit, BCE-with-logits) or multi-class (K logits, cross entropy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hepdl.stats import labelled_auc
from hepdl.train.objectives.base import Objective, classes_of, model_inputs_of, register_objective

if TYPE_CHECKING:
    from hepdl.train.settings import TrainSettings


@register_objective
class Classify(Objective):
    """Binary or K-class classification of the entries' labels.

    Args:
        input_key: the dataset array the model reads, e.g. ``"jet_images"`` or ``"expert"``, or
            several, passed to the model positionally in that order (e.g. ``("tracks", "track_mask")``).
        n_classes: 2 for binary (the model gives one logit), K > 2 for K classes.
    """

    name = "classify"

    def __init__(self, input_key: str | Sequence[str], n_classes: int = 2) -> None:
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, not {n_classes}")
        self.model_inputs = (input_key,) if isinstance(input_key, str) else tuple(input_key)
        self.n_classes = int(n_classes)
        self.input_keys = (*self.model_inputs, "label")
        self.monitor = "auc" if n_classes == 2 else "accuracy"

    @classmethod
    def for_model(cls, model: nn.Module, settings: TrainSettings | None) -> Classify:
        return cls(model_inputs_of(model), classes_of(model))

    def _logits(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return model(*(batch[k] for k in self.model_inputs))

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self._logits(model, batch).float()  # loss in fp32 even under autocast
        label = batch["label"]
        if self.n_classes == 2:
            per_entry = F.binary_cross_entropy_with_logits(logits, label.float(), reduction="none")
            correct = (logits > 0) == (label == 1)
        else:
            per_entry = F.cross_entropy(logits, label.long(), reduction="none")
            correct = logits.argmax(-1) == label
        w = batch.get("sample_weight")
        loss = (per_entry * w).mean() if w is not None else per_entry.mean()
        return loss, {"accuracy": correct.float().mean()}

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self._logits(model, batch).float()
        score = torch.sigmoid(logits) if self.n_classes == 2 else torch.softmax(logits, dim=-1)
        return {"score": score}

    def metrics(self, outputs: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
        score, label = outputs["score"], arrays["label"]
        if self.n_classes == 2:
            return {"auc": labelled_auc(score, label, arrays.get("weight")),
                    "accuracy": float(np.mean((score > 0.5) == (label == 1)))}
        return {"accuracy": float(np.mean(score.argmax(-1) == label))}
