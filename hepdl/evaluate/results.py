"""Result files of the evaluation stages: score arrays (.npz), metric JSONs, metrics CSVs.

These are the small non-ROOT files the training, BDT and evaluation stages pass to
each other; every writer is atomic (temporary name in the same directory, then
``os.replace``), so an interrupted stage never leaves a half-written result.

``test_scores.npz`` layout (written by every classifier stage, read by ``hepdl evaluate``):
``score`` (N,) for binary or (N, K) class probabilities, ``label`` (N,) int64,
``weight`` (N,) float32, optionally ``jet_pt``, ``jet_mass``, ``nu_energy`` (N,),
all for the test split in dataset order.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping

import numpy as np

from hepdl.atomic import atomic_path, atomic_write_text
from hepdl.errors import InputError

SCORE_KEYS = ("score", "label", "weight")


def _json_safe(value):
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"refusing to write a non-finite metric value {value!r} to JSON")
    return value


def write_json(path: str | os.PathLike, obj: Mapping) -> str:
    """Write ``obj`` as indented JSON atomically; NaN/inf values are refused, not written."""
    path = os.fspath(path)
    text = json.dumps(_json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object, with an error naming the file if it is missing or malformed."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def save_scores(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> str:
    """Write a scores file (see module docstring) atomically; checks lengths and finiteness."""
    path = os.fspath(path)
    missing = [k for k in SCORE_KEYS if k not in arrays]
    if missing:
        raise InputError(f"{path}: scores need arrays {list(SCORE_KEYS)}; missing {missing}")
    n = len(arrays["score"])
    out = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if len(a) != n:
            raise InputError(f"{path}: array {k!r} has {len(a)} entries, score has {n}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise InputError(f"{path}: array {k!r} holds NaN or inf")
        out[k] = a
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **out)
    return path


def load_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a scores file; an error names the file and the missing array."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise InputError(f"{path}: no such scores file") from None
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable .npz scores file ({err})") from None
    missing = [k for k in SCORE_KEYS if k not in arrays]
    if missing:
        raise InputError(f"{path}: scores file lacks arrays {missing} (has {sorted(arrays)})")
    return arrays


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
