"""Model registry: a model name in a config maps to a class built from that config.

A model class registered here takes keyword arguments only, all JSON-able, and
exposes ``config`` (the full argument dict plus ``name``) so a model file can rebuild
it without pickling code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from hepdl.errors import ConfigError

MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``build_model({"name": name, ...})`` build this class."""

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODEL_REGISTRY and MODEL_REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is registered twice")
        MODEL_REGISTRY[name] = cls
        cls.model_name = name
        return cls

    return decorate


def build_model(config: Mapping[str, Any]) -> nn.Module:
    """Build a registered model from ``{"name": ..., **kwargs}``.

    Unknown names and unknown keyword arguments raise :class:`ConfigError` naming them.
    """
    if "name" not in config:
        raise ConfigError(f"model config has no 'name' key (known models: {sorted(MODEL_REGISTRY)})")
    name = config["name"]
    if name not in MODEL_REGISTRY:
        raise ConfigError(f"model.name: unknown model {name!r} (known: {sorted(MODEL_REGISTRY)})")
    cls = MODEL_REGISTRY[name]
    kwargs = {k: v for k, v in config.items() if k != "name"}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(f"model.{unknown[0]}: not a setting of model {name!r} (settings: {sorted(accepted)})")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {name!r}: {err}") from err


def model_input_keys(model: Any) -> list[str]:
    """The prepared arrays a model (class or instance) reads: ``input_keys``, else ``[input_key]``."""
    return list(getattr(model, "input_keys", None) or (model.input_key,))


def complete_model_config(config: dict[str, Any], meta: dict[str, Any], n_classes: int, where: str) -> dict[str, Any]:
    """Fill the model's input shape and output count from the data; a contradicting setting is an error."""
    config = dict(config)
    cls = MODEL_REGISTRY.get(config["name"])
    if cls is None:
        raise ConfigError(f"model.name: unknown model {config['name']!r} (known: {sorted(MODEL_REGISTRY)})")
    for key in model_input_keys(cls):
        if key not in meta["arrays"]:
            raise ConfigError(f"model {config['name']!r} reads {key!r}, which {where} does not hold")
    shape = meta["arrays"][cls.input_key]["shape"]
    derived = {"n_outputs": 1 if n_classes == 2 else n_classes}
    if hasattr(cls, "config_from_data"):  # a model with several inputs says what it takes from them
        derived.update(cls.config_from_data(meta))
    elif cls.input_key in ("jet_images", "pixel_maps"):
        derived["in_channels"] = int(shape[1])
    elif len(shape) == 2:
        derived["n_features"] = int(shape[1])
    for key, value in derived.items():
        if key in config and config[key] != value:
            raise ConfigError(f"model.{key}: set to {config[key]} but the data need {value} ({where})")
        config[key] = value
    return config
