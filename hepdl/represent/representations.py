"""Representation specs and the chunk -> arrays function of every task.

A *spec* is a JSON-able dict holding every setting of a task's representations (one section
per registered representation, :mod:`hepdl.represent.registry`) and the task's name. The
prepared dataset stores it in ``meta.json`` and a model file carries it, so scoring a ROOT file
later rebuilds exactly the tensors the model was trained on: ``representation(chunk, spec)``.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError

# the builders register themselves on import
from hepdl.represent import jets, neutrino  # noqa: F401
from hepdl.represent.registry import REPRESENTATIONS, Representation
from hepdl.tasks import Task, get_task


def task_representations(task: Task) -> list[Representation]:
    """The registered representations a task declares, in its order."""
    missing = [name for name in task.representations if name not in REPRESENTATIONS]
    if missing:
        raise ConfigError(f"task {task.name!r} names representation {missing[0]!r}, which is not registered "
                          f"(registered: {sorted(REPRESENTATIONS)})")
    return [REPRESENTATIONS[name] for name in task.representations]


def default_spec(task: str) -> dict[str, Any]:
    """The task's representation settings as they are when nothing is overridden."""
    reps = task_representations(get_task(task))
    return {"task": task, **{rep.key: copy.deepcopy(dict(rep.defaults)) for rep in reps}}


def _merge(base: dict, override: Mapping, where: str) -> dict:
    for key, value in override.items():
        if key not in base:
            raise ConfigError(f"unknown representation setting {where}{key!r}; known: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"representation setting {where}{key!r} must be a mapping")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = copy.deepcopy(value)
    return base


def resolve_spec(task: str, override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The default spec of ``task`` updated with ``override`` (nested keys; unknown keys raise)."""
    spec = _merge(default_spec(task), override or {}, "")
    if spec["task"] != task:
        raise ConfigError(f"spec is for task {spec['task']!r}, not {task!r}")
    for rep in task_representations(get_task(task)):
        for setting in rep.fixed:  # column lists describe the arrays written: the code fixes them
            if list(spec[rep.key][setting]) != list(rep.defaults[setting]):
                raise ConfigError(f"representation setting {rep.key}.{setting} is fixed to {list(rep.defaults[setting])}")
    return spec


def spec_fields(spec: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(required, optional)`` logical fields that ``spec``'s task reads."""
    task = get_task(spec["task"])
    return task.required_fields, task.optional_fields


def _column(chunk: ak.Array, name: str, dtype: str, default: float | int) -> np.ndarray:
    if name in chunk.fields:
        return ak.to_numpy(chunk[name]).astype(dtype, copy=False)
    return np.full(len(chunk), default, dtype=dtype)


def representation(
    chunk: ak.Array, spec: Mapping[str, Any], *, threads: int = 1, only: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of a chunk of entries: every representation of the spec's task, then its columns.

    ``threads`` > 1 runs the representations that may (N-subjettiness) in a background thread
    while the others are built; the arrays are the same whatever it is. ``only``: the names of the
    arrays wanted (None: all); scoring a CNN then builds no N-subjettiness.
    """
    task = get_task(spec.get("task"))
    missing = [f for f in task.required_fields if f not in chunk.fields]
    if missing:
        raise ConfigError(f"the representation needs the fields {missing}; the chunk has {chunk.fields}")
    reps = task_representations(task)
    for rep in reps:
        if rep.transform is not None and rep.key in spec:
            chunk = rep.transform(chunk, spec[rep.key])
    builders = [rep for rep in reps if rep.build is not None and (only is None or set(rep.arrays) & set(only))]
    background = [rep for rep in builders if rep.concurrent] if threads > 1 else []
    out: dict[str, np.ndarray] = {}
    pool = ThreadPoolExecutor(1, thread_name_prefix="hepdl-representation") if background else None
    try:
        futures: dict[str, Future] = {rep.name: pool.submit(rep.build, chunk, spec, threads=threads) for rep in background}
        for rep in builders:
            out |= futures[rep.name].result() if rep.name in futures else rep.build(chunk, spec, threads=threads)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for column in task.columns:
        if column.always or column.name in chunk.fields:
            out[column.name] = _column(chunk, column.name, column.dtype, column.default)
    return {k: a for k, a in out.items() if only is None or k in only}


def producer(spec: Mapping[str, Any], array: str) -> Representation:
    """The representation of the spec's task that writes ``array``."""
    for rep in task_representations(get_task(spec["task"])):
        if array in rep.arrays:
            return rep
    raise ConfigError(f"no representation of task {spec['task']!r} writes an array {array!r}")


def feature_names(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{array: names along axis 1}`` of the spec's arrays that name them: the columns of the tabular
    arrays (expert variables), the per-track features, the image channels."""
    names: dict[str, list[str]] = {}
    for rep in task_representations(get_task(spec["task"])):
        for array, setting in rep.feature_arrays.items():
            names[array] = list(spec[rep.key][setting])
    return names


def optional_input_fields(spec: Mapping[str, Any], arrays: Collection[str]) -> tuple[str, ...]:
    """Optional logical fields the representations producing ``arrays`` read where present."""
    reps = task_representations(get_task(spec["task"]))
    return tuple(f for rep in reps if set(rep.arrays) & set(arrays) for f in rep.optional_fields)


def half_precision_arrays(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The arrays of the spec's task that may be stored in float16 (``prepare_file(storage="float16")``)."""
    return tuple(a for rep in task_representations(get_task(spec["task"])) for a in rep.half_precision)


def sparse_arrays(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The arrays of the spec's task that may be stored as their non-zero elements (``storage="sparse"``)."""
    return tuple(a for rep in task_representations(get_task(spec["task"])) for a in rep.sparse)

