"""Written records of a training run: the metrics CSV and the training-curve figure (atomic writes)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hepdl.atomic import atomic_write_text
from hepdl.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def training_curves_figure(columns: Mapping[str, np.ndarray], *, x: str = "epoch",
                           labels: Mapping[str, str] | None = None) -> Figure:
    """Every ``*loss*`` column vs ``x`` (train and validation loss per epoch), log y when positive.

    Other numeric columns whose name contains "auc" or "acc" go to a second panel. ``labels``
    gives a column's legend text where its name would mislead (the objective's
    ``curve_labels``: e.g. an adversarial training loss that holds a second term).
    """
    from hepdl.figures import (  # matplotlib only when a figure is drawn
        experiment_label,
        hep_style,
        new_figure,
    )

    labels = labels or {}

    if x not in columns:
        raise InputError(f"training_curves_figure: no {x!r} column; have {sorted(columns)}")
    xs = np.asarray(columns[x], dtype=np.float64)
    losses = [k for k in columns if "loss" in k]
    others = [k for k in columns if k != x and ("auc" in k or "acc" in k)]
    if not losses:
        raise InputError(f"training_curves_figure: no loss columns among {sorted(columns)}")
    with hep_style():
        fig = new_figure((5.0 * (1 + bool(others)), 4.0))
        axes = fig.subplots(1, 1 + bool(others), squeeze=False)[0]
        for k in losses:
            axes[0].plot(xs, np.asarray(columns[k], dtype=np.float64), marker="o", markersize=3,
                         label=labels.get(k, k))
        if all(np.all(np.asarray(columns[k]) > 0) for k in losses):
            axes[0].set_yscale("log")
        axes[0].set_xlabel(x.capitalize())
        axes[0].set_ylabel("Loss")
        axes[0].legend()
        experiment_label(axes[0])
        if others:
            for k in others:
                axes[1].plot(xs, np.asarray(columns[k], dtype=np.float64), marker="o", markersize=3,
                             label=labels.get(k, k))
            axes[1].set_xlabel(x.capitalize())
            axes[1].set_ylabel("Metric")
            axes[1].legend()
    return fig


def plot_training_curves(columns: Mapping[str, np.ndarray], *, x: str = "epoch",
                         labels: Mapping[str, str] | None = None, path: str | os.PathLike) -> str:
    """Build :func:`training_curves_figure` and write it as a PNG to ``path``; returns the path."""
    from hepdl.figures import save_figure

    return save_figure(training_curves_figure(columns, x=x, labels=labels), path)
