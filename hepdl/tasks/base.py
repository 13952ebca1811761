"""What a task declaration holds, and the registry of tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hepdl.errors import ConfigError, InputError

#: metric families a task's targets are judged by (hepdl.evaluate implements each)
METRIC_FAMILIES = ("binary", "multiclass")


@dataclass(frozen=True)
class Classes:
    """Classification targets: class names in label order and the class a selection is for.

    ``minimum`` is the fewest classes a model predicts; classes after it exist only when the
    labels hold them (nu_tau CC in a sample without it), so a model has as many outputs as
    the sample has classes. ``labels`` are the names plots show (``names`` when empty).
    """

    names: tuple[str, ...]
    signal: str
    minimum: int | None = None
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.signal not in self.names:
            raise ValueError(f"signal class {self.signal!r} is not one of {list(self.names)}")
        if self.labels and len(self.labels) != len(self.names):
            raise ValueError(f"{len(self.labels)} plot labels for {len(self.names)} classes")

    @property
    def signal_index(self) -> int:
        return self.names.index(self.signal)

    def count(self, labels: np.ndarray, where: str) -> int:
        """Classes a model of these labels predicts (label -1, unlabelled, is ignored)."""
        labels = np.asarray(labels)
        labelled = labels[labels >= 0]
        top = int(labelled.max()) + 1 if labelled.size else 0
        n = max(self.minimum or len(self.names), top)
        if n > len(self.names):
            raise InputError(f"{where}: label {top - 1} found, the task has classes 0..{len(self.names) - 1} "
                             f"({list(self.names)})")
        return n

    def names_for(self, n: int) -> list[str]:
        """The names of the first ``n`` classes (a model's outputs)."""
        return list(self.names[:n])

    def plot_labels(self, n: int) -> list[str]:
        return list((self.labels or self.names)[:n])

    def score_labels(self, signal_class: int | None = None) -> tuple[str, str]:
        """What plots call a score's two sides: the signal class's plot label (the score is its
        probability) and the rest, the other class's label when there are two, else "other"."""
        labels = self.labels or self.names
        k = self.signal_index if signal_class is None else signal_class
        if not 0 <= k < len(labels):
            raise InputError(f"signal class {k}: the task has classes 0..{len(labels) - 1} ({list(self.names)})")
        return labels[k], (labels[1 - k] if len(labels) == 2 else "other")

    def to_meta(self) -> dict:
        """What ``prepare`` writes into meta.json."""
        return {"kind": "classes", "names": list(self.names), "signal": self.signal,
                "minimum": self.minimum or len(self.names)}


@dataclass(frozen=True)
class Column:
    """A per-entry array copied from a logical field into the prepared shards.

    ``default`` fills entries of files without the field (label -1: unlabelled data);
    ``always=False`` writes the array only when the file has the field (a true energy).
    """

    name: str
    dtype: str
    default: float | int
    always: bool = True


@dataclass(frozen=True)
class Task:
    """One task, declared once: its fields, arrays, targets, metrics and plots.

    Attributes:
        name: the config section and the ``task`` of shards, model files and results.
        entry: what one entry is ("jet", "event"), for messages.
        required_fields / optional_fields: the logical fields a config maps branches onto.
        representations: registered representation names (:mod:`hepdl.represent`), in the
            order they are built; their settings form the task's representation spec.
        columns: per-entry arrays copied into every shard (kinematics, label, weight).
        score_columns: the columns that travel along into scores files (for plots and studies).
        kinematics: the columns that the spectrum reweighting flattens (pT, then eta); empty:
            the task is not reweighted.
        targets: what a model predicts.
        metrics: the metric family of :data:`METRIC_FAMILIES`.
        plots: task-level evaluation figures (names of :mod:`hepdl.evaluate.task_plots`).
        generation_seed_offset: added to the seed of the task's generated chunks, so that
            the tasks' samples are independent.
    """

    name: str
    entry: str
    description: str
    required_fields: tuple[str, ...]
    optional_fields: tuple[str, ...]
    representations: tuple[str, ...]
    columns: tuple[Column, ...]
    targets: Classes
    metrics: str
    score_columns: tuple[str, ...] = ()
    kinematics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    generation_seed_offset: int = 0

    def __post_init__(self) -> None:
        if self.metrics not in METRIC_FAMILIES:
            raise ValueError(f"task {self.name!r}: metrics must be one of {METRIC_FAMILIES}, not {self.metrics!r}")
        names = {c.name for c in self.columns}
        for column in (*self.score_columns, *self.kinematics):
            if column not in names:
                raise ValueError(f"task {self.name!r}: {column!r} is not one of its columns {sorted(names)}")

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required_fields + self.optional_fields

    @property
    def truth_fields(self) -> tuple[str, ...]:
        """Optional fields that are targets or weights, never model inputs (read only to train/evaluate)."""
        return tuple(c.name for c in self.columns if c.name in self.optional_fields)


#: name -> task, filled by :func:`register_task`
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in TASKS and TASKS[task.name] is not task:
        raise ValueError(f"task {task.name!r} is declared twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The declared task ``name``; an unknown one is a :class:`ConfigError` listing the known."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"task: {name!r} is not one of {sorted(TASKS)}") from None


def task_names() -> Sequence[str]:
    return tuple(TASKS)
