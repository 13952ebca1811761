"""Domain-adversarial training ("adapt" objective): labelled simulation plus unlabelled data.

The training set is :class:`DomainDataset`, the concatenation of a labelled simulation
dataset and a data dataset with a ``domain`` array (0 simulation, 1 data). Data labels
are never read: the data part is fetched without its ``label`` array (whatever the
dataset holds) and every data entry carries ``label = -1``; the :class:`Adapt` objective
also replaces the label of every data entry before computing the label loss, so no value
a data label could take reaches the gradient.

Per training batch the loss is

    label loss (BCE/CE, event-weighted mean over the simulation entries)
    + domain loss (BCE of the domain head, each domain's mean counted one half)

with the domain head behind a gradient reversal of strength
``reversal_schedule(p, lambda_max, gamma)`` at training progress ``p`` (the engine calls
``set_progress`` before every batch). The validation loss that early stopping and
best-epoch selection use is the label loss on the simulation validation split only:
the domain loss is adversarial (the body works to keep it high), so a low value of it
is no sign of a better model, and adding it would make the best epoch depend on the
momentary balance between the two players.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from hepdl.errors import ConfigError, InputError
from hepdl.models.domain_adversarial import reversal_schedule
from hepdl.train.data import BatchFetcher, dataset_array
from hepdl.train.objectives.base import (
    classes_of,
    model_inputs_of,
    register_objective,
    wrapped_model,
)
from hepdl.train.objectives.classify import Classify

if TYPE_CHECKING:
    from hepdl.train.settings import TrainSettings

#: label given to every data entry in the training set (never a class index)
NO_LABEL = -1


class DomainDataset(Dataset):
    """Simulation entries (``domain`` 0, labelled) followed by data entries (``domain`` 1, ``label`` -1).

    ``sim`` must yield ``label``; ``data`` yields the model inputs (its ``label``, if it has
    one, is dropped unread). Arrays other than label/domain must be present in both
    (e.g. jet_images, weight); ``numpy(name)`` and ``batch(indices)`` work as for
    :class:`~hepdl.represent.torch_dataset.PreparedDataset`.
    """

    def __init__(self, sim: Dataset, data: Dataset) -> None:
        if len(sim) == 0 or len(data) == 0:
            raise ValueError(f"domain adaptation needs entries in both domains (sim {len(sim)}, data {len(data)})")
        self.sim, self.data = sim, data
        self.n_sim, self.n_data = len(sim), len(data)
        self.meta = dict(getattr(sim, "meta", {}) or {})
        self._sim_fetch = BatchFetcher(sim)
        self._data_fetch = BatchFetcher(data)

    def __len__(self) -> int:
        return self.n_sim + self.n_data

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        is_data = idx >= self.n_sim
        parts = []
        if np.any(~is_data):
            parts.append((np.flatnonzero(~is_data), self._sim_fetch[idx[~is_data].tolist()], 0))
        if np.any(is_data):
            fetched = self._data_fetch[(idx[is_data] - self.n_sim).tolist()]
            fetched.pop("label", None)  # the data's own labels never enter training
            parts.append((np.flatnonzero(is_data), fetched, 1))
        names = [k for k in parts[0][1] if k not in ("index", "label")]
        for _, fetched, _ in parts[1:]:
            missing = [k for k in names if k not in fetched]
            if missing:
                raise KeyError(f"data domain lacks array {missing[0]!r} that the simulation has")
        out: dict[str, torch.Tensor] = {}
        for name in names:
            first = parts[0][1][name]
            out[name] = torch.empty((len(idx), *first.shape[1:]), dtype=first.dtype)
        out["label"] = torch.full((len(idx),), NO_LABEL, dtype=torch.int64)
        out["domain"] = torch.empty(len(idx), dtype=torch.int64)
        for pos, fetched, domain in parts:
            where = torch.as_tensor(pos)
            for name in names:
                out[name][where] = fetched[name]
            if domain == 0:
                out["label"][where] = fetched["label"].long()
            out["domain"][where] = domain
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch([int(i)]).items()}

    def numpy(self, name: str) -> np.ndarray:
        if name == "domain":
            return np.r_[np.zeros(self.n_sim, np.int64), np.ones(self.n_data, np.int64)]
        sim = dataset_array(self.sim, name)
        if name == "label":
            if sim is None:
                raise KeyError(name)
            return np.r_[sim.astype(np.int64), np.full(self.n_data, NO_LABEL, np.int64)]
        data = dataset_array(self.data, name)
        if sim is None or data is None:
            raise KeyError(name)
        return np.concatenate([sim, data])


def balanced_domain_loss(domain_logit: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """BCE of the domain head with each domain's mean counted one half (so the prior is 0.5)."""
    per_entry = F.binary_cross_entropy_with_logits(domain_logit.float(), domain.float(), reduction="none")
    terms = [per_entry[domain == d].mean() for d in (0, 1) if bool((domain == d).any())]
    return torch.stack(terms).mean()


class ReversalRamp:
    """An adversarial objective: its model is the registered ``wrapper`` (an adversary beside a
    classifier), and the gradient-reversal strength ramps with training progress."""

    name: ClassVar[str]
    #: the registered model this objective trains; a plain model config becomes its ``base``
    wrapper: ClassVar[str]
    lambda_max: float
    gamma: float
    progress: float = 0.0

    @classmethod
    def build_model(cls, settings: TrainSettings, meta: Mapping[str, Any], n_classes: int, where: str) -> nn.Module:
        return wrapped_model(settings, cls.wrapper, meta, n_classes, where)

    @classmethod
    def ramp_for(cls, model: nn.Module, settings: TrainSettings | None) -> dict[str, float]:
        """The ramp's settings (none: the defaults), once ``model`` is checked to be the wrapper."""
        from hepdl.models import model_class

        if not isinstance(model, model_class(cls.wrapper)):
            raise ValueError(f"objective {cls.name!r} needs a {cls.wrapper} model, not {type(model).__name__}")
        return {} if settings is None else {"lambda_max": settings.domain_lambda_max, "gamma": settings.domain_gamma}

    def set_progress(self, progress: float) -> None:
        self.progress = float(progress)

    @property
    def current_lambda(self) -> float:
        return reversal_schedule(self.progress, self.lambda_max, self.gamma)


@register_objective
class Adapt(ReversalRamp, Classify):
    """Domain-adversarial classification (DANN) of a :class:`~hepdl.models.DomainAdversarial` model.

    Args:
        input_key: as for :class:`Classify`.
        n_classes: 2 (one logit) or K.
        lambda_max: maximum strength of the gradient reversal.
        gamma: steepness of the ramp (10 in Ganin & Lempitsky).
    """

    curve_labels: ClassVar[dict[str, str]] = {
        "train_loss": "train: label + domain loss (adversarial)",
        "val_loss": "validation: label loss (simulation)",
    }
    name = "adapt"
    wrapper = "domain_adversarial"
    uses_data_sample = True

    def __init__(self, input_key: str | Sequence[str], n_classes: int = 2, *, lambda_max: float = 1.0,
                 gamma: float = 10.0) -> None:
        super().__init__(input_key, n_classes)
        self.lambda_max, self.gamma = float(lambda_max), float(gamma)
        self.input_keys = (*self.model_inputs, "label", "domain")

    @classmethod
    def training_set(cls, train_set: Dataset, data_shards: Sequence[str] | None, arrays: Sequence[str]) -> Dataset:
        """Simulation's training entries followed by the data shards' train split, read without ``label``."""
        from hepdl.represent.torch_dataset import PreparedDataset

        if not data_shards:
            raise ConfigError("objective 'adapt': give the data sample's prepared shards (--data-shards)")
        # the data sample's labels are not even opened: the adversary needs only which domain an entry is in
        data = PreparedDataset(list(data_shards), "train", [a for a in arrays if a != "label"])
        if data.meta.get("spec") != train_set.meta.get("spec"):
            raise InputError(f"{data_shards[0]}: its representation spec differs from the simulation shards'; "
                             "prepare both samples with the same settings")
        if len(data) == 0:
            raise InputError(f"{data_shards[0]}: the data sample's train split is empty")
        return DomainDataset(train_set, data)

    @classmethod
    def for_model(cls, model: nn.Module, settings: TrainSettings | None) -> Adapt:
        return cls(model_inputs_of(model), classes_of(model), **cls.ramp_for(model, settings))

    def _label_loss(self, logits: torch.Tensor, label: torch.Tensor, sim: torch.Tensor,
                    weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        # data entries: label replaced by a valid class so no value of it can matter; weight 0
        label = torch.where(sim, label.long(), torch.zeros_like(label, dtype=torch.long))
        if self.n_classes == 2:
            per_entry = F.binary_cross_entropy_with_logits(logits, label.float(), reduction="none")
            correct = (logits > 0) == (label == 1)
        else:
            per_entry = F.cross_entropy(logits, label, reduction="none")
            correct = logits.argmax(-1) == label
        w = sim.float() if weight is None else torch.where(sim, weight.float(), torch.zeros_like(weight.float()))
        n_sim = sim.float().sum().clamp_min(1.0)
        return (per_entry * w).sum() / n_sim, (correct.float() * sim.float()).sum() / n_sim

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = [batch[k] for k in self.model_inputs]
        domain = batch.get("domain")
        sim = domain == 0 if domain is not None else torch.ones(len(inputs[0]), dtype=torch.bool, device=inputs[0].device)
        if model.training and domain is not None:
            logits, domain_logit = model(*inputs, domain_lambda=self.current_lambda)
            logits = logits.float()
            label_loss, accuracy = self._label_loss(logits, batch["label"], sim, batch.get("sample_weight"))
            domain_loss = balanced_domain_loss(domain_logit, domain)
            domain_acc = ((domain_logit > 0) == (domain == 1)).float().mean()
            return label_loss + domain_loss, {"accuracy": accuracy, "label_loss": label_loss.detach(),
                                              "domain_loss": domain_loss.detach(), "domain_accuracy": domain_acc}
        # validation (and training without a domain array): the label loss on simulation only
        logits = model(*inputs).float()
        label_loss, accuracy = self._label_loss(logits, batch["label"], sim, batch.get("sample_weight"))
        return label_loss, {"accuracy": accuracy}

