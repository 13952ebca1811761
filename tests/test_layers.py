"""DESIGN.md's layering: data flows down, a layer imports only the layers above it, and no module
imports itself back through others (no import circle, within a layer either)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hepdl"
#: DESIGN.md's layers, top (imported by all below) to bottom, with the modules it does not
#: name placed where their imports put them: tasks (the declarations every layer reads) first,
#: scoring (and the ONNX export built on it) applies trained models, autoencode holds the
#: autoencoder stages (features, label-efficiency study), config composes the workflow's schema
#: from the declarations.
LAYERS = ["tasks", "io", "generate", "represent", "models", "train", "scoring", "onnx_export", "bdt", "evaluate",
          "autoencode", "config", "cli"]
#: Helpers every layer may use; they import no layer themselves.
UTILITIES = {"errors", "atomic", "figures", "stats", "result_files", "plugins", "background"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    """The hepdl modules a file imports (module level or inside functions); ``from pkg import name``
    counts as ``pkg.name`` where that is a module. ``runtime_only`` leaves out ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hepdl"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("hepdl.")}
    return names


def imported_packages(path: Path) -> set[str]:
    """The ``hepdl.<name>`` layers and utilities a file imports."""
    return {name.split(".")[1] for name in imports(path) if "." in name}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (and modules importing themselves): Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


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


def test_every_part_of_the_package_has_a_place():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts <= set(LAYERS) | UTILITIES, parts - set(LAYERS) - UTILITIES


def test_no_import_circles():
    graph = {name: imports(path, runtime_only=True) & set(MODULES) for name, path in MODULES.items()}
    assert not import_circles(graph), import_circles(graph)


def test_the_checks_see_imports_inside_functions_and_circles(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hepdl.train import settings\n"
                      "def f():\n    from hepdl.cli.train import run\n    import hepdl.evaluate.plots\n")
    assert imported_packages(source) == {"cli", "evaluate", "train"}
    assert imports(source, runtime_only=True) == {"hepdl.cli.train", "hepdl.evaluate.plots"}
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_circles({"a": {"a"}, "b": set()}) == [["a"]]
