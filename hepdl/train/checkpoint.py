"""Training checkpoints: everything needed to continue a killed run to the same result.

A checkpoint holds model, optimiser, scheduler and grad-scaler states, the epoch and
the batch within it, the RNG states (torch, CUDA, numpy, python, the augmentation
generator), the sampler's state, early-stopping bookkeeping (best loss, best
weights, patience counter) and the metrics history. It is written atomically and
read with ``weights_only=True`` (only tensors and plain Python values inside).
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from typing import Any

import numpy as np
import torch

from hepdl.errors import HepdlError
from hepdl.models.model_file import atomic_torch_save

CHECKPOINT_FORMAT = "hepdl-checkpoint-v1"


def rng_states() -> dict[str, Any]:
    """The global RNG states as tensors and plain Python values."""
    kind, key, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002 - user code may use the global RNG
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, key, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format tag) atomically: a kill mid-write leaves the old checkpoint."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, **state}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; failures name the file."""
    path = os.fspath(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise HepdlError(f"{path}: no checkpoint to resume from") from err
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise HepdlError(f"{path}: corrupt or unreadable checkpoint: {str(err).strip().splitlines()[0]}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise HepdlError(f"{path}: not a hepdl checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return state
