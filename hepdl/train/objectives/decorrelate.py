"""Classification decorrelated from jet mass by an adversary (Louppe, Kagan, Cranmer 2017)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from hepdl.train.objectives.adapt import ReversalRamp
from hepdl.train.objectives.base import model_inputs_of, register_objective
from hepdl.train.objectives.classify import Classify

if TYPE_CHECKING:
    from hepdl.train.settings import TrainSettings


@register_objective
class Decorrelate(ReversalRamp, Classify):
    """Classification decorrelated from jet mass by an adversary (objective "decorrelate").

    Loss per training batch: the label loss (all entries, event-weighted) plus the adversary's
    cross entropy for the mass bin of the background entries (label 0), the adversary behind a
    gradient reversal ramped as for "adapt". Validation loss: the label loss alone (the
    adversary's loss is a game value, not a quality). Batches need ``jet_mass``.
    """

    name = "decorrelate"
    curve_labels: ClassVar[dict[str, str]] = {
        "train_loss": "train: label + mass-adversary loss",
        "val_loss": "validation: label loss",
    }
    wrapper = "pivot_adversarial"
    extra_arrays = ("jet_mass",)

    def __init__(self, input_key: str | Sequence[str], *, lambda_max: float = 1.0, gamma: float = 10.0) -> None:
        super().__init__(input_key, 2)
        self.lambda_max, self.gamma = float(lambda_max), float(gamma)
        self.input_keys = (*self.model_inputs, "label", "jet_mass")

    @classmethod
    def for_model(cls, model: nn.Module, settings: TrainSettings | None) -> Decorrelate:
        return cls(model_inputs_of(model), **cls.ramp_for(model, settings))

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not model.training or "jet_mass" not in batch:
            return super().loss(model, batch)
        inputs = [batch[k] for k in self.model_inputs]
        logits, mass_logits = model(*inputs, adversary_lambda=self.current_lambda)
        logits = logits.float()
        label = batch["label"]
        per_entry = F.binary_cross_entropy_with_logits(logits, label.float(), reduction="none")
        w = batch.get("sample_weight")
        label_loss = (per_entry * w).mean() if w is not None else per_entry.mean()
        background = label == 0
        target = getattr(model, "module", model).mass_bin(batch["jet_mass"])
        if bool(background.any()):
            adv_loss = F.cross_entropy(mass_logits.float()[background], target[background])
        else:
            adv_loss = mass_logits.sum() * 0.0
        correct = (logits > 0) == (label == 1)
        return label_loss + adv_loss, {"accuracy": correct.float().mean(), "label_loss": label_loss.detach(),
                                       "adversary_loss": adv_loss.detach()}
