"""``hepdl.train_model``: a whole training run from prepared shards to a model file.

It does everything ``hepdl train`` does (the command is a thin call of it): read the shards'
task and targets, build the network the objective trains (a plain model, one wrapped with an
adversary, or a pre-trained one to fine-tune), initialise a body from an autoencoder if asked,
select the training entries, train with early stopping on the validation split, score the
validation and test splits, and write into ``output`` (each file atomically):

- ``model.pt``: the model file (best epoch's weights, architecture, representation spec, targets,
  provenance; see :mod:`hepdl.models.model_file`);
- ``checkpoint.pt`` (every epoch; ``resume=True`` continues from it) and ``checkpoint_inputs.json``
  (the settings and input files it belongs to: ``resume="if_unchanged"`` continues only the same
  run), ``metrics.csv``, ``training_curve.png``;
- ``val_scores.npz`` and ``test_scores.npz`` (probabilities, label, weight and the task's score
  columns, in dataset order; see :mod:`hepdl.result_files`);
- ``train_info.json``: settings, timing, throughput, metrics, versions.

Under ``torchrun`` every rank trains and only rank 0 scores and writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hepdl.errors import ConfigError, HepdlError
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

#: settings that change how a run is carried out, never its result: a pre-empted run continues
#: with other values of these (``resume="if_unchanged"``)
RUNTIME_SETTINGS = ("device", "num_workers", "prefetch_batches", "data_on_device", "device_memory_fraction",
                    "compile", "eval_batch_size", "progress", "log_epochs")
#: settings that name a file the run starts from (an autoencoder, a pre-trained model)
FILE_SETTINGS = ("init_body_from", "finetune_from")
CHECKPOINT_INPUTS = "checkpoint_inputs.json"

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


def _file_stamp(path: str) -> list[Any]:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def run_inputs(settings: TrainSettings, shards: Sequence[str], data_shards: Sequence[str] | None) -> dict[str, Any]:
    """What a checkpoint belongs to: the settings (less the runtime ones) and every input file's
    path, size and modification time (a shard prepared anew, even with the same bytes, counts as new)."""
    def shard_files(shard: str) -> list[list[Any]]:
        return [_file_stamp(os.path.join(root, name)) for root, _, names in sorted(os.walk(shard)) for name in sorted(names)]

    kept = {k: v for k, v in settings.to_dict().items() if k not in RUNTIME_SETTINGS}
    files = {k: _file_stamp(kept[k]) for k in FILE_SETTINGS if kept.get(k) and os.path.exists(kept[k])}
    return {"settings": kept, "shards": [shard_files(s) for s in shards],
            "data_shards": [shard_files(s) for s in data_shards or []], "files": files}


def _recorded_inputs(output: str) -> dict[str, Any] | None:
    record = os.path.join(output, CHECKPOINT_INPUTS)
    if not os.path.exists(record):
        return None
    with open(record) as f:
        return json.load(f)


def resume_if_unchanged(output: str, inputs: dict[str, Any], *, main: bool = True) -> bool:
    """True when ``output`` holds a checkpoint of a run with these settings and inputs. Otherwise
    the main process removes a checkpoint there (another run's), records the new run's inputs and
    returns False; the other ranks of a torchrun job only read (every state the main one leaves
    on the way gives them False too)."""
    checkpoint = os.path.join(output, "checkpoint.pt")
    saved = _recorded_inputs(output)
    if os.path.exists(checkpoint) and saved == json.loads(json.dumps(inputs)):
        return True
    if not main:
        return False
    if os.path.exists(checkpoint):
        changed = sorted(k for k in inputs["settings"] if (saved or {}).get("settings", {}).get(k) != inputs["settings"][k])
        why = f"setting {changed[0]!r} changed" if changed else "its input files changed"
        print(f"hepdl train: {checkpoint} belongs to another run ({why}); starting from scratch",
              file=sys.stderr, flush=True)
        os.remove(checkpoint)  # first: a crash from here on leaves no checkpoint of the other run
    write_json(os.path.join(output, CHECKPOINT_INPUTS), inputs)
    return False


def train_model(
    shards: str | os.PathLike | Sequence[str | os.PathLike],
    settings: TrainSettings | Mapping[str, Any],
    output: str | os.PathLike,
    data_shards: Sequence[str | os.PathLike] | None = None,
    resume: bool | str = False,
) -> TrainingRun:
    """Train ``settings.model`` with ``settings.objective`` on prepared shards; write it to ``output``.

    Args:
        shards: prepared shard directories of the labelled (simulated) sample, or directories
            holding them.
        settings: :class:`~hepdl.train.TrainSettings` or the mapping of its keys.
        output: the run's directory.
        data_shards: objective ``adapt``: the data sample's shards; their train split joins
            training without its labels, which are never read.
        resume: True: continue from ``output/checkpoint.pt`` (start afresh when there is none yet;
            settings that would change the result must be those of the checkpoint). ``"if_unchanged"``:
            continue only a run with the same settings and input files (see :func:`run_inputs`),
            else start afresh; what the workflow's training jobs do, so that a pre-empted or
            interrupted job continues where it stopped.
    """
    if resume not in (True, False, "if_unchanged"):
        raise ConfigError(f"resume: True, False or 'if_unchanged', not {resume!r}")
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

    if resume == "if_unchanged":
        resume = resume_if_unchanged(output, run_inputs(settings, shards, data_shards),
                                     main=int(os.environ.get("RANK", 0)) == 0)
    # under torchrun only rank 0 tracks, scores and writes
    tracking = open_tracking(settings, output) if int(os.environ.get("RANK", 0)) == 0 else NoTracking()
    result = train(model, train_set, val_set, settings, out_dir=output, resume=bool(resume),
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
