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
