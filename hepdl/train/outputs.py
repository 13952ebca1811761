"""Written records of a training run: metrics CSV and the training-curve plot (atomic writes)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from hepdl.atomic import atomic_path, atomic_write_text


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


def plot_training_curve(path: str | os.PathLike, history: Sequence[Mapping[str, Any]], monitor: str | None = None) -> None:
    """Loss per epoch (train and validation) and, on a second panel, the validation metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    metric = f"val_{monitor}" if monitor else None
    has_metric = bool(metric) and all(metric in row for row in history)
    fig, axes = plt.subplots(1, 2 if has_metric else 1, figsize=(9 if has_metric else 5, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, [row["train_loss"] for row in history], "o-", label="training")
    ax.plot(epochs, [row["val_loss"] for row in history], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    if has_metric:
        axes[0, 1].plot(epochs, [row[metric] for row in history], "s-", color="C1")
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_ylabel(f"validation {monitor}")
    fig.tight_layout()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
