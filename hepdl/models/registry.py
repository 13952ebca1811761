"""Model registry: a model name in a config maps to a class built from that config.

A registered class derives from :class:`~hepdl.models.interface.ModelBase` and takes keyword
arguments only, all JSON-able. ``register_model`` records ``model.config`` (the name and the
constructor's arguments, defaults filled in) from the bound arguments of every construction, so
a model file can rebuild the model without pickling code and no model writes its own config.
A nested model config given as an argument (a wrapper's ``base``) is recorded as given.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from hepdl.errors import ConfigError
from hepdl.models.interface import ModelBase

MODEL_REGISTRY: dict[str, type[ModelBase]] = {}


def plain_config(value: Any) -> Any:
    """``value`` as plain JSON-like Python: tuples become lists, numpy/torch scalars numbers."""
    if isinstance(value, Mapping):
        return {str(k): plain_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_config(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy/torch scalar
        return value.item()
    return value


def register_model(name: str) -> Callable[[type[ModelBase]], type[ModelBase]]:
    """Class decorator: make ``build_model({"name": name, ...})`` build this class."""

    def decorate(cls: type[ModelBase]) -> type[ModelBase]:
        if not (isinstance(cls, type) and issubclass(cls, ModelBase)):
            raise TypeError(f"model {name!r}: a registered model derives from hepdl.models.ModelBase")
        if name in MODEL_REGISTRY and MODEL_REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is registered twice")
        init = cls.__init__
        signature = inspect.signature(init)
        bad = [p.name for p in list(signature.parameters.values())[1:] if p.kind is not p.KEYWORD_ONLY]
        if bad:
            raise TypeError(f"model {name!r}: constructor arguments must be keyword-only ({bad[0]!r} is not)")

        @functools.wraps(init)
        def recording_init(self: ModelBase, *args: Any, **kwargs: Any) -> None:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            init(self, *args, **kwargs)
            arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
            self.config = {"name": name, **plain_config(arguments)}

        cls.__init__ = recording_init
        MODEL_REGISTRY[name] = cls
        cls.model_name = name
        return cls

    return decorate


def model_settings(name: str) -> list[str]:
    """The settings (constructor arguments) of the registered model ``name``."""
    cls = model_class(name)
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def model_class(name: str) -> type[ModelBase]:
    """The registered class of ``name``; an unknown name is a :class:`ConfigError` listing the known."""
    if name not in MODEL_REGISTRY:
        raise ConfigError(f"model.name: unknown model {name!r} (known: {sorted(MODEL_REGISTRY)})")
    return MODEL_REGISTRY[name]


def build_model(config: Mapping[str, Any]) -> nn.Module:
    """Build a registered model from ``{"name": ..., **kwargs}``.

    Unknown names and unknown keyword arguments raise :class:`ConfigError` naming them.
    """
    if "name" not in config:
        raise ConfigError(f"model config has no 'name' key (known models: {sorted(MODEL_REGISTRY)})")
    name = config["name"]
    cls = model_class(name)
    kwargs = {k: v for k, v in config.items() if k != "name"}
    accepted = set(model_settings(name))
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(f"model.{unknown[0]}: not a setting of model {name!r} (settings: {sorted(accepted)})")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {name!r}: {err}") from err


def model_input_keys(model: ModelBase | type[ModelBase]) -> list[str]:
    """The prepared arrays a model (class or instance) reads, in ``forward``'s order."""
    return list(model.input_keys)


def complete_model_config(config: dict[str, Any], meta: dict[str, Any], n_classes: int, where: str) -> dict[str, Any]:
    """Fill the model's input shape and output count from the data; a contradicting setting is an error."""
    config = dict(config)
    cls = model_class(config["name"])
    for key in model_input_keys(cls):
        if key not in meta["arrays"]:
            raise ConfigError(f"model {config['name']!r} reads {key!r}, which {where} does not hold")
    derived = {"n_outputs": 1 if n_classes == 2 else n_classes, **cls.config_from_data(meta)}
    for key, value in derived.items():
        if key in config and config[key] != value:
            raise ConfigError(f"model.{key}: set to {config[key]} but the data need {value} ({where})")
        config[key] = value
    return config
