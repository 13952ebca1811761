"""Result files that stages pass to each other: score arrays (.npz) and metric JSONs.

Every writer is atomic (temporary name in the same directory, then ``os.replace``), so an
interrupted stage never leaves a half-written result.

``test_scores.npz`` layout (written by every classifier stage, read by ``hepdl evaluate``):
``score`` (N,) for binary or (N, K) class probabilities, ``label`` (N,) int64,
``weight`` (N,) float32, and the task's score columns (e.g. ``jet_pt``, ``jet_mass``,
``nu_energy``) (N,), all for one split in dataset order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

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
