"""Training hyperparameters as one dataclass, read from a JSON/YAML settings file.

Every key of the settings file is a field of :class:`TrainSettings` (``model`` holds
the model registry config); an unknown key is a :class:`ConfigError` naming it, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hepdl.errors import ConfigError
from hepdl.train.objectives import OBJECTIVES, objective_class

_CHOICES = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("cosine", "step", "plateau", "none"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "reweight": ("none", "pt", "pt_eta"),
    "progress": ("auto", "always", "never"),
    "data_on_device": ("auto", "always", "never"),
    "tracking": ("none", "tensorboard", "mlflow"),
}


#: the comment beside a field of TrainSettings: its description
_FIELD_NOTE = re.compile(r"^    (\w+): [^\n]*?#\s*([^\n]*)$", re.M)
_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string", "None": "null",
               "dict": "object", "list": "array"}


@dataclass
class TrainSettings:
    """Everything that decides a training run (and nothing about where files are).

    The defaults train a small classifier sensibly on CPU; the same settings run on
    a GPU with mixed precision and channels-last chosen automatically.
    """

    model: dict[str, Any] = field(default_factory=lambda: {"name": "jet_cnn"})  # the network: a registered model's name and settings
    objective: str = "classify"  # what is minimised (hepdl.train.objectives)
    seed: int = 0  # initialisation, shuffling, dropout, augmentation and subsets derive from it
    # hardware
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps
    precision: str = "auto"  # auto: bf16 autocast on CUDA (fp16 + GradScaler if no bf16), fp32 elsewhere
    channels_last: bool | str = "auto"  # auto: on CUDA for conv models
    num_workers: int | str = "auto"  # DataLoader worker processes; auto: 0 on CPU, min(4, cores) on GPU; 0: a thread gathers batches ahead
    prefetch_batches: int = 2  # batches gathered ahead by the loader's thread (0: none)
    data_on_device: str = "auto"  # the splits copied to the device once: auto (on CUDA when they fit in device_memory_fraction of the free memory), always, never
    device_memory_fraction: float = 0.5  # data_on_device auto: the share of the device's free memory the splits may take
    shuffle_block: int = 1  # 1: entries shuffled one by one; k: blocks of k consecutive entries shuffled as units (runs of k rows read per batch)
    compile: bool = False  # torch.compile the model for training (measure first: on CPU the compilation costs more than it gains for small models)
    # optimisation
    epochs: int = 10  # passes over the training split
    batch_size: int = 128  # training entries per optimiser step
    eval_batch_size: int = 512  # entries per forward pass when validating and scoring
    optimizer: str = "adam"  # adam, adamw (decoupled weight decay) or sgd
    learning_rate: float = 1e-3  # initial learning rate, then the schedule
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # L2 (decoupled for adamw); biases and norm layers excluded
    l1: float = 0.0  # L1 penalty coefficient on conv/linear weights, added to the loss
    grad_clip: float | None = None  # max global gradient norm
    tbptt_window: int | None = None  # recurrent models: truncate back-propagation through time to windows of this many steps
    schedule: str = "cosine"  # per-epoch LR schedule
    step_size: int = 5  # step schedule: epochs between LR drops
    gamma: float = 0.5  # step/plateau LR factor
    plateau_patience: int = 2  # plateau schedule: epochs without improvement before a drop
    min_lr: float = 0.0  # floor of the cosine and plateau schedules
    early_stopping_patience: int | None = 5  # epochs without val-loss improvement; None: off
    min_delta: float = 0.0  # smallest val-loss decrease that counts as an improvement
    # event weighting
    class_weights: str | list[float] | None = None  # None, "balanced", or one weight per class
    use_event_weights: bool = True  # multiply by the dataset's per-entry "weight"
    reweight: str = "none"  # reweight background's jet pT ("pt") or pT and eta ("pt_eta") to signal
    reweight_bins: int = 20  # pT bins (quantiles of the training split)
    reweight_eta_bins: int = 4  # eta bins of pt_eta reweighting
    # augmentation (training batches only)
    augment: bool = False  # on-the-fly augmentation of image inputs (reflections, shifts, noise)
    augment_reflect: str | list[str] = "auto"  # "auto" (from the image preprocessing), or ["rows", "columns"]
    augment_shift: int = 0  # max roll in pixels along each image axis
    augment_noise: float = 0.0  # relative Gaussian noise on non-empty pixels
    # training-entry selection and initialisation (autoencoder pre-training, anomaly mode, label efficiency)
    train_classes: list[int] | None = None  # train only on entries with these labels (e.g. [0]: background only)
    max_train_entries: int | None = None  # a seeded random subset of this many training entries
    min_steps: int = 0  # a small training set is repeated within each epoch until the run takes this many optimiser steps
    max_validation_entries: int | None = None  # a seeded random subset of this many validation entries
    init_body_from: str | None = None  # autoencoder model file whose encoder initialises the CNN body
    pretrained_body_lr_factor: float = 1.0  # init_body_from: the body's learning rate is learning_rate times this
    # domain adaptation (objective "adapt": sim shards + unlabelled data shards) and fine-tuning ("finetune")
    domain_lambda_max: float = 1.0  # adapt/decorrelate: maximum gradient-reversal strength, reached by the ramp 2/(1+exp(-gamma p))-1
    domain_gamma: float = 10.0  # steepness of that ramp in the training progress p (0..1)
    finetune_from: str | None = None  # pre-trained model file fine-tuned (head re-initialised) by objective "finetune"
    freeze_body_epochs: int = 2  # fine-tuning: first epochs with the body frozen (only the new head learns)
    finetune_lr_factor: float = 0.1  # fine-tuning: every learning rate times this once the body is unfrozen
    # display
    progress: str = "auto"  # tqdm bar: auto (only on a tty), always, never
    log_epochs: bool = True  # one line per epoch on stderr
    tracking: str = "none"  # experiment tracking (hepdl.train.tracking): none, tensorboard (event files; pip install 'hepdl[track]') or mlflow
    tracking_dir: str | None = None  # tensorboard: folder of the event files (null: <run folder>/tensorboard); mlflow: the tracking URI (null: MLflow's default)

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key in ("epochs", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be a positive integer, not {getattr(self, key)!r}")
        for key in ("learning_rate", "weight_decay", "l1", "augment_noise", "min_delta"):
            if not isinstance(getattr(self, key), (int, float)) or getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be a number >= 0, not {getattr(self, key)!r}")
        objective_class(self.objective)  # an unknown objective is named here, not inside the loop
        if not isinstance(self.model, Mapping) or "name" not in self.model:
            raise ConfigError("model: must be a mapping with a 'name' key, e.g. {name: jet_cnn}")
        if isinstance(self.class_weights, str) and self.class_weights != "balanced":
            raise ConfigError(f"class_weights: {self.class_weights!r} is not 'balanced', null or a list")
        if self.augment_reflect != "auto":
            if isinstance(self.augment_reflect, str):
                raise ConfigError(f"augment_reflect: {self.augment_reflect!r} is not 'auto' or a list")
            bad = [a for a in self.augment_reflect if a not in ("rows", "columns")]
            if bad:
                raise ConfigError(f"augment_reflect: {bad[0]!r} is not 'rows' or 'columns'")
        if self.tbptt_window is not None and (not isinstance(self.tbptt_window, int) or self.tbptt_window < 1):
            raise ConfigError(f"tbptt_window: must be null or a positive integer, not {self.tbptt_window!r}")
        if self.num_workers != "auto" and (not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise ConfigError(f"num_workers: must be 'auto' or an integer >= 0, not {self.num_workers!r}")
        for key in ("prefetch_batches", "shuffle_block"):
            value, least = getattr(self, key), 0 if key == "prefetch_batches" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{key}: must be an integer >= {least}, not {value!r}")
        if not isinstance(self.device_memory_fraction, (int, float)) or not 0 < self.device_memory_fraction <= 1:
            raise ConfigError(f"device_memory_fraction: must be in (0, 1], not {self.device_memory_fraction!r}")
        for key in ("max_train_entries", "max_validation_entries"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{key}: must be null or a positive integer, not {value!r}")
        if not isinstance(self.min_steps, int) or self.min_steps < 0:
            raise ConfigError(f"min_steps: must be an integer >= 0, not {self.min_steps!r}")
        if self.train_classes is not None and (
                not isinstance(self.train_classes, list) or not self.train_classes
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in self.train_classes)):
            raise ConfigError(f"train_classes: must be null or a non-empty list of class labels, not {self.train_classes!r}")
        for key in ("domain_lambda_max", "domain_gamma", "finetune_lr_factor", "pretrained_body_lr_factor"):
            if not isinstance(getattr(self, key), (int, float)) or getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be a number >= 0, not {getattr(self, key)!r}")
        if not isinstance(self.freeze_body_epochs, int) or self.freeze_body_epochs < 0:
            raise ConfigError(f"freeze_body_epochs: must be an integer >= 0, not {self.freeze_body_epochs!r}")
        self.model = dict(self.model)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "settings") -> TrainSettings:
        """Build from a mapping; unknown keys raise :class:`ConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown training setting {unknown[0]!r} (known: {sorted(names)})")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def schema_properties(cls) -> dict[str, dict[str, Any]]:
        """JSON-schema properties of every setting: its types, its choices, and the comment beside
        it in this class as the description (with the default), for the workflow's config schema."""
        notes = {m.group(1): m.group(2) for m in _FIELD_NOTE.finditer(inspect.getsource(cls))}
        properties = {}
        for f in dataclasses.fields(cls):
            types = [_JSON_TYPES[t.split("[")[0].strip()] for t in str(f.type).split("|")]
            prop: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
            if f.name in _CHOICES:
                prop["enum"] = list(_CHOICES[f.name])
            if f.name == "objective":
                prop["enum"] = sorted(OBJECTIVES)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            prop["description"] = f"{notes.get(f.name, f.name.replace('_', ' '))} (default {json.dumps(default)})"
            properties[f.name] = prop
        return properties


def load_settings(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> TrainSettings:
    """Read :class:`TrainSettings` from a JSON or YAML file, or inline JSON text (``overrides`` win)."""
    path = os.fspath(path)
    if path.lstrip().startswith("{"):  # inline JSON, as the workflow's rules pass the config section
        text, path = path, "settings"
    else:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read training settings: {err.strerror}") from err
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except ValueError as err:  # json.JSONDecodeError and yaml.YAMLError's parse errors
        raise ConfigError(f"{path}: not valid JSON/YAML: {err}") from err
    except Exception as err:  # yaml.YAMLError does not derive from ValueError
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: training settings must be a mapping of keys to values")
    values.update(overrides or {})
    return TrainSettings.from_dict(values, where=path)
