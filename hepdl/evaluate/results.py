"""Records of the evaluation stages: the training metrics CSV, and the summary of all metric JSONs."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping

import numpy as np

from hepdl.errors import InputError


def read_metrics_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a training metrics CSV (header row, one row per epoch) into float columns."""
    path = os.fspath(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise InputError(f"{path}: no such metrics file") from None
    if not rows:
        raise InputError(f"{path}: metrics CSV has no rows")
    columns: dict[str, np.ndarray] = {}
    for key in rows[0]:
        try:
            columns[key] = np.array([float(r[key]) if r[key] != "" else np.nan for r in rows])
        except ValueError:
            continue  # text columns (timestamps, phase names) are not plotted
    return columns


def gather_summary(results: Iterable[tuple[str, Mapping]]) -> dict[str, dict[str, dict]]:
    """Collect per-model metric dicts into ``{task: {model: {metric: value}}}``.

    Each metrics dict must carry "task" and "model"; only scalar values (numbers,
    strings, booleans) are kept. A (task, model) pair given twice is an error:
    silently keeping one would hide which result the summary holds.
    """
    summary: dict[str, dict[str, dict]] = {}
    seen: dict[tuple[str, str], str] = {}
    for where, res in results:
        try:
            task, model = str(res["task"]), str(res["model"])
        except KeyError as err:
            raise InputError(f"{where}: metrics JSON lacks the {err.args[0]!r} key") from None
        if (task, model) in seen:
            raise InputError(f"{where}: {task}.{model} already given by {seen[(task, model)]}")
        seen[(task, model)] = where
        summary.setdefault(task, {})[model] = {
            k: v
            for k, v in res.items()
            if k not in ("task", "model") and isinstance(v, (int, float, str, bool))
        }
    return summary
