"""Device, mixed-precision and memory-layout choices for training and inference."""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from hepdl.errors import ConfigError


def choose_device(name: str = "auto") -> torch.device:
    """``auto``: the local CUDA GPU (``LOCAL_RANK``'s under torchrun), then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device: {name!r} is not a torch device ({err})") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: {name!r} requested but MPS is not available here")
    return device


def choose_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    ``auto`` uses bf16 on GPUs that have it (no loss scaling needed: bf16 has fp32's
    exponent range), fp16 on older CUDA GPUs, and fp32 on CPU/MPS where autocast
    brings little for these models.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise ConfigError("precision: fp16 needs a GPU; use bf16 or fp32 on CPU")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` on ``device``; a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_channels_last(setting: bool | str, device: torch.device, model: nn.Module) -> bool:
    """Channels-last (NHWC) memory helps conv layers on CUDA tensor cores, not on CPU."""
    if setting == "auto":
        return device.type == "cuda" and bool(model.prefers_channels_last)
    return bool(setting)


def default_num_workers(setting: int | str, device: torch.device) -> int:
    """On CPU, workers compete with the training threads for the same cores; on a GPU they hide I/O."""
    if setting != "auto":
        return int(setting)
    if device.type == "cpu":
        return 0
    return min(4, os.cpu_count() or 1)
