"""``hepdl.train_model``: a whole training run from prepared shards to a model file.

It does everything ``hepdl train`` does (the command is a thin call of it): read the shards'
task and targets, build the network the objective trains (a plain model, one wrapped with an
adversary, or a pre-trained one to fine-tune), initialise a body from an autoencoder if asked,
select the training entries, train with early stopping on the validation split, score the
validation and test splits, and write into ``output`` (each file atomically):

- ``model.pt``: the model file (best epoch's weights, architecture, representation spec, targets,
  provenance; see :mod:`hepdl.models.model_file`);
- ``checkpoint.pt`` (every epoch; ``resume=True`` continues from it), ``metrics.csv``,
  ``training_curve.png``;
- ``val_scores.npz`` and ``test_scores.npz`` (probabilities, label, weight and the task's score
  columns, in dataset order; see :mod:`hepdl.result_files`);
- ``train_info.json``: settings, timing, throughput, metrics, versions.

Under ``torchrun`` every rank trains and only rank 0 scores and writes.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hepdl.errors import HepdlError
from hepdl.models import save_model
from hepdl.models.autoencoders import init_body_from
from hepdl.represent.prepared import find_shards
from hepdl.represent.torch_dataset import PreparedDataset
from hepdl.result_files import save_scores, write_json
from hepdl.tasks import Classes, get_task
from hepdl.train import distributed
from hepdl.train.engine import TrainResult, predict, train
from hepdl.train.objectives import objective_class
from hepdl.train.selection import select_training_entries, select_validation_entries
from hepdl.train.settings import TrainSettings
from hepdl.train.tracking import NoTracking, open_tracking

#: arrays every classifier trains with besides the model's inputs
TARGET_ARRAYS = ("label", "weight")
SPLIT_FILES = {"validation": "val_scores.npz", "test": "test_scores.npz"}


@dataclass
class TrainingRun:
    """What :func:`train_model` returns.

    ``model_file`` is None when nothing was written: the run was pre-empted (``result.preempted``,
    a checkpoint is in ``output``) or this process is not rank 0 of a distributed job.
    """

    result: TrainResult
    output: str
    model_file: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def model(self) -> nn.Module:
        return self.result.model


def shard_targets(meta: Mapping[str, Any]) -> Classes:
    """The targets the shards were prepared with (meta.json), else those of their task's declaration."""
    targets = meta.get("targets")
    if targets and targets.get("kind") == "classes":
        return Classes(names=tuple(targets["names"]), signal=targets["signal"], minimum=targets.get("minimum"))
    return get_task(meta["task"]).targets


def train_model(
    shards: str | os.PathLike | Sequence[str | os.PathLike],
    settings: TrainSettings | Mapping[str, Any],
    output: str | os.PathLike,
    data_shards: Sequence[str | os.PathLike] | None = None,
    resume: bool = False,
) -> TrainingRun:
    """Train ``settings.model`` with ``settings.objective`` on prepared shards; write it to ``output``.

    Args:
        shards: prepared shard directories of the labelled (simulated) sample, or directories
            holding them.
        settings: :class:`~hepdl.train.TrainSettings` or the mapping of its keys.
        output: the run's directory.
        data_shards: objective ``adapt``: the data sample's shards; their train split joins
            training without its labels, which are never read.
        resume: continue from ``output/checkpoint.pt`` (start afresh when there is none yet).
    """
    if not isinstance(settings, TrainSettings):
        settings = TrainSettings.from_dict(dict(settings))
    output = os.fspath(output)
    shards = find_shards([shards] if isinstance(shards, (str, os.PathLike)) else shards)
    data_shards = find_shards(data_shards) if data_shards else None
    probe = PreparedDataset(shards, split=None, arrays=("label",))
    meta, task = probe.meta, get_task(probe.meta["task"])
    targets = shard_targets(meta)
    classes = targets.names_for(targets.count(probe.numpy("label"), shards[0]))

    objective = objective_class(settings.objective)
    model = objective.build_model(settings, meta, len(classes), shards[0])
    settings = dataclasses.replace(settings, model=model.config)
    if settings.init_body_from:  # unsupervised pre-training: the body starts from an autoencoder's encoder
        init_body_from(model, settings.init_body_from)

    inputs = list(model.input_keys)
    have = set(meta["arrays"])
    wanted = [*inputs, *TARGET_ARRAYS, *objective.extra_arrays]
    if settings.reweight != "none":
        wanted += list(task.kinematics)
    missing = [a for a in wanted if a not in have and a != "weight"]
    if missing:
        raise HepdlError(f"{shards[0]}: prepared dataset has no {missing[0]!r} array (has {sorted(have)})")
    wanted = [a for a in dict.fromkeys(wanted) if a in have]
    train_set = select_training_entries(PreparedDataset(shards, "train", wanted), settings)
    train_set = objective.training_set(train_set, data_shards, wanted)  # adapt: plus the data's train split
    val_set = select_validation_entries(PreparedDataset(shards, "validation", wanted), settings)
    if len(train_set) == 0 or len(val_set) == 0:
        raise HepdlError(f"{shards[0]}: the train or validation split is empty ({len(train_set)}, {len(val_set)} entries)")

    # under torchrun only rank 0 tracks, scores and writes
    tracking = open_tracking(settings, output) if int(os.environ.get("RANK", 0)) == 0 else NoTracking()
    result = train(model, train_set, val_set, settings, out_dir=output, resume=resume,
                   on_epoch_end=tracking.log_epoch)
    run = TrainingRun(result=result, output=output)
    if result.preempted or distributed.world()[0] != 0 or int(os.environ.get("RANK", 0)) != 0:
        tracking.finish()
        return run

    kept = [*TARGET_ARRAYS, *task.score_columns]
    arrays = [a for a in dict.fromkeys([*inputs, *kept]) if a in have]
    for split, name in SPLIT_FILES.items():
        out = predict(result.model, PreparedDataset(shards, split, arrays), objective=result.objective,
                      device=result.device, batch_size=settings.eval_batch_size, keys=[a for a in kept if a in have])
        if "weight" not in out:
            out["weight"] = np.ones(len(out["score"]), np.float32)
        run.scores[split] = out
        save_scores(os.path.join(output, name), out)

    test = run.scores["test"]
    test_metrics = result.objective.metrics(test, test) if len(test["score"]) else {}
    best_row = next((r for r in result.history if r["epoch"] == result.best_epoch), {})
    run.metrics = {**{k: v for k, v in best_row.items() if k.startswith("val_")},
                   **{f"test_{k}": v for k, v in test_metrics.items()}}
    from hepdl import __version__

    provenance = {
        "settings": settings.to_dict(), "seed": settings.seed, "shards": [os.path.abspath(s) for s in shards],
        "sources": [m.get("source", {}) for m in probe.metas], "split": meta.get("split"),
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "hepdl_version": __version__,
        "torch_version": torch.__version__, "device": result.device,
    }
    if data_shards:
        provenance["data_shards"] = [os.path.abspath(s) for s in data_shards]
    run.model_file = os.path.join(output, "model.pt")
    save_model(run.model_file, result.model, architecture=model.config,
               representation={"spec": meta.get("spec", {}), "fields": meta.get("fields", {}),
                               "feature_names": meta.get("feature_names", {})},
               inputs=inputs, task=task.name, classes=classes, provenance=provenance, metrics=run.metrics)
    write_json(os.path.join(output, "train_info.json"), {
        "settings": settings.to_dict(), "seed": settings.seed, "device": result.device, "precision": result.precision,
        "world_size": result.info.get("world_size", 1), "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss, "stopped_early": result.stopped_early,
        "samples_per_second": result.samples_per_second, "wall_seconds": result.wall_seconds,
        "n_train": len(train_set), "n_validation": len(val_set), "n_test": len(test["score"]),
        "metrics": run.metrics, "host": platform.node(), "python": sys.version.split()[0],
        "torch_version": torch.__version__, "hepdl_version": __version__,
    })
    tracking.finish(run.metrics)
    return run
