"""The objective interface and its registry.

An objective is what the engine minimises and reports, and what a training run needs
around the model: which model to build for it (a plain one, or one wrapped with an
adversary), which extra arrays a batch must carry, which training set to draw from.
A new objective is one module holding a subclass of :class:`Objective` decorated with
:func:`register_objective`; the engine never branches on an objective's name.

Per batch the engine calls ``loss(model, batch) -> (loss, logs)`` (weighted by
``batch["sample_weight"]``, a mean over the batch, plus scalar tensors to average over the
epoch for display), on evaluation ``predict(model, batch) -> {name: tensor}``, and per epoch
``metrics(outputs, arrays) -> {name: float}`` on the validation split. The hooks
:meth:`Objective.begin_epoch` and :meth:`Objective.set_progress` do nothing unless an
objective needs them (fine-tuning freezes a body; the adversaries ramp their strength).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hepdl.errors import ConfigError

if TYPE_CHECKING:
    from hepdl.train.settings import TrainSettings

#: name -> objective class, filled by :func:`register_objective`
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``objective: <cls.name>`` in the training settings select ``cls``."""
    if cls.name in OBJECTIVES and OBJECTIVES[cls.name] is not cls:
        raise ValueError(f"objective {cls.name!r} is registered twice")
    OBJECTIVES[cls.name] = cls
    return cls


def objective_class(name: str) -> type[Objective]:
    """The registered objective ``name``; an unknown one is a :class:`ConfigError` listing the known."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ConfigError(f"objective: {name!r} is not one of {sorted(OBJECTIVES)}") from None


def make_objective(name: str, model: nn.Module, settings: TrainSettings | None = None) -> Objective:
    """The objective ``name`` for ``model`` (its inputs and outputs decide the rest)."""
    return objective_class(name).for_model(getattr(model, "module", model), settings)


def plain_model(settings: TrainSettings, config: Mapping[str, Any], meta: Mapping[str, Any], n_classes: int,
                where: str) -> nn.Module:
    """A registered model from ``config``, its inputs and outputs filled from the data, seeded from the run."""
    from hepdl.models import build_model, complete_model_config

    return build_model(complete_model_config({**config, "seed": config.get("seed", settings.seed)}, dict(meta),
                                             n_classes, where))


def wrapped_model(settings: TrainSettings, wrapper: str, meta: Mapping[str, Any], n_classes: int, where: str) -> nn.Module:
    """The model ``wrapper`` (an adversary beside a classifier) around ``settings.model``.

    A plain model config becomes the wrapper's ``base``; a wrapper config is completed in place.
    The base's inputs and outputs are filled from the data, and both seeds default to the run's.
    """
    from hepdl.models import build_model, complete_model_config

    config = dict(settings.model)
    if config.get("name") != wrapper:
        config = {"name": wrapper, "base": config}
    base = dict(config.get("base") or {"name": "jet_cnn"})
    base = complete_model_config({**base, "seed": base.get("seed", settings.seed)}, dict(meta), n_classes, where)
    return build_model({**config, "base": base, "seed": config.get("seed", settings.seed)})

class Objective:
    """Base of every objective; see the module docstring for the protocol."""

    #: the ``objective`` setting that selects this class
    name: ClassVar[str]
    #: arrays beyond the model inputs, label and weight that training batches must carry
    extra_arrays: ClassVar[tuple[str, ...]] = ()
    #: True: training also draws from a data sample (``data_shards``), unlabelled
    uses_data_sample: ClassVar[bool] = False
    #: the validation arrays :meth:`metrics` reads
    metric_keys: tuple[str, ...] = ("label", "weight")
    #: the headline metric of the epoch log
    monitor: str = "auc"
    #: legend text of the training curve's columns where the column name would mislead
    curve_labels: ClassVar[dict[str, str]] = {}
    #: classes of the targets (the engine's class weights use it)
    n_classes: int = 2
    #: arrays passed to the model, positionally in this order
    model_inputs: tuple[str, ...]
    #: arrays a training batch must hold for :meth:`loss`
    input_keys: tuple[str, ...]

    @property
    def input_key(self) -> str:
        """The array augmentation acts on: the model's first input."""
        return self.model_inputs[0]

    # --------------------------------------------------------------- before training

    @classmethod
    def build_model(cls, settings: TrainSettings, meta: Mapping[str, Any], n_classes: int, where: str) -> nn.Module:
        """The network this objective trains for ``settings.model`` on data described by ``meta``."""
        return plain_model(settings, settings.model, meta, n_classes, where)

    @classmethod
    def training_set(cls, train_set: Dataset, data_shards: Sequence[str] | None, arrays: Sequence[str]) -> Dataset:
        """The entries to train on; objectives without a data sample refuse one."""
        if data_shards:
            raise ConfigError(f"--data-shards: objective {cls.name!r} trains on simulation only; only an "
                              f"objective that adapts to data ({sorted(n for n, c in OBJECTIVES.items() if c.uses_data_sample)}) "
                              "reads a data sample")
        return train_set

    @classmethod
    def for_model(cls, model: nn.Module, settings: TrainSettings | None) -> Objective:
        """This objective for ``model``, with its strengths from ``settings`` (None: the defaults)."""
        raise NotImplementedError

    # --------------------------------------------------------------- the loop's hooks

    def begin_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called after ``model.train()`` at the start of every epoch (0-based)."""

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] (epochs done, with fractions), before every batch."""

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def metrics(self, outputs: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
        raise NotImplementedError


def model_inputs_of(model: nn.Module) -> tuple[str, ...]:
    """The arrays ``model.forward`` takes, in order."""
    from hepdl.models import model_input_keys

    return tuple(model_input_keys(model))


def classes_of(model: nn.Module) -> int:
    """Classes of a classifier from its outputs: one logit is binary."""
    n_outputs = int(model.n_outputs)
    return 2 if n_outputs == 1 else n_outputs
