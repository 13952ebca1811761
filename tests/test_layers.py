"""DESIGN.md's layering: data flows down, and a layer imports only the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hepdl"
#: DESIGN.md's layers, top (imported by all below) to bottom, with the modules it does not
#: name placed where their imports put them: scoring (and the ONNX export built on it) applies
#: trained models, autoencode holds the autoencoder stages (features, label-efficiency study).
LAYERS = ["tasks", "io", "generate", "represent", "models", "train", "scoring", "onnx_export", "bdt", "evaluate",
          "autoencode", "cli"]
#: Helpers every layer may use; they import no layer themselves.
UTILITIES = {"errors", "atomic", "figures", "config", "stats", "result_files", "plugins"}


def imported_packages(path: Path) -> set[str]:
    """The ``hepdl.<name>`` modules/packages a file imports, module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hepdl."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hepdl.")}
    return names


def test_each_layer_imports_only_the_layers_above_it():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        owner = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for used in imported_packages(path):
            if owner in UTILITIES and used not in UTILITIES:
                wrong.append(f"{path.relative_to(PACKAGE)} (a utility) imports hepdl.{used}")
            elif owner in LAYERS and used in LAYERS and LAYERS.index(used) > LAYERS.index(owner):
                wrong.append(f"{path.relative_to(PACKAGE)} ({owner}) imports hepdl.{used}, a layer below it")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from hepdl.cli.train import run\n    import hepdl.evaluate.plots\n")
    assert imported_packages(source) == {"cli", "evaluate"}
