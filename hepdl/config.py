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


def reference_markdown() -> str:
    """config/README.md: every key of the schema with its type, default and description.

    Regenerate with ``python -m hepdl.config > config/README.md``; a test checks it is current.
    """
    root = schema()
    defs = root.get("$defs", {})
    lines = [
        "# Configuration keys",
        "",
        "Generated from `hepdl/config.schema.yaml` by `python -m hepdl.config > config/README.md`.",
        "Every key has a default: an empty config runs the embedded default pipeline.",
        "`snakemake --configfile my.yaml` merges `my.yaml` over `config/config.yaml`.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            ref = sub.get("$ref", "").rsplit("/", 1)[-1]
            target = {**defs.get(ref, {}), **sub} if ref else sub
            kind = target.get("type") or ("one of " + ", ".join(map(str, target["enum"])) if "enum" in target else "")
            default = json_text(sub.get("default", target.get("default", "")))
            text = " ".join(str(target.get("description", "")).split())
            lines.append(f"| `{key}` | {kind} | {default} | {text} |")
            if target.get("properties"):
                walk(target, key + ".")

    walk(root, "")
    return "\n".join(lines) + "\n"


def json_text(value: Any) -> str:
    import json

    return "" if value == "" else f"`{json.dumps(value)}`"


if __name__ == "__main__":
    print(reference_markdown(), end="")
