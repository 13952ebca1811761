"""Registries filled by importing modules: every module of a package registers what it defines.

A new model, objective or task is one module dropped into its package (``hepdl/models``,
``hepdl/tasks``); nothing else has to import it by name.
"""

from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package: str) -> list[str]:
    """Import every module and subpackage of ``package`` (once); returns their names."""
    root = importlib.import_module(package)
    names = []
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)
        names.append(info.name)
    return names
