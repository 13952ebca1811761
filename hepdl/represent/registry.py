"""Representations as a registry: a named builder per task, with its settings and defaults.

A representation turns a chunk of entries (an awkward array under logical field names) into
arrays of the prepared shards: jet images, track sequences, expert variables, pixel maps. It is
registered for one task under a name (the task declaration lists the names it builds, in order)
and owns one section of the task's representation spec (``spec[key]``), whose defaults it
declares. A *transform* (trimming) changes the chunk for the representations after it instead
of writing arrays. Adding one is a function with :func:`register_representation` and its name in
the task's declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

#: a builder: ``(chunk, spec, threads=...) -> {array name: (N, ...) array}``; it reads ``spec[key]``
#: (and, where it must, other sections of the same spec)
Builder = Callable[..., dict[str, np.ndarray]]
#: a transform: ``(chunk, settings) -> chunk``
Transform = Callable[[ak.Array, Mapping[str, Any]], ak.Array]


@dataclass(frozen=True)
class Option:
    """A ``hepdl prepare`` command-line shortcut for one setting (``path`` below the section, dotted)."""

    flag: str
    path: str
    help: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Representation:
    """A registered representation (see the module docstring).

    Attributes:
        name: the registry name, listed in the task declaration.
        task: the task it serves.
        key: its section of the spec.
        defaults: that section's default settings.
        arrays: the arrays it writes (a transform writes none).
        build / transform: exactly one of them.
        optional_fields: optional logical fields it reads where the input has them
            (e.g. track impact parameters); scoring reads them for models that take its arrays.
        fixed: settings fixed by the code (column lists), which a spec may state but not change.
        feature_arrays: ``{array: setting}``: the setting that names the array's columns.
        concurrent: runs in a background thread while the others are built (``threads`` > 1).
        half_precision: its arrays that may be stored in float16 (large, with values far inside
            float16's range: normalised images, energies in MeV, track features).
        sparse: its arrays that are mostly zeros (images, pixel maps), stored as their non-zero
            elements with ``storage="sparse"``.
        options: ``hepdl prepare`` shortcuts.
        description: one line for the config reference.
    """

    name: str
    task: str
    key: str
    defaults: Mapping[str, Any]
    arrays: tuple[str, ...] = ()
    build: Builder | None = None
    transform: Transform | None = None
    optional_fields: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    feature_arrays: Mapping[str, str] = field(default_factory=dict)
    concurrent: bool = False
    half_precision: tuple[str, ...] = ()
    sparse: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    description: str = ""


#: name -> representation
REPRESENTATIONS: dict[str, Representation] = {}


def _register(rep: Representation) -> None:
    if rep.name in REPRESENTATIONS and REPRESENTATIONS[rep.name] != rep:
        raise ValueError(f"representation {rep.name!r} is registered twice")
    REPRESENTATIONS[rep.name] = rep


def register_representation(task: str, name: str, *, key: str, defaults: Mapping[str, Any],
                            arrays: Sequence[str], **details: Any) -> Callable[[Builder], Builder]:
    """Decorator of a builder ``(chunk, spec, *, threads) -> arrays`` (see :class:`Representation`)."""

    def decorate(build: Builder) -> Builder:
        _register(Representation(name=name, task=task, key=key, defaults=dict(defaults), arrays=tuple(arrays),
                                 build=build, **details))
        return build

    return decorate


def register_transform(task: str, name: str, *, key: str, defaults: Mapping[str, Any],
                       **details: Any) -> Callable[[Transform], Transform]:
    """Decorator of a chunk transform ``(chunk, settings) -> chunk`` (see :class:`Representation`)."""

    def decorate(transform: Transform) -> Transform:
        _register(Representation(name=name, task=task, key=key, defaults=dict(defaults), transform=transform,
                                 **details))
        return transform

    return decorate
