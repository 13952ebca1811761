"""The workflow configuration: load a YAML file, fill defaults, validate against the schema.

The Snakefile validates with Snakemake's ``validate`` and the same schema file, so a
config that runs with ``hepdl`` runs with ``snakemake`` and the other way round.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema
import yaml

from hepdl.errors import ConfigError

SCHEMA_FILE = "config.schema.yaml"


def schema() -> dict[str, Any]:
    """The JSON schema of the configuration (shipped inside the package)."""
    text = resources.files("hepdl").joinpath(SCHEMA_FILE).read_text()
    return yaml.safe_load(text)


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def validate_config(config: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """Return a copy of ``config`` with defaults filled in; raise ConfigError naming the bad key."""
    resolved = copy.deepcopy(dict(config))
    error = jsonschema.exceptions.best_match(_Validator(schema()).iter_errors(resolved))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: key {key}: {error.message}")
    return resolved


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file and return it validated, with defaults."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return validate_config(raw, source=path)
