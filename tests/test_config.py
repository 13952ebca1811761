"""The workflow configuration: a schema composed from the declarations, defaults, clear errors,
documentation in sync."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from hepdl.config import load_config, reference_markdown, schema, validate_config
from hepdl.errors import ConfigError
from hepdl.models import MODEL_REGISTRY, model_settings
from hepdl.tasks import TASKS
from hepdl.train.settings import TrainSettings

ROOT = Path(__file__).resolve().parents[1]


def test_empty_config_gets_every_default():
    config = validate_config({})
    assert config["tasks"] == ["jets", "neutrino"]
    assert config["jets"]["generate"]["pt_min"] == 250.0
    assert config["jets"]["reweight"] == "pt" and config["neutrino"]["reweight"] == "none"
    assert config["jets"]["models"] == {} and config["jets"]["label_efficiency"] is None
    assert config["plots"] == {"style": "default", "label": "Simulation"}
    block = validate_config({"jets": {"models": {"m": {"xgboost": {"features": ["mass"]}}}}})["jets"]["models"]["m"]
    assert block["xgboost"]["arrays"] == ["expert"] and block["xgboost"]["n_estimators"] == 400


def _merged(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base`` key by key, as ``snakemake --configfile`` merges."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_shipped_configs_are_valid():
    import yaml

    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    load_config(ROOT / "config" / "config.yaml")
    for path in sorted((ROOT / "tests" / "configs").glob("*.yaml")):  # overlays of the default, as snakemake runs them
        validate_config(_merged(default, yaml.safe_load(path.read_text())), source=str(path))


def test_schema_follows_the_declarations():
    s = schema()
    assert s["properties"]["tasks"]["items"]["enum"] == list(TASKS)
    for task in TASKS:
        section = s["properties"][task]["properties"]
        assert {"tree", "sim", "data", "fields", "models", "domain", "label_efficiency"} <= set(section)
    network = s["$defs"]["network"]["properties"]
    assert set(TrainSettings.schema_properties()) <= set(network)
    assert network["optimizer"]["enum"] == ["adam", "adamw", "sgd"]
    assert s["$defs"]["model"]["properties"]["name"]["enum"] == sorted(MODEL_REGISTRY)
    cnn = next(rule["then"] for rule in s["$defs"]["model"]["allOf"] if rule["if"]["properties"]["name"]["const"] == "jet_cnn")
    assert set(cnn["properties"]) == {"name", *model_settings("jet_cnn")}
    from hepdl.figures import PLOT_STYLES

    assert s["properties"]["plots"]["properties"]["style"]["enum"] == list(PLOT_STYLES)


SHIPPED = load_config(ROOT / "config" / "config.yaml")


def _with(path: str, value):
    config = copy.deepcopy(SHIPPED)
    *parents, leaf = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[leaf] = value
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"jets": {"generat": {}}}, r"key jets: .*'generat' was unexpected"),
        ({"jets": {"generate": {"chunks": 0}}}, r"key jets\.generate\.chunks: 0 is less than the minimum of 1"),
        ({"tasks": ["jet"]}, r"key tasks\.0: 'jet' is not one of"),
        ({"jets": {"models": {"cnn": {"epochs": 3}}}}, r"key jets\.models\.cnn: 'model' is a required property"),
        # a mistyped key in any block, named with the block
        (_with("jets.models.cnn.learning_rte", 0.1), r"key jets\.models\.cnn: .*'learning_rte' was unexpected"),
        (_with("neutrino.models.dann.epoch", 3), r"key neutrino\.models\.dann: .*'epoch' was unexpected"),
        (_with("jets.models.cnn.model.chanels", [8]), r"key jets\.models\.cnn\.model: .*'chanels' was unexpected"),
        (_with("jets.models.cnn.model.name", "jet_cnnn"), r"key jets\.models\.cnn\.model\.name: 'jet_cnnn' is not one of"),
        (_with("jets.models.cnn.optimizer", "lbfgs"), r"key jets\.models\.cnn\.optimizer: 'lbfgs' is not one of"),
        (_with("jets.models.cnn.epochs", "ten"), r"key jets\.models\.cnn\.epochs: 'ten' is not of type 'integer'"),
        (_with("jets.models.mass_bdt.xgboost.max_dept", 3), r"key jets\.models\.mass_bdt\.xgboost: .*'max_dept'"),
        (_with("jets.label_efficiency.cnn.batch_siz", 3), r"key jets\.label_efficiency\.cnn: .*'batch_siz'"),
        (_with("jets.representation", {"image": {"sise": 3}}), r"key jets\.representation\.image: .*'sise'"),
        (_with("jets.representation", {"imag": {}}), r"key jets\.representation: .*'imag'"),
        (_with("neutrino.reweight", "pt"), r"key neutrino\.reweight: 'pt' is not one of \['none'\]"),
        ({"plots": {"style": "cdf"}}, r"key plots\.style: 'cdf' is not one of \['default', 'cms', 'atlas', 'lhcb'\]"),
    ],
)
def test_bad_keys_are_named(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_a_null_block_drops_a_model():
    assert validate_config(_with("jets.models.combined", None))["jets"]["models"]["combined"] is None


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("jets: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_config_readme_is_current():
    assert (ROOT / "config" / "README.md").read_text() == reference_markdown(), (
        "regenerate with: python -m hepdl.config > config/README.md"
    )


def test_cli_keeps_freed_memory_on_glibc():
    import sys

    from hepdl.cli.allocator import keep_freed_memory

    # Every hepdl stage calls it first; on glibc Linux mallopt accepts all three thresholds.
    assert keep_freed_memory() is sys.platform.startswith("linux")
