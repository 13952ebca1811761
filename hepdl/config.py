"""The workflow configuration: its schema, composed from the declarations, and its validation.

``hepdl/config.schema.yaml`` holds the keys the workflow itself defines; :func:`schema` completes
it from what is declared elsewhere, so that it can never drift from the code:

- one section per declared task (:mod:`hepdl.tasks`): the common task keys, the task's own
  (generation), and a ``representation`` section per registered representation of the task
  (:mod:`hepdl.represent.registry`), its keys those of the representation's defaults;
- the network blocks' keys from :class:`hepdl.train.TrainSettings` (types, choices, the objective
  registry) and their ``model`` from the model registry: a registered name and exactly its
  constructor's arguments.

So a mistyped key in any block fails when the config is validated (``snakemake -n``, whose
Snakefile calls :func:`validate_config`), naming the key and the block, not minutes into a job.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema
import yaml

from hepdl.errors import ConfigError

SCHEMA_FILE = "config.schema.yaml"
#: keys of a network block that the workflow reads (the rest are training settings)
NETWORK_WORKFLOW_KEYS = ("evaluate", "train_on_data", "resources")


def schema() -> dict[str, Any]:
    """The JSON schema of the configuration, completed from the task, representation, settings and
    model declarations (see the module docstring)."""
    from hepdl.models import MODEL_REGISTRY, model_settings
    from hepdl.represent.representations import task_representations
    from hepdl.tasks import TASKS
    from hepdl.train.settings import TrainSettings

    root = yaml.safe_load(resources.files("hepdl").joinpath(SCHEMA_FILE).read_text())
    defs = root["$defs"]
    root["properties"]["tasks"]["items"]["enum"] = list(TASKS)
    for name, task in TASKS.items():
        own = root["properties"].get(name, {})
        section = copy.deepcopy(defs["task"])
        section["description"] = own.get("description", task.description)
        for key, sub in own.get("properties", {}).items():
            section["properties"][key] = {**section["properties"].get(key, {}), **sub}
        if not task.kinematics:  # nothing to flatten: the reweighting is off
            section["properties"]["reweight"]["enum"] = ["none"]
        section["properties"]["representation"]["properties"] = {
            rep.key: {"type": "object", "description": rep.description, "additionalProperties": False,
                      "properties": {k: {"description": f"{'fixed to' if k in rep.fixed else 'default'} {json.dumps(v)}"}
                                     for k, v in rep.defaults.items()}}
            for rep in task_representations(task)}
        root["properties"][name] = section
    network = defs["network"]
    network["properties"] = {**TrainSettings.schema_properties(), **network["properties"]}
    models = sorted(MODEL_REGISTRY)
    defs["model"]["properties"] = {"name": {"enum": models, "description": "Registered model name (hepdl.models)."}}
    defs["model"]["allOf"] = [
        {"if": {"properties": {"name": {"const": m}}},
         "then": {"properties": {"name": {}, **{arg: {} for arg in model_settings(m)}}, "additionalProperties": False}}
        for m in models]
    return root


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


# --------------------------------------------------------------------------- the reference


def reference_markdown() -> str:
    """config/README.md: every key of the schema with its type, default and description.

    Regenerate with ``python -m hepdl.config > config/README.md``; a test checks it is current.
    """
    from hepdl.models import MODEL_REGISTRY, model_settings

    root = schema()
    defs = root["$defs"]
    lines = [
        "# Configuration keys",
        "",
        "Generated from `hepdl/config.schema.yaml` and the declarations it is completed from (tasks,",
        "representations, training settings, models) by `python -m hepdl.config > config/README.md`.",
        "Every key has a default; `config/config.yaml` is the embedded default pipeline, and",
        "`snakemake --configfile my.yaml` merges `my.yaml` over it.",
        "",
    ]

    def table(node: dict[str, Any], prefix: str) -> None:
        lines.extend(["| key | type | default | description |", "|---|---|---|---|"])
        walk(node, prefix)
        lines.append("")

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            ref = sub.get("$ref", "").rsplit("/", 1)[-1]
            target = {**defs.get(ref, {}), **sub} if ref else sub
            kind = _kind(target)
            if ref:
                kind = f"{kind} (see {_TITLES.get(ref, ref)})".strip()
            items = target.get("additionalProperties")
            if isinstance(items, dict) and "$ref" in items:
                kind = f"mapping of name -> {_TITLES.get(items['$ref'].rsplit('/', 1)[-1])}"
            default = json_text(sub.get("default", target.get("default", "")))
            text = " ".join(str(target.get("description", "")).split())
            lines.append(f"| `{key}` | {kind} | {default} | {text} |")
            if target.get("properties") and not ref:
                walk(target, key + ".")

    table(root, "")
    for ref in ("network", "xgboost_block", "resources", "label_efficiency"):
        lines.extend([f"## {_TITLES[ref]}", "", " ".join(str(defs[ref].get("description", "")).split()), ""])
        table(defs[ref], "")
    lines.extend(["## Models (`model.name` and its settings)", "",
                  "| model | settings (constructor arguments; the prepared data fill the input and output sizes) |",
                  "|---|---|"])
    for name in sorted(MODEL_REGISTRY):
        lines.append(f"| `{name}` | {', '.join(f'`{a}`' for a in model_settings(name))} |")
    return "\n".join(lines) + "\n"


_TITLES = {"network": "Network blocks", "xgboost_block": "XGBoost blocks", "resources": "Resources of a block",
           "label_efficiency": "The label-efficiency study", "model_block": "model blocks", "model": "Models"}


def _kind(target: Mapping[str, Any]) -> str:
    if "enum" in target:
        return "one of " + ", ".join(map(str, target["enum"]))
    kind = target.get("type", "")
    return " or ".join(kind) if isinstance(kind, list) else kind


def json_text(value: Any) -> str:
    return "" if value == "" else f"`{json.dumps(value)}`"


if __name__ == "__main__":
    print(reference_markdown(), end="")
