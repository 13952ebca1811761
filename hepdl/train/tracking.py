"""Experiment tracking of a training run (off by default): TensorBoard event files or MLflow runs.

With ``tracking: tensorboard`` a run writes, into ``tracking_dir`` (default ``<output>/tensorboard``),
its settings (as text and as hyperparameters), every number of the engine's per-epoch history
(``train_loss``, ``val_loss``, ``val_auc``, ``lr``, ... under those names, the epoch as the step)
and, at the end, the final metrics (``val_*`` of the best epoch, ``test_*``). ``tracking: mlflow``
logs the same to the MLflow tracking URI ``tracking_dir`` (default: MLflow's own,
``MLFLOW_TRACKING_URI``). The experiment is the run's folder name, so runs of one model block,
rerun with other settings, sit side by side.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from hepdl.errors import ConfigError
from hepdl.train.settings import TrainSettings


def _numbers(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a row (NaN, e.g. an AUC without both classes, is left out)."""
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _hyperparameters(settings: TrainSettings) -> dict[str, float | str | bool]:
    """The settings flattened to the scalar values hparams tables hold (``model.channels`` ...)."""
    out: dict[str, float | str | bool] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                add(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (bool, int, float, str)):
            out[prefix] = value
        else:  # lists, None: as text
            out[prefix] = json.dumps(value)

    add("", settings.to_dict())
    return out


class NoTracking:
    """``tracking: none``: every call does nothing."""

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        pass

    def finish(self, metrics: Mapping[str, Any] | None = None) -> None:
        pass


class TensorBoardTracking(NoTracking):
    def __init__(self, settings: TrainSettings, log_dir: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tracking: tensorboard needs the tensorboard package "
                              "(pip install 'hepdl[track]')") from None
        self.settings = settings
        self.writer = SummaryWriter(log_dir=log_dir)
        self.writer.add_text("settings", "```\n" + json.dumps(settings.to_dict(), indent=2) + "\n```")
        self.writer.flush()

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        step = int(row["epoch"])
        for key, value in _numbers(row).items():
            if key != "epoch":
                self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()  # a killed job keeps every epoch it finished

    def finish(self, metrics: Mapping[str, Any] | None = None) -> None:
        if metrics:
            # "." keeps the hparams summary in the run's own folder (torch would add a subfolder)
            self.writer.add_hparams(_hyperparameters(self.settings),
                                    {f"final/{k}": v for k, v in _numbers(metrics).items()}, run_name=".")
        self.writer.close()


class MLflowTracking(NoTracking):
    def __init__(self, settings: TrainSettings, uri: str | None, experiment: str) -> None:
        try:
            import mlflow
        except ImportError:
            raise ConfigError("tracking: mlflow needs the mlflow package (pip install mlflow-skinny)") from None
        self.mlflow = mlflow
        try:
            if uri:
                mlflow.set_tracking_uri(uri)
            mlflow.set_experiment(experiment)
            mlflow.start_run()
        except mlflow.exceptions.MlflowException as err:  # e.g. a store MLflow refuses: one line, no traceback
            raise ConfigError(f"tracking_dir {uri!r}: MLflow: {err.message}") from None
        mlflow.log_params(_hyperparameters(settings))

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        numbers = _numbers(row)
        numbers.pop("epoch", None)
        self.mlflow.log_metrics(numbers, step=int(row["epoch"]))

    def finish(self, metrics: Mapping[str, Any] | None = None) -> None:
        if metrics:
            self.mlflow.log_metrics({f"final_{k}": v for k, v in _numbers(metrics).items()})
        self.mlflow.end_run("FINISHED" if metrics else "KILLED")


def open_tracking(settings: TrainSettings, output: str) -> NoTracking:
    """The tracking ``settings.tracking`` asks for, of the run writing into ``output``."""
    if settings.tracking == "tensorboard":
        return TensorBoardTracking(settings, settings.tracking_dir or os.path.join(output, "tensorboard"))
    if settings.tracking == "mlflow":
        experiment = os.path.basename(os.path.abspath(output))
        return MLflowTracking(settings, settings.tracking_dir, experiment)
    return NoTracking()
