"""Written records of a training run: the metrics CSV (atomic write) and the columns its plot reads."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepdl.atomic import atomic_write_text


def write_metrics_csv(path: str | os.PathLike, history: Sequence[Mapping[str, Any]]) -> None:
    """One row per epoch; columns in first-seen order (epoch, train_loss, val_loss, val_<metric>..., lr, seconds)."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def history_columns(history: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The numeric columns every epoch's row has, as arrays (what the training-curve plot reads)."""
    names = [k for k in history[0] if all(isinstance(row.get(k), (int, float)) for row in history)]
    return {k: np.array([row[k] for row in history], dtype=np.float64) for k in names}
