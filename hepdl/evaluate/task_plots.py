"""Task-level evaluation figures: the ones a task declaration names in ``Task.plots``.

Each takes the task's prepared shards and its models' test scores (in dataset order, as every
training stage writes them) and writes one PNG; :data:`TASK_PLOTS` maps a plot's name to the
file it writes in the evaluation directory and to the function that draws it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hepdl.errors import ConfigError, InputError
from hepdl.evaluate import plots
from hepdl.tasks import Task, get_task

#: jet images are (N, C, H, W); summing per class in chunks keeps memory flat in N
_IMAGE_CHUNK = 4096


def average_images(shards: Sequence[str], output: str, *, file_name: str | None = None, split: str = "test",
                   channel: str | None = None, classes: Sequence[str] | None = None) -> str:
    """Average jet image per class of one channel (default: the first) of a split, written into the
    directory ``output`` as ``file_name`` (default ``average_images_<channel>.png``); returns the path."""
    from hepdl.represent.torch_dataset import PreparedDataset

    ds = PreparedDataset(list(shards), split, arrays=("jet_images", "label"))
    spec = ds.meta.get("spec", {}).get("image", {})
    channels = list(spec.get("channels", []))
    if channel is None:
        index = 0
    elif channel in channels:
        index = channels.index(channel)
    else:
        raise ConfigError(f"--channel {channel!r}: the shards' image channels are {channels}")
    if len(ds) == 0:
        raise InputError(f"{shards[0]}: the {split} split is empty")
    targets = get_task(ds.meta["task"]).targets
    labels = list(classes) if classes else targets.plot_labels(len(targets.names))
    sums, counts = 0.0, 0
    for start in range(0, len(ds), _IMAGE_CHUNK):
        b = ds.batch(np.arange(start, min(start + _IMAGE_CHUNK, len(ds))))
        s, c = plots.class_image_sums(b["jet_images"].numpy(), b["label"].numpy(), len(labels), index)
        sums, counts = sums + s, counts + c
    half = float(spec.get("half_width", 1.0))
    name = channels[index] if channels else f"channel{index}"
    unit = " (fraction of the jet's sum)" if spec.get("normalise") == "sum" else ""
    return plots.plot_mean_images(sums, counts, labels, extent=(-half, half, -half, half),
                                  value_label=f"Average pixel {name}{unit}",
                                  path=os.path.join(output, file_name or f"average_images_{name}.png"))


def event_display(shards: Sequence[str], scores: Mapping[str, np.ndarray], path: str, *, n_events: int = 8,
                  classes: Sequence[str] | None = None, where: str = "scores") -> str:
    """Both views of a few test events with a model's class probabilities; returns the path.

    The events are the first of each true class, then the next ones in order: reproducible and varied.
    """
    from hepdl.represent.torch_dataset import PreparedDataset

    ds = PreparedDataset(list(shards), "test", arrays=("pixel_maps", "label"))
    if len(ds) != len(scores["score"]):
        raise InputError(f"{where}: {len(scores['score'])} scores but the shards' test split has {len(ds)} events")
    label = np.asarray(scores["label"])
    first = np.unique(label, return_index=True)[1]
    rest = np.setdiff1d(np.arange(len(label)), first)
    pick = np.concatenate([np.sort(first), rest])[:n_events]
    b = ds.batch(pick)
    if not np.array_equal(b["label"].numpy(), label[pick]):
        raise InputError(f"{where}: labels disagree with the shards' test split (other shards?)")
    names = list(classes) if classes else get_task(ds.meta["task"]).targets.plot_labels(scores["score"].shape[1])
    return plots.plot_event_display(b["pixel_maps"].numpy(), scores["score"][pick], names, label=label[pick],
                                    event_ids=pick, path=path)


def roc_curves(scores: Mapping[str, Mapping[str, np.ndarray]], path: str, *, task: str, reweight: str = "none") -> str:
    """ROC curves of every binary model, the background weighted to the signal's pT with ``reweight="pt"``."""
    curves = {name: (binary_score(arrays, name), arrays["label"], evaluation_weights(arrays, reweight, name))
              for name, arrays in scores.items()}
    return plots.plot_roc(curves, title=roc_title(task, reweight), path=path)


def roc_title(task: str, reweight: str) -> str:
    return task + (": background weighted to the signal's jet pT" if reweight == "pt" else "")


def evaluation_weights(arrays: Mapping[str, np.ndarray], reweight: str, where: str) -> np.ndarray:
    """Event weights of a scores file, times the factors that give the background the signal's
    jet-pT spectrum (fitted on these entries) with ``reweight="pt"``."""
    from hepdl.train.reweight import pt_flat_weights

    if reweight == "none":
        return arrays["weight"]
    if "jet_pt" not in arrays:
        raise InputError(f"{where}: --reweight pt needs the jet_pt array in the scores file")
    return pt_flat_weights(arrays["jet_pt"], arrays["label"], arrays["weight"])


def binary_score(arrays: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """A binary model's score (N,): P(signal); a two-column softmax gives its signal column."""
    s = np.asarray(arrays["score"])
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim != 1:
        raise InputError(f"{where}: binary evaluation needs score of shape (N,), got {s.shape}")
    return s


@dataclass(frozen=True)
class TaskPlotInputs:
    """What every task-level plot may read."""

    task: Task
    shards: Sequence[str]
    scores: Mapping[str, Mapping[str, np.ndarray]]  # model name -> its test scores, in the given order
    reweight: str


def _roc(inputs: TaskPlotInputs, path: str) -> str:
    return roc_curves(inputs.scores, path, task=inputs.task.name, reweight=inputs.reweight)


def _average_images(inputs: TaskPlotInputs, path: str) -> str:
    return average_images(inputs.shards, os.path.dirname(path), file_name=os.path.basename(path))


def _event_display(inputs: TaskPlotInputs, path: str) -> str:
    name, scores = next(iter(inputs.scores.items()))  # the first model given
    return event_display(inputs.shards, scores, path, where=name)


#: plot name -> (file in the evaluation directory, drawing function)
TASK_PLOTS: dict[str, tuple[str, Callable[[TaskPlotInputs, str], str]]] = {
    "roc": ("roc.png", _roc),
    "average_images": ("average_images.png", _average_images),
    "event_display": ("event_display.png", _event_display),
}


def plot_files(task: Task) -> list[str]:
    """The files the task's plots write (names in the evaluation directory)."""
    unknown = [p for p in task.plots if p not in TASK_PLOTS]
    if unknown:
        raise ConfigError(f"task {task.name!r} declares plot {unknown[0]!r}; known: {sorted(TASK_PLOTS)}")
    return [TASK_PLOTS[p][0] for p in task.plots]


def draw_task_plots(inputs: TaskPlotInputs, output: str) -> list[str]:
    """Every plot the task declares, into ``output``; returns the paths."""
    plot_files(inputs.task)
    os.makedirs(output, exist_ok=True)
    return [draw(inputs, os.path.join(output, file)) for file, draw in (TASK_PLOTS[p] for p in inputs.task.plots)]
