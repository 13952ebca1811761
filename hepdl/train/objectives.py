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


class Autoencode:
    """Unsupervised reconstruction: weighted mean squared error, plus ``sparsity * mean |code|``.

    The model (an autoencoder of :mod:`hepdl.models.autoencoders`) returns ``(reconstruction, code)``
    and gives its clean, standardised input via ``model.target(x)``. Labels are not used in the loss
    (data entries with label -1 train like any other); ``predict`` gives the per-entry reconstruction
    error as ``score`` (the anomaly score) and the latent ``code``. ``pixel_weight`` (an array
    broadcastable to one input, e.g. (C, H, W)) weights the squared errors, normalised to mean 1.
    """

    name = "autoencode"
    metric_keys = ("label", "weight")
    monitor = "mse"

    def __init__(self, input_key: str, sparsity: float = 0.0, pixel_weight: torch.Tensor | None = None) -> None:
        if sparsity < 0:
            raise ValueError(f"sparsity must be >= 0, not {sparsity}")
        self.input_key = input_key
        self.model_inputs = (input_key,)
        self.input_keys = (input_key,)
        self.sparsity = float(sparsity)
        self.pixel_weight = None if pixel_weight is None else torch.as_tensor(pixel_weight, dtype=torch.float32)
        if self.pixel_weight is not None:
            self.pixel_weight = self.pixel_weight / self.pixel_weight.mean()

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
            out["anomaly_auc"] = weighted_auc(outputs["score"], label, arrays.get("weight"))
        return out


def make_objective(name: str, model: nn.Module, **options: Any) -> Objective:
    """The objective ``name`` for ``model`` (its ``input_keys``, else ``input_key``, and ``n_outputs`` decide the rest)."""
    module = getattr(model, "module", model)
    if name == "classify":
        n_outputs = int(getattr(module, "n_outputs", 1))
        inputs = options.get("input_key", getattr(module, "input_keys", None) or module.input_key)
        return Classify(inputs, n_classes=2 if n_outputs == 1 else n_outputs)
    if name == "autoencode":
        if not hasattr(module, "target"):
            raise ValueError(f"objective 'autoencode' needs an autoencoder model, not {type(module).__name__}")
        return Autoencode(options.get("input_key", module.input_key), sparsity=getattr(module, "sparsity", 0.0),
                          pixel_weight=options.get("pixel_weight"))
    if name in ("adapt", "finetune", "decorrelate"):
        # imported here: both modules build on Classify from this one
        from hepdl.train.adapt import Adapt
        from hepdl.train.finetune import Finetune

        settings = options.get("settings")
        n_outputs = int(getattr(module, "n_outputs", 1))
        inputs = options.get("input_key", getattr(module, "input_keys", None) or module.input_key)
        n_classes = 2 if n_outputs == 1 else n_outputs
        if name == "decorrelate":
            from hepdl.train.adapt import Decorrelate

            if not hasattr(module, "adversary"):
                raise ValueError(f"objective 'decorrelate' needs a pivot_adversarial model, not {type(module).__name__}")
            return Decorrelate(inputs, lambda_max=getattr(settings, "domain_lambda_max", 1.0),
                               gamma=getattr(settings, "domain_gamma", 10.0))
        if name == "adapt":
            if not hasattr(module, "domain_head"):
                raise ValueError(f"objective 'adapt' needs a domain_adversarial model, not {type(module).__name__}")
            return Adapt(inputs, n_classes, lambda_max=getattr(settings, "domain_lambda_max", 1.0),
                         gamma=getattr(settings, "domain_gamma", 10.0))
        return Finetune(inputs, n_classes, freeze_body_epochs=getattr(settings, "freeze_body_epochs", 2),
                        lr_factor=getattr(settings, "finetune_lr_factor", 0.1))
    raise ValueError(f"unknown objective {name!r}")
