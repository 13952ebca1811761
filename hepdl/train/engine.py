"""The training engine: one loop for every model and objective.

Read :func:`train` top to bottom: :func:`set_up` (device, precision, process group, loss
weights, the model on its device, optimiser, schedule, augmentation, data) builds a
:class:`RunSetup`; a resumed run restores its :class:`~hepdl.train.run_state.RunState` from
the checkpoint (:func:`resume_run`); then every epoch is :func:`train_epoch` (the batches,
:func:`train_step` each, and the SIGTERM check) and :func:`end_epoch` (validation, schedule,
early stopping, history, checkpoint, log). Objectives (classify, autoencode, adapt, decorrelate,
finetune) plug in through :mod:`hepdl.train.objectives`.

Determinism: epoch ``e`` reseeds torch's global RNG (dropout) and the augmentation
generator from ``(seed, e)`` and draws its shuffle from the same pair, so a run
resumed from a checkpoint repeats the uninterrupted run exactly (on the same
hardware and thread count).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hepdl.errors import ConfigError, HepdlError
from hepdl.models.interface import BodyAndHead, HepdlModel
from hepdl.train import distributed
from hepdl.train.augment import ImageAugment, jet_image_augment, pixel_map_augment
from hepdl.train.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from hepdl.train.data import (
    ArrayDataset,
    BatchFetcher,
    BatchLoader,
    EpochBatchSampler,
    dataset_array,
    device_resident,
    epoch_seed,
    make_loader,
    resident_bytes,
)
from hepdl.train.device import (
    autocast,
    choose_device,
    choose_precision,
    default_num_workers,
    use_channels_last,
)
from hepdl.train.objectives import Objective, make_objective
from hepdl.train.outputs import history_columns, plot_training_curves, write_metrics_csv
from hepdl.train.reweight import SpectrumReweighter
from hepdl.train.run_state import EpochTally, RunState
from hepdl.train.settings import TrainSettings

#: Exit status of ``hepdl train`` after SIGTERM: checkpoint written, rerun with ``--resume``
#: (EX_TEMPFAIL from sysexits.h: "temporary failure, the user is invited to retry").
PREEMPTED_EXIT_CODE = 75


@dataclass
class TrainResult:
    """What :func:`train` returns; ``model`` holds the best epoch's weights (unwrapped from DDP)."""

    model: nn.Module
    objective: Objective
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    preempted: bool
    stopped_early: bool
    samples_per_second: float
    wall_seconds: float
    device: str
    precision: str
    info: dict[str, Any] = field(default_factory=dict)


class _Preemption:
    """SIGTERM (a batch system reclaiming the node, or a workflow stopping its jobs) or Ctrl-C sets a
    flag; the loop checkpoints at the next batch. A second Ctrl-C stops at once, without one."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Preemption:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.signal_name == "SIGINT":
            signal.default_int_handler(signum, frame)
        self.requested = True
        self.signal_name = self.signal_name or signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self.previous.items():
            if previous is not None:
                signal.signal(signum, previous)


# --------------------------------------------------------------------------- setup helpers


def whole_array(dataset: Dataset, name: str, batch_size: int = 4096) -> np.ndarray:
    """The array ``name`` over a whole dataset, via ``.numpy`` or else in batches."""
    arr = dataset_array(dataset, name)
    if arr is not None:
        return arr
    fetch = BatchFetcher(dataset)
    parts = [fetch[range(i, min(i + batch_size, len(dataset)))][name].numpy() for i in range(0, len(dataset), batch_size)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _optional_array(dataset: Dataset, name: str) -> np.ndarray | None:
    try:
        return whole_array(dataset, name)
    except (KeyError, IndexError):
        return None


def sample_weights(
    dataset: Dataset, settings: TrainSettings, n_classes: int, reweighter: SpectrumReweighter | None,
    class_weight: np.ndarray | None,
) -> torch.Tensor:
    """Per-entry loss weights: event weight x class weight x pT/eta reweighting, mean 1."""
    label = whole_array(dataset, "label").astype(np.int64)
    w = np.ones(len(label))
    if settings.use_event_weights:
        event = _optional_array(dataset, "weight")
        if event is not None:
            w = w * event
    if class_weight is not None:
        w = w * class_weight[np.clip(label, 0, n_classes - 1)]
    if reweighter is not None:
        eta = whole_array(dataset, "jet_eta") if settings.reweight == "pt_eta" else None
        w = w * reweighter.weights(whole_array(dataset, "jet_pt"), eta, label)
    if not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise HepdlError("training weights are not finite or sum to zero (check the 'weight' array and reweighting)")
    return torch.as_tensor(w / w.mean(), dtype=torch.float32)


def class_weights(settings: TrainSettings, label: np.ndarray, n_classes: int) -> np.ndarray | None:
    """``balanced``: each class contributes equally (inverse class frequency)."""
    if settings.class_weights is None:
        return None
    if settings.class_weights == "balanced":
        counts = np.bincount(label[label >= 0], minlength=n_classes).astype(np.float64)
        if np.any(counts == 0):
            raise HepdlError(f"class_weights: 'balanced' but class {int(np.argmin(counts))} has no training entries")
        return counts.sum() / (n_classes * counts)
    cw = np.asarray(settings.class_weights, dtype=np.float64)
    if cw.shape != (n_classes,):
        raise ConfigError(f"class_weights: need {n_classes} values (one per class), got {len(cw)}")
    return cw


def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Weight decay (L2) on conv/linear weights only: decaying biases and norm scales only hurts.

    A body initialised by ``init_body_from`` learns at ``pretrained_body_lr_factor`` times the rate:
    at full rate a few hundred labelled jets overwrite the pre-trained features within the first steps.
    """
    slow: set[int] = set()
    if settings.init_body_from and settings.pretrained_body_lr_factor != 1.0 and isinstance(model, BodyAndHead):
        slow = {id(p) for p in model.body.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]

    def by_decay(params: list[torch.nn.Parameter], lr: float) -> list[dict[str, Any]]:
        return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": settings.weight_decay, "lr": lr},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr": lr}]

    groups = by_decay([p for p in trainable if id(p) not in slow], settings.learning_rate)
    if slow:
        groups += by_decay([p for p in trainable if id(p) in slow], settings.learning_rate * settings.pretrained_body_lr_factor)
    if settings.optimizer == "adam":
        return torch.optim.Adam(groups, lr=settings.learning_rate)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.learning_rate)
    return torch.optim.SGD(groups, lr=settings.learning_rate, momentum=settings.momentum)


def build_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings):
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs, eta_min=settings.min_lr)
    if settings.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=settings.step_size, gamma=settings.gamma)
    if settings.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=settings.gamma, patience=settings.plateau_patience, min_lr=settings.min_lr)
    return None


def build_augment(settings: TrainSettings, input_key: str, meta: Mapping[str, Any]) -> ImageAugment | None:
    if not settings.augment:
        return None
    if input_key == "jet_images":
        image_spec = (meta.get("spec") or {}).get("image")
        return jet_image_augment(settings.augment_reflect, settings.augment_shift, settings.augment_noise, image_spec)
    if input_key == "pixel_maps":
        return pixel_map_augment(settings.augment_shift, settings.augment_noise)
    raise ConfigError(f"augment: no augmentation defined for input {input_key!r} (only jet_images, pixel_maps)")


def set_tbptt_window(model: HepdlModel, window: int | None) -> None:
    """Truncated BPTT: the model's recurrent part runs its sequences in windows of ``window`` steps
    in training mode, with no gradient through the hidden state passed from one window to the next;
    a model without one refuses (:class:`ConfigError`)."""
    model.set_tbptt_window(window)


#: settings that may change between a run and its resumption (they do not change the result)
RESUMABLE_CHANGES = ("epochs", "device", "num_workers", "progress", "log_epochs", "eval_batch_size",
                     "prefetch_batches", "data_on_device", "device_memory_fraction", "compile")


def check_resumable(saved: Mapping[str, Any], settings: TrainSettings, path: str) -> None:
    """A checkpoint continues only the run it came from: other settings would silently mix two runs."""
    current = settings.to_dict()
    for key, value in saved.items():
        if key not in RESUMABLE_CHANGES and current.get(key) != value:
            raise ConfigError(f"{key}: {current.get(key)!r} differs from {value!r} in {path}; "
                              "resume only with the run's own settings (or start in a new output directory)")


def samples_per_second(history: Sequence[Mapping[str, Any]]) -> float:
    """Training throughput over every epoch of the run, resumed parts included (0 if none ran)."""
    seconds = sum(row["seconds"] for row in history)
    return sum(row["samples_per_s"] * row["seconds"] for row in history) / seconds if seconds > 0 else 0.0


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        if channels_last and v.dim() == 4:
            v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module, objective: Objective, dataset: Dataset, *, device: torch.device, batch_size: int,
    amp_dtype: torch.dtype | None = None, channels_last: bool = False, weights: torch.Tensor | None = None,
    keys: Sequence[str] = (), progress: bool = False,
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean loss and per-entry outputs over ``dataset``, in dataset order (all ranks under DDP).

    The returned dict holds the objective's predictions plus the batch arrays ``keys``
    (e.g. label, weight, jet_pt) as numpy arrays.
    """
    rank, world_size = distributed.world()
    # each rank its own entries, none repeated: the loss and outputs count every entry once
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=False, rank=rank, world_size=world_size, pad=False)
    loader = make_loader(dataset, sampler, num_workers=0, pin_memory=False,
                         extra={"sample_weight": weights} if weights is not None else None)
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    loss_sum, n = 0.0, 0
    for batch in tqdm(loader, desc="evaluate", leave=False, file=sys.stderr, disable=not progress):
        idx = batch["index"].numpy()
        batch = to_device(batch, device, channels_last)
        with autocast(device, amp_dtype):
            loss, _ = objective.loss(model, batch)
            outputs = objective.predict(model, batch)
        loss_sum += float(loss) * len(idx)
        n += len(idx)
        outputs = {k: v.float().cpu().numpy() for k, v in outputs.items()}
        for k in keys:
            if k in batch:
                outputs[k] = batch[k].cpu().numpy()
        outputs["index"] = idx
        for k, v in outputs.items():
            parts.setdefault(k, []).append(v)
    model.train(was_training)
    local = {k: np.concatenate(v) for k, v in parts.items()}
    gathered = distributed.gather_objects((loss_sum, n, local))
    loss_total = sum(g[0] for g in gathered) / max(sum(g[1] for g in gathered), 1)
    merged = {k: np.concatenate([g[2][k] for g in gathered if k in g[2]]) for k in local}
    # DDP pads the last ranks with repeated entries: keep the first copy, in dataset order
    _, first = np.unique(merged.pop("index"), return_index=True)
    return loss_total, {k: v[first] for k, v in merged.items()}


def predict(
    model: nn.Module, dataset: Dataset, *, objective: Objective | None = None, device: str | torch.device = "auto",
    batch_size: int = 512, precision: str = "fp32", keys: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Objective outputs (``score``: (N,) or (N, K) probabilities) for every entry, in dataset order."""
    dev = choose_device(device) if isinstance(device, str) else device
    model = model.to(dev)
    objective = objective or make_objective("classify", model)
    _, outputs = evaluate(model, objective, dataset, device=dev, batch_size=batch_size,
                          amp_dtype=choose_precision(precision, dev), keys=keys)
    return outputs


# --------------------------------------------------------------------------- the run's set-up


@dataclass
class RunSetup:
    """What :func:`set_up` builds and the loop reads: hardware, model and objective, optimisation, data."""

    settings: TrainSettings
    started: float  # time.perf_counter() at the start of set-up
    device: torch.device
    ddp_here: bool  # this run joined the process group (and leaves it at the end)
    world_size: int
    is_main: bool  # rank 0: writes the files and the log
    amp_dtype: torch.dtype | None
    channels_last: bool
    show_bar: bool
    module: nn.Module  # the model itself, never the DDP wrapper
    objective: Objective
    out_dir: str | os.PathLike | None
    checkpoint_path: str | None
    resuming: bool  # resume asked for and a checkpoint exists
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    l1_params: list[nn.Parameter]
    augment: ImageAugment | None
    aug_generator: torch.Generator
    sampler: EpochBatchSampler
    loader: DataLoader
    val_set: Dataset
    val_weights: torch.Tensor


def loss_weights(train_set: Dataset, val_set: Dataset, settings: TrainSettings,
                 n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-entry loss weights of both splits, class weights and pT reweighting fitted on the training split only."""
    train_label = whole_array(train_set, "label").astype(np.int64)
    cw = class_weights(settings, train_label, n_classes)
    reweighter = None
    if settings.reweight != "none":
        eta = whole_array(train_set, "jet_eta") if settings.reweight == "pt_eta" else None
        event = _optional_array(train_set, "weight") if settings.use_event_weights else None
        reweighter = SpectrumReweighter.fit(whole_array(train_set, "jet_pt"), eta, train_label, event,
                                            pt_bins=settings.reweight_bins, eta_bins=settings.reweight_eta_bins)
    return (sample_weights(train_set, settings, n_classes, reweighter, cw),
            sample_weights(val_set, settings, n_classes, reweighter, cw))


def prepare_model(module: nn.Module, train_set: Dataset, settings: TrainSettings, device: torch.device,
                  channels_last: bool, *, fit_constants: bool) -> None:
    """The model's side of the set-up: constants, truncated BPTT, device and memory layout.

    Model-side constants (e.g. the MLP's standardisation) come from the training split's arrays
    the model names in ``standardisation_keys``. A resumed run (``fit_constants=False``) takes them
    from the checkpoint's state_dict instead.
    """
    if fit_constants and module.standardisation_keys:
        module.fit_standardisation(*(whole_array(train_set, k) for k in module.standardisation_keys))
    if settings.tbptt_window is not None:
        set_tbptt_window(module, settings.tbptt_window)
    module.to(device)
    if channels_last:
        module.to(memory_format=torch.channels_last)


def train_loader(train_set: Dataset, weights: torch.Tensor, settings: TrainSettings, device: torch.device,
                 rank: int, world_size: int) -> tuple[EpochBatchSampler, BatchLoader | DataLoader]:
    """This rank's batch sampler and the loader over it; batches carry ``sample_weight``.

    A split resident on the device (:func:`on_device`) is gathered there by the loop's own thread;
    otherwise a background thread (or DataLoader workers) gathers batches from the shards ahead.
    """
    drop_last = len(train_set) // world_size >= 2 * settings.batch_size
    sampler = EpochBatchSampler(len(train_set), settings.batch_size, seed=settings.seed, block=settings.shuffle_block,
                                rank=rank, world_size=world_size, drop_last=drop_last)
    resident = on_device(train_set, device)
    loader = make_loader(train_set, sampler, num_workers=0 if resident else default_num_workers(settings.num_workers, device),
                         pin_memory=device.type == "cuda" and not resident, prefetch=0 if resident else settings.prefetch_batches,
                         extra={"sample_weight": weights.to(device) if resident else weights})
    return sampler, loader


def keep_on_device(settings: TrainSettings, device: torch.device, datasets: Sequence[Dataset]) -> bool:
    """``data_on_device``: always, never, or auto: on CUDA when the splits fit in the allowed share of its free memory."""
    if settings.data_on_device != "auto":
        return settings.data_on_device == "always"
    if device.type != "cuda":
        return False  # on a CPU the memory-mapped shards already are in memory (the page cache)
    free, _ = torch.cuda.mem_get_info(device)
    return sum(resident_bytes(d) for d in datasets) <= settings.device_memory_fraction * free


def on_device(dataset: Dataset, device: torch.device) -> bool:
    """True when the dataset's arrays already sit on ``device``."""
    return isinstance(dataset, ArrayDataset) and all(v.device == device for v in dataset.arrays.values())


def set_up(
    model: nn.Module, train_set: Dataset, val_set: Dataset, settings: TrainSettings, *,
    out_dir: str | os.PathLike | None, resume: bool, objective: Objective | None,
) -> RunSetup:
    """Device, precision and process group, loss weights, the model on its device, optimiser, data."""
    started = time.perf_counter()
    device = choose_device(settings.device)
    ddp_here = distributed.setup(device)
    rank, world_size = distributed.world()
    is_main = rank == 0
    amp_dtype = choose_precision(settings.precision, device)
    channels_last = use_channels_last(settings.channels_last, device, model)
    objective = objective or make_objective(settings.objective, model, settings)
    checkpoint_path = os.path.join(out_dir, "checkpoint.pt") if out_dir is not None else None
    if out_dir is not None and is_main:
        os.makedirs(out_dir, exist_ok=True)
    if resume and checkpoint_path is None:
        raise ConfigError("resume: needs an output directory holding checkpoint.pt")
    if resume and not os.path.exists(checkpoint_path):
        # the same command serves the first submission and every requeue of a batch job
        if is_main:
            print(f"hepdl train: no {checkpoint_path} yet; starting from scratch", file=sys.stderr, flush=True)
        resume = False

    train_weights, val_weights = loss_weights(train_set, val_set, settings, objective.n_classes)
    prepare_model(model, train_set, settings, device, channels_last, fit_constants=not resume)
    if keep_on_device(settings, device, (train_set, val_set)):  # copied once; batches then gathered on the device
        train_set, val_set = device_resident(train_set, device), device_resident(val_set, device)
        val_weights = val_weights.to(device)
    optimizer = build_optimizer(model, settings)
    sampler, loader = train_loader(train_set, train_weights, settings, device, rank, world_size)
    return RunSetup(
        settings=settings, started=started, device=device, ddp_here=ddp_here, world_size=world_size,
        is_main=is_main, amp_dtype=amp_dtype, channels_last=channels_last,
        show_bar=is_main and (settings.progress == "always" or (settings.progress == "auto" and sys.stderr.isatty())),
        module=model, objective=objective, out_dir=out_dir, checkpoint_path=checkpoint_path, resuming=resume,
        optimizer=optimizer, scheduler=build_scheduler(optimizer, settings),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        l1_params=[p for p in model.parameters() if p.dim() >= 2] if settings.l1 > 0 else [],
        augment=build_augment(settings, objective.input_key, getattr(train_set, "meta", {}) or {}),
        aug_generator=torch.Generator(), sampler=sampler, loader=loader, val_set=val_set, val_weights=val_weights,
    )


def data_parallel(run: RunSetup) -> nn.Module:
    """The model the loop trains: under torchrun wrapped in DistributedDataParallel (gradients averaged
    over ranks), compiled with ``compile`` (the module itself, whose weights are saved, stays as it is)."""
    model = run.module
    if run.world_size > 1:
        device_ids = [run.device] if run.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    return torch.compile(model) if run.settings.compile else model


# --------------------------------------------------------------------------- checkpoints


def save_run(run: RunSetup, state: RunState) -> None:
    """Rank 0 writes ``checkpoint.pt`` (when there is an output directory): all :func:`resume_run` reads."""
    if not (run.is_main and run.checkpoint_path):
        return
    save_checkpoint(run.checkpoint_path, {
        "model": run.module.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
        "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
        **state.to_checkpoint(),
        "rng": rng_states(), "aug_generator": run.aug_generator.get_state(), "sampler": run.sampler.state_dict(),
        "settings": run.settings.to_dict(),
    })


def resume_run(run: RunSetup) -> RunState:
    """Load the checkpoint into model, optimiser, scheduler, scaler and RNGs; return the loop's state."""
    ckpt = load_checkpoint(run.checkpoint_path)
    check_resumable(ckpt.get("settings", {}), run.settings, run.checkpoint_path)
    run.module.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    if run.scheduler is not None and ckpt["scheduler"] is not None:
        run.scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt["scaler"] is not None:
        run.scaler.load_state_dict(ckpt["scaler"])
    state = RunState.from_checkpoint(ckpt)
    set_rng_states(ckpt["rng"])
    run.aug_generator.set_state(ckpt["aug_generator"])
    if run.is_main:
        batch = state.tally.batches
        where = f"epoch {state.epoch + 1}, batch {batch}" if batch else f"epoch {state.epoch + 1}"
        print(f"hepdl train: resuming from {run.checkpoint_path} at {where}", file=sys.stderr, flush=True)
    return state


# --------------------------------------------------------------------------- the loop


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    settings: TrainSettings,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    objective: Objective | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``, validating on ``val_set`` every epoch.

    Datasets yield dict-of-tensor samples (``PreparedDataset`` or :class:`ArrayDataset`)
    holding the objective's inputs, ``label`` and, optionally, ``weight``,
    ``jet_pt``/``jet_eta`` (for ``reweight``). With ``out_dir``, rank 0 writes
    ``checkpoint.pt`` (every epoch), ``metrics.csv`` and ``training_curve.png`` there;
    ``resume=True`` continues from ``out_dir/checkpoint.pt`` (or starts afresh when there is none
    yet, so one command serves a batch job and its requeues). On SIGTERM the loop writes a
    checkpoint at the next batch and returns with ``preempted=True``.
    """
    run = set_up(model, train_set, val_set, settings, out_dir=out_dir, resume=resume, objective=objective)
    state = resume_run(run) if run.resuming else RunState()
    train_model = data_parallel(run)
    first_epoch, preempted = state.epoch, False
    with _Preemption() as preemption:
        while state.epoch < settings.epochs and not state.best.stopped_early:
            preempted = train_epoch(run, train_model, state, preemption)
            if preempted:
                break
            row = end_epoch(run, train_model, state, first_epoch)
            if on_epoch_end is not None:
                on_epoch_end(row)
        distributed.barrier()
    if run.is_main and out_dir is not None and state.history and not preempted:
        # once per run, not per epoch: a plot costs more than a small model's epoch (and a
        # pre-empted run must stop quickly; the resumed one plots)
        plot_training_curves(history_columns(state.history), labels=run.objective.curve_labels,
                             path=os.path.join(out_dir, "training_curve.png"))

    best = state.best
    if best.state is not None and not preempted:
        model.load_state_dict(best.state)
    distributed.teardown(run.ddp_here)
    return TrainResult(
        model=model, objective=run.objective, history=state.history, best_epoch=best.epoch,
        best_val_loss=best.val_loss, epochs_run=len(state.history), preempted=preempted,
        stopped_early=bool(best.stopped_early), samples_per_second=samples_per_second(state.history),
        wall_seconds=time.perf_counter() - run.started, device=str(run.device),
        precision={None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[run.amp_dtype],
        info={"world_size": run.world_size, "channels_last": run.channels_last, "reweight": settings.reweight},
    )


def train_epoch(run: RunSetup, train_model: nn.Module, state: RunState, preemption: _Preemption) -> bool:
    """The training batches of epoch ``state.epoch`` (those not yet run, when resumed inside it).

    Returns True if SIGTERM stopped the epoch; the checkpoint then holds the batch reached.
    """
    settings, objective, epoch = run.settings, run.objective, state.epoch
    run.sampler.set_epoch(epoch, state.tally.batches)  # resumed inside the epoch: skip the batches already run
    if state.tally.batches == 0:
        # dropout and augmentation of this epoch depend on (seed, epoch) only
        torch.manual_seed(epoch_seed(settings.seed, epoch) ^ 0x5EED)
        run.aug_generator.manual_seed(epoch_seed(settings.seed, epoch) ^ 0xA06)
        state.tally = EpochTally()
    tally = state.tally
    train_model.train()
    objective.begin_epoch(epoch, run.module, run.optimizer)  # e.g. fine-tuning freezes, later unfreezes, the body
    t_epoch = time.perf_counter()
    loss_sum = torch.zeros((), device=run.device)  # summed on the device: no sync per batch
    preempted = False
    bar = tqdm(run.loader, desc=f"epoch {epoch + 1}/{settings.epochs}", file=sys.stderr, disable=not run.show_bar,
               leave=False, dynamic_ncols=True)
    for batch in bar:
        batch = to_device(batch, run.device, run.channels_last)
        # e.g. the ramp of the DANN gradient reversal
        objective.set_progress((epoch + tally.batches / max(run.sampler.n_batches(), 1)) / settings.epochs)
        loss_sum += train_step(run, train_model, batch)
        tally.batches += 1
        tally.samples += len(batch["index"]) * run.world_size
        if run.show_bar and tally.batches % 10 == 0:
            bar.set_postfix(loss=f"{(tally.loss_sum + float(loss_sum)) / tally.batches:.4f}")
        # under DDP the ranks agree on stopping (a collective: every 10th batch, not to sync each one)
        if (run.world_size == 1 or tally.batches % 10 == 0) and distributed.any_rank(preemption.requested, run.device):
            preempted = True
            break
    tally.loss_sum += float(loss_sum)
    tally.seconds += time.perf_counter() - t_epoch
    bar.close()
    if preempted:
        save_run(run, state)
        if run.is_main:
            print(f"hepdl train: {preemption.signal_name or 'SIGTERM'}: checkpoint written at epoch {epoch + 1}, "
                  f"batch {tally.batches}; "
                  "rerun with --resume", file=sys.stderr, flush=True)
    return preempted


def train_step(run: RunSetup, train_model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Augment, forward, backward and optimiser step on one batch; returns the objective's loss (no L1 term)."""
    settings = run.settings
    if run.augment is not None:
        key = run.objective.input_key
        batch[key] = run.augment(batch[key], run.aug_generator)
    with autocast(run.device, run.amp_dtype):
        loss, _ = run.objective.loss(train_model, batch)
    total = loss
    if run.l1_params:
        total = total + settings.l1 * sum(p.abs().sum() for p in run.l1_params)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(total).backward()
    if settings.grad_clip:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.module.parameters(), settings.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return loss.detach()


def end_epoch(run: RunSetup, train_model: nn.Module, state: RunState, first_epoch: int) -> dict[str, Any]:
    """Validate, step the schedule, track the best epoch, record the history row, checkpoint and log.

    ``first_epoch`` is where this process started (the ETA counts only its own epochs). Returns the row.
    """
    settings, objective, epoch, tally = run.settings, run.objective, state.epoch, state.tally
    # the epoch's mean training loss over all ranks' batches
    per_rank = distributed.gather_objects((tally.loss_sum, tally.batches))
    train_loss = sum(r[0] for r in per_rank) / max(sum(r[1] for r in per_rank), 1)
    if not math.isfinite(train_loss):
        raise HepdlError(f"training diverged: loss is {train_loss} in epoch {epoch + 1} "
                         f"(lower learning_rate or set grad_clip)")

    # the unwrapped module (rank 0's buffers first): no collective inside the loop, so the ranks
    # may take uneven shares of the validation entries
    distributed.broadcast_buffers(run.module)
    val_loss, outputs = evaluate(run.module, objective, run.val_set, device=run.device,
                                 batch_size=settings.eval_batch_size, amp_dtype=run.amp_dtype,
                                 channels_last=run.channels_last, weights=run.val_weights, keys=objective.metric_keys)
    metrics = objective.metrics(outputs, outputs)
    lr = run.optimizer.param_groups[0]["lr"]
    if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        run.scheduler.step(val_loss)
    elif run.scheduler is not None:
        run.scheduler.step()
    state.best.update(val_loss, epoch + 1, run.module, min_delta=settings.min_delta,
                      patience=settings.early_stopping_patience)

    row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
           **{f"val_{k}": v for k, v in metrics.items()}, "lr": lr, "seconds": tally.seconds,
           "samples_per_s": tally.samples / max(tally.seconds, 1e-9)}
    state.history.append(row)
    state.epoch, state.tally = epoch + 1, EpochTally()
    save_run(run, state)
    if run.is_main and run.out_dir is not None:
        write_metrics_csv(os.path.join(run.out_dir, "metrics.csv"), state.history)
    if run.is_main and settings.log_epochs:
        eta = (time.perf_counter() - run.started) / (epoch + 1 - first_epoch) * (settings.epochs - epoch - 1)
        monitor = f" val {objective.monitor} {metrics.get(objective.monitor, float('nan')):.4f}"
        print(f"epoch {epoch + 1}/{settings.epochs}: train loss {train_loss:.4f} val loss {val_loss:.4f}"
              f"{monitor} lr {lr:.3g} {row['samples_per_s']:.0f} samples/s ETA {eta:.0f}s"
              + (" (early stop)" if state.best.stopped_early else ""), file=sys.stderr, flush=True)
    return row
