"""The training loop's own bookkeeping, as the checkpoint carries it.

:class:`RunState` is where a run stands (the epoch in progress, its :class:`EpochTally`),
what it has recorded (the history rows) and its :class:`BestEpoch` (best validation loss,
its weights, the early-stopping patience count). A checkpoint stores these as plain dicts
of tensors and Python values, so it loads with ``torch.load(weights_only=True)``; the keys
are those of ``hepdl-checkpoint-v1``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, values shared (``dataclasses.asdict`` would copy the best weights)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@dataclass
class EpochTally:
    """Sums over the batches run so far in the epoch in progress (this rank's)."""

    loss_sum: float = 0.0
    batches: int = 0
    samples: int = 0  # over all ranks
    seconds: float = 0.0


@dataclass
class BestEpoch:
    """The epoch of lowest validation loss, its weights, and the early-stopping count since it."""

    val_loss: float = math.inf
    epoch: int = -1  # 1-based; -1: none yet
    state: dict[str, torch.Tensor] | None = None  # a CPU copy of the model's state_dict
    wait: int = 0  # epochs since the best one
    stopped_early: bool = False

    def update(self, val_loss: float, epoch: int, model: nn.Module, *, min_delta: float,
               patience: int | None) -> None:
        """Record epoch ``epoch`` (1-based): the best so far if it beats the best by more than
        ``min_delta``, else one more epoch of patience spent (``patience`` None: never stop)."""
        if val_loss < self.val_loss - min_delta:
            self.val_loss, self.epoch, self.wait = val_loss, epoch, 0
            # a copy: the live weights go on training
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
            self.stopped_early = patience is not None and self.wait >= patience


@dataclass
class RunState:
    """Where a run stands: the epoch in progress (0-based), its tally, the history, the best epoch.

    Between epochs the tally is empty; a checkpoint inside an epoch (SIGTERM) holds the batches
    run so far, and the resumed run skips them.
    """

    epoch: int = 0
    tally: EpochTally = field(default_factory=EpochTally)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: BestEpoch = field(default_factory=BestEpoch)

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's entries ``epoch``, ``batch``, ``partial``, ``history`` and ``best``."""
        return {"epoch": self.epoch, "batch": self.tally.batches, "partial": _fields(self.tally),
                "history": self.history, "best": _fields(self.best)}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> RunState:
        """The state saved by :meth:`to_checkpoint` (``batch`` is the tally's batch count)."""
        return cls(epoch=ckpt["epoch"], tally=EpochTally(**ckpt["partial"]), history=ckpt["history"],
                   best=BestEpoch(**ckpt["best"]))
