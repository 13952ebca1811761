"""The model interface: what the engine, scoring, export and the wrappers read off a model.

Every registered model derives from :class:`ModelBase`, which gives the defaults, and so
satisfies the :class:`HepdlModel` protocol; a classifier that domain adaptation, pre-training
and fine-tuning can reuse also has a feature extractor and a head (:class:`BodyAndHead`).
Nothing in hepdl probes a model with ``hasattr``: it reads these attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from hepdl.errors import ConfigError


@runtime_checkable
class HepdlModel(Protocol):
    """A registered hepdl model."""

    #: the registry name (set by ``register_model``)
    model_name: ClassVar[str]
    #: the registry name and the constructor's arguments (set by ``register_model``): rebuilds the model
    config: dict[str, Any]
    #: the prepared arrays ``forward`` takes, positionally in this order
    input_keys: tuple[str, ...]
    #: 1 for a binary classifier (one logit), K for K classes
    n_outputs: int
    #: conv models run faster in channels-last memory on CUDA
    prefers_channels_last: bool
    #: the training-split arrays :meth:`fit_standardisation` reads; empty: nothing to fit
    standardisation_keys: tuple[str, ...]

    def fit_standardisation(self, *arrays: Any) -> None: ...

    def set_tbptt_window(self, window: int | None) -> None: ...

    def __call__(self, *inputs: torch.Tensor) -> Any: ...


@runtime_checkable
class BodyAndHead(Protocol):
    """A classifier split into a feature extractor and a head, ``forward(x) = head(body(x))``."""

    body: nn.Module
    head: nn.Module
    #: width of the body's output
    body_dim: int


class ModelBase(nn.Module):
    """Defaults of the :class:`HepdlModel` interface; subclasses set ``input_keys`` (a wrapper: from
    the model it wraps, per instance) and build themselves."""

    model_name: ClassVar[str]
    input_keys: tuple[str, ...] = ()
    prefers_channels_last: bool = False
    standardisation_keys: tuple[str, ...] = ()
    n_outputs: int = 1
    config: dict[str, Any]

    @property
    def input_key(self) -> str:
        """The first input: the array augmentation acts on, and whose shape sizes the model."""
        return self.input_keys[0]

    def fit_standardisation(self, *arrays: Any) -> None:
        """Constants from the training split's ``standardisation_keys`` arrays (the engine calls it once)."""

    def set_tbptt_window(self, window: int | None) -> None:
        """Truncated back-propagation through time for a recurrent part; other models have none."""
        raise ConfigError(f"tbptt_window: model {self.model_name!r} has no recurrent part to truncate")

    @classmethod
    def config_from_data(cls, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The settings the prepared data fix: the channels of an image input ``(N, C, H, W)``, the
        features of a table ``(N, F)``. A model with other inputs overrides this."""
        if not cls.input_keys:  # a wrapper reads its base's inputs
            return {}
        shape = meta["arrays"][cls.input_keys[0]]["shape"]
        if len(shape) == 4:
            return {"in_channels": int(shape[1])}
        if len(shape) == 2:
            return {"n_features": int(shape[1])}
        return {}
