"""The training engine: one loop for every model and objective.

Read :func:`train` top to bottom: setup (device, precision, data, weights,
optimiser, schedule), optional resume, then the epoch loop (train batches,
validate, schedule, early stopping, checkpoint, log). Objectives (classify, and
later autoencode/adapt/finetune) plug in through :mod:`hepdl.train.objectives`.

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
from torch.utils.data import Dataset
from tqdm import tqdm

from hepdl.errors import ConfigError, HepdlError
from hepdl.train import distributed
from hepdl.train.augment import ImageAugment, jet_image_augment, pixel_map_augment
from hepdl.train.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from hepdl.train.data import BatchFetcher, EpochBatchSampler, dataset_array, epoch_seed, make_loader
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
    """SIGTERM (a batch system reclaiming the node) sets a flag; the loop checkpoints at the next batch."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> _Preemption:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


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
    body = getattr(getattr(model, "module", model), "body", None)
    slow: set[int] = set()
    if settings.init_body_from and settings.pretrained_body_lr_factor != 1.0 and body is not None:
        slow = {id(p) for p in body.parameters()}
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


def set_tbptt_window(model: nn.Module, window: int | None) -> None:
    """Truncated BPTT: every recurrent part of ``model`` (a submodule with a ``tbptt_window``
    attribute) runs its sequences in windows of ``window`` steps in training mode, with no
    gradient through the hidden state passed from one window to the next."""
    recurrent = [m for m in model.modules() if hasattr(m, "tbptt_window")]
    if not recurrent:
        raise ConfigError(f"tbptt_window: model {type(model).__name__} has no recurrent part to truncate")
    for m in recurrent:
        m.tbptt_window = window


#: settings that may change between a run and its resumption (they do not change the result)
RESUMABLE_CHANGES = ("epochs", "device", "num_workers", "progress", "log_epochs", "eval_batch_size")


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
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=False, rank=rank, world_size=world_size)
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
    t_start = time.perf_counter()
    device = choose_device(settings.device)
    ddp_here = distributed.setup(device)
    rank, world_size = distributed.world()
    is_main = rank == 0
    amp_dtype = choose_precision(settings.precision, device)
    module = model
    channels_last = use_channels_last(settings.channels_last, device, module)
    objective = objective or make_objective(settings.objective, module, settings)
    show_bar = is_main and (settings.progress == "always" or (settings.progress == "auto" and sys.stderr.isatty()))
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

    # --- event weights, fitted on the training split only
    n_classes = objective.n_classes
    train_label = whole_array(train_set, "label").astype(np.int64)
    cw = class_weights(settings, train_label, n_classes)
    reweighter = None
    if settings.reweight != "none":
        eta = whole_array(train_set, "jet_eta") if settings.reweight == "pt_eta" else None
        event = _optional_array(train_set, "weight") if settings.use_event_weights else None
        reweighter = SpectrumReweighter.fit(whole_array(train_set, "jet_pt"), eta, train_label, event,
                                            pt_bins=settings.reweight_bins, eta_bins=settings.reweight_eta_bins)
    train_weights = sample_weights(train_set, settings, n_classes, reweighter, cw)
    val_weights = sample_weights(val_set, settings, n_classes, reweighter, cw)

    # --- model-side constants from the training split (e.g. the MLP's standardisation);
    # a model that needs several arrays for them names them in ``standardisation_keys``
    if hasattr(module, "fit_standardisation") and not resume:
        keys = getattr(module, "standardisation_keys", (module.input_key,))
        module.fit_standardisation(*(whole_array(train_set, k) for k in keys))
    if settings.tbptt_window is not None:
        set_tbptt_window(module, settings.tbptt_window)

    module.to(device)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(module, settings)
    scheduler = build_scheduler(optimizer, settings)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    l1_params = [p for p in module.parameters() if p.dim() >= 2] if settings.l1 > 0 else []
    augment = build_augment(settings, objective.input_key, getattr(train_set, "meta", {}) or {})
    aug_generator = torch.Generator()

    sampler = EpochBatchSampler(len(train_set), settings.batch_size, seed=settings.seed, rank=rank,
                                world_size=world_size, drop_last=len(train_set) // world_size >= 2 * settings.batch_size)
    loader = make_loader(train_set, sampler, num_workers=default_num_workers(settings.num_workers, device),
                         pin_memory=device.type == "cuda", extra={"sample_weight": train_weights})

    # --- bookkeeping that a checkpoint carries
    start_epoch, start_batch = 0, 0
    partial = {"loss_sum": 0.0, "batches": 0, "samples": 0, "seconds": 0.0}
    history: list[dict[str, Any]] = []
    best = {"val_loss": math.inf, "epoch": -1, "state": None, "wait": 0, "stopped_early": False}

    if resume:
        ckpt = load_checkpoint(checkpoint_path)
        check_resumable(ckpt.get("settings", {}), settings, checkpoint_path)
        module.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt["scheduler"] is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"] is not None:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, start_batch = ckpt["epoch"], ckpt["batch"]
        partial, history, best = ckpt["partial"], ckpt["history"], ckpt["best"]
        set_rng_states(ckpt["rng"])
        aug_generator.set_state(ckpt["aug_generator"])
        if is_main:
            where = f"epoch {start_epoch + 1}, batch {start_batch}" if start_batch else f"epoch {start_epoch + 1}"
            print(f"hepdl train: resuming from {checkpoint_path} at {where}", file=sys.stderr, flush=True)

    train_model: nn.Module = module
    if world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)

    def checkpoint(epoch: int, batch: int) -> None:
        if not (is_main and checkpoint_path):
            return
        save_checkpoint(checkpoint_path, {
            "model": module.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "epoch": epoch, "batch": batch, "partial": partial, "history": history, "best": best,
            "rng": rng_states(), "aug_generator": aug_generator.get_state(), "sampler": sampler.state_dict(),
            "settings": settings.to_dict(),
        })

    preempted = False
    epoch = start_epoch
    with _Preemption() as preemption:
        for epoch in range(start_epoch, settings.epochs):
            if best["stopped_early"]:
                break
            sampler.set_epoch(epoch, start_batch)
            if start_batch == 0:
                # dropout and augmentation of this epoch depend on (seed, epoch) only
                torch.manual_seed(epoch_seed(settings.seed, epoch) ^ 0x5EED)
                aug_generator.manual_seed(epoch_seed(settings.seed, epoch) ^ 0xA06)
                partial = {"loss_sum": 0.0, "batches": 0, "samples": 0, "seconds": 0.0}
            start_batch = 0
            train_model.train()
            objective.begin_epoch(epoch, module, optimizer)  # e.g. fine-tuning freezes, later unfreezes, the body
            t_epoch = time.perf_counter()
            loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per batch
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", file=sys.stderr, disable=not show_bar,
                       leave=False, dynamic_ncols=True)
            for batch in bar:
                batch = to_device(batch, device, channels_last)
                # e.g. the ramp of the DANN gradient reversal
                objective.set_progress((epoch + partial["batches"] / max(sampler.n_batches(), 1)) / settings.epochs)
                if augment is not None:
                    key = objective.input_key
                    batch[key] = augment(batch[key], aug_generator)
                with autocast(device, amp_dtype):
                    loss, logs = objective.loss(train_model, batch)
                total = loss
                if l1_params:
                    total = total + settings.l1 * sum(p.abs().sum() for p in l1_params)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                if settings.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(module.parameters(), settings.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                loss_sum += loss.detach()
                partial["batches"] += 1
                partial["samples"] += len(batch["index"]) * world_size
                if show_bar and partial["batches"] % 10 == 0:
                    bar.set_postfix(loss=f"{(partial['loss_sum'] + float(loss_sum)) / partial['batches']:.4f}")
                # under DDP the ranks agree on stopping (a collective: every 10th batch, not to sync each one)
                if (world_size == 1 or partial["batches"] % 10 == 0) and distributed.any_rank(
                    preemption.requested, device
                ):
                    partial["loss_sum"] += float(loss_sum)
                    partial["seconds"] += time.perf_counter() - t_epoch
                    checkpoint(epoch, partial["batches"])
                    preempted = True
                    break
            bar.close()
            if preempted:
                if is_main:
                    print(f"hepdl train: SIGTERM: checkpoint written at epoch {epoch + 1}, batch {partial['batches']}; "
                          "rerun with --resume", file=sys.stderr, flush=True)
                break
            partial["loss_sum"] += float(loss_sum)
            train_seconds = partial["seconds"] + time.perf_counter() - t_epoch
            # the epoch's mean training loss over all ranks' batches
            per_rank = distributed.gather_objects((partial["loss_sum"], partial["batches"]))
            train_loss = sum(r[0] for r in per_rank) / max(sum(r[1] for r in per_rank), 1)
            if not math.isfinite(train_loss):
                raise HepdlError(f"training diverged: loss is {train_loss} in epoch {epoch + 1} "
                                 f"(lower learning_rate or set grad_clip)")

            val_loss, outputs = evaluate(train_model, objective, val_set, device=device,
                                         batch_size=settings.eval_batch_size, amp_dtype=amp_dtype,
                                         channels_last=channels_last, weights=val_weights,
                                         keys=objective.metric_keys)
            metrics = objective.metrics(outputs, outputs)
            lr = optimizer.param_groups[0]["lr"]
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            elif scheduler is not None:
                scheduler.step()

            if val_loss < best["val_loss"] - settings.min_delta:
                best.update(val_loss=val_loss, epoch=epoch + 1, wait=0,
                            state={k: v.detach().cpu().clone() for k, v in module.state_dict().items()})
            else:
                best["wait"] += 1
                patience = settings.early_stopping_patience
                best["stopped_early"] = patience is not None and best["wait"] >= patience
            row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                   **{f"val_{k}": v for k, v in metrics.items()}, "lr": lr, "seconds": train_seconds,
                   "samples_per_s": partial["samples"] / max(train_seconds, 1e-9)}
            history.append(row)
            partial = {"loss_sum": 0.0, "batches": 0, "samples": 0, "seconds": 0.0}
            checkpoint(epoch + 1, 0)
            if is_main and out_dir is not None:
                write_metrics_csv(os.path.join(out_dir, "metrics.csv"), history)
            if is_main and settings.log_epochs:
                mean_epoch = (time.perf_counter() - t_start) / (epoch + 1 - start_epoch)
                eta = mean_epoch * (settings.epochs - epoch - 1)
                monitor = f" val {objective.monitor} {metrics.get(objective.monitor, float('nan')):.4f}"
                print(f"epoch {epoch + 1}/{settings.epochs}: train loss {train_loss:.4f} val loss {val_loss:.4f}"
                      f"{monitor} lr {lr:.3g} {row['samples_per_s']:.0f} samples/s ETA {eta:.0f}s"
                      + (" (early stop)" if best["stopped_early"] else ""), file=sys.stderr, flush=True)
            if on_epoch_end is not None:
                on_epoch_end(row)
        distributed.barrier()
    if is_main and out_dir is not None and history:
        # once per run, not per epoch: a plot costs more than a small model's epoch
        plot_training_curves(history_columns(history), path=os.path.join(out_dir, "training_curve.png"))

    if best["state"] is not None and not preempted:
        module.load_state_dict(best["state"])
    distributed.teardown(ddp_here)
    completed = len(history)
    return TrainResult(
        model=module, objective=objective, history=history, best_epoch=best["epoch"], best_val_loss=best["val_loss"],
        epochs_run=completed, preempted=preempted, stopped_early=bool(best["stopped_early"]),
        samples_per_second=samples_per_second(history),
        wall_seconds=time.perf_counter() - t_start, device=str(device),
        precision={None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype],
        info={"world_size": world_size, "channels_last": channels_last, "reweight": settings.reweight},
    )
