"""Training objectives: what the engine minimises and what it reports.

An objective is a small object the engine calls; a new one (autoencode, adapt,
finetune) is a new class here, never a copy of the loop. The protocol:

- ``input_keys``: dataset arrays the objective reads (the engine fetches these, plus
  ``sample_weight`` and ``index`` it adds itself).
- ``loss(model, batch) -> (loss, logs)``: the scalar to minimise (weighted by
  ``batch["sample_weight"]``, a mean over the batch) and a dict of extra scalar
  tensors to average over the epoch for display.
- ``predict(model, batch) -> dict[str, Tensor]``: per-entry outputs (e.g. ``score``).
- ``metrics(outputs, batch_arrays) -> dict[str, float]``: validation metrics from the
  concatenated predictions and the arrays ``metric_keys`` of the validation split.
- ``monitor``: the name of the headline metric for the epoch log (e.g. ``auc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Objective(Protocol):
    name: str
    input_keys: tuple[str, ...]
    metric_keys: tuple[str, ...]
    monitor: str

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def metrics(self, outputs: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> dict[str, float]: ...


def weighted_auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """ROC AUC of ``score`` for ``label == 1`` against ``label == 0``, with event weights.

    Ties are counted one half, as in the Mann-Whitney U statistic. NaN if a class is empty.
    """
    score, label = np.asarray(score, dtype=np.float64), np.asarray(label)
    w = np.ones(len(score)) if weight is None else np.asarray(weight, dtype=np.float64)
    keep = (label == 0) | (label == 1)
    score, label, w = score[keep], label[keep], w[keep]
    order = np.argsort(score, kind="stable")
    score, label, w = score[order], label[order], w[order]
    w_sig = np.where(label == 1, w, 0.0)
    w_bkg = np.where(label == 0, w, 0.0)
    total_sig, total_bkg = w_sig.sum(), w_bkg.sum()
    if total_sig <= 0 or total_bkg <= 0:
        return float("nan")
    # group equal scores: background weight strictly below, plus half of the tied background
    _, start = np.unique(score, return_index=True)
    bkg_group = np.add.reduceat(w_bkg, start)
    sig_group = np.add.reduceat(w_sig, start)
    bkg_below = np.cumsum(bkg_group) - bkg_group
    return float(np.sum(sig_group * (bkg_below + 0.5 * bkg_group)) / (total_sig * total_bkg))


class Classify:
    """Binary (one logit, BCE-with-logits) or multi-class (K logits, cross entropy) classification.

    Args:
        input_key: the dataset array the model reads, e.g. ``"jet_images"`` or ``"expert"``, or
            several, passed to the model positionally in that order (a model with more than one
            input declares them as ``input_keys``, e.g. ``("tracks", "track_mask")``).
        n_classes: 2 for binary (the model gives one logit), K > 2 for K classes.
    """

    name = "classify"
    metric_keys = ("label", "weight")

    def __init__(self, input_key: str | Sequence[str], n_classes: int = 2) -> None:
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, not {n_classes}")
        #: the arrays passed to the model, positionally in this order
        self.model_inputs = (input_key,) if isinstance(input_key, str) else tuple(input_key)
        self.input_key = self.model_inputs[0]  # the one that augmentation acts on
        self.n_classes = int(n_classes)
        self.input_keys = (*self.model_inputs, "label")
        self.monitor = "auc" if n_classes == 2 else "accuracy"

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
        weight = arrays.get("weight")
        if self.n_classes == 2:
            return {"auc": weighted_auc(score, label, weight), "accuracy": float(np.mean((score > 0.5) == (label == 1)))}
        return {"accuracy": float(np.mean(score.argmax(-1) == label))}


def make_objective(name: str, model: nn.Module, **options: Any) -> Objective:
    """The objective ``name`` for ``model`` (its ``input_keys``, else ``input_key``, and ``n_outputs`` decide the rest)."""
    module = getattr(model, "module", model)
    if name == "classify":
        n_outputs = int(getattr(module, "n_outputs", 1))
        inputs = options.get("input_key", getattr(module, "input_keys", None) or module.input_key)
        return Classify(inputs, n_classes=2 if n_outputs == 1 else n_outputs)
    raise ValueError(f"unknown objective {name!r}")
