"""The workflow configuration: schema defaults, clear errors, documentation in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from hepdl.config import load_config, reference_markdown, validate_config
from hepdl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_empty_config_gets_every_default():
    config = validate_config({})
    assert config["tasks"] == ["jets", "neutrino"]
    assert config["jets"]["generate"]["pt_min"] == 250.0
    assert config["jets"]["mass_bdt"]["features"] == ["mass"]
    assert config["neutrino"]["cvn"]["model"]["name"] == "two_view_cvn"


def test_shipped_configs_are_valid():
    for path in [ROOT / "config" / "config.yaml", *sorted((ROOT / "tests" / "configs").glob("*.yaml"))]:
        load_config(path)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"jets": {"generat": {}}}, r"key jets: .*'generat' was unexpected"),
        ({"jets": {"generate": {"chunks": 0}}}, r"key jets\.generate\.chunks: 0 is less than the minimum of 1"),
        ({"tasks": ["jet"]}, r"key tasks\.0: 'jet' is not one of"),
        ({"jets": {"cnn": {"epochs": 3}}}, r"key jets\.cnn: 'model' is a required property"),
    ],
)
def test_bad_keys_are_named(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


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
