"""``PreparedDataset``: a torch Dataset over memory-mapped prepared shards, restricted to a split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hepdl.errors import ConfigError, InputError
from hepdl.represent.prepared import load_array, load_meta
from hepdl.represent.split import SPLITS


def _expanded(dtype: np.dtype) -> np.dtype:
    """What the loader delivers for an array stored as ``dtype``: float16 shards as float32."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


class PreparedDataset(torch.utils.data.Dataset):
    """Entries of ``split`` (or all, ``split=None``) over the concatenated shards.

    ``__getitem__(i)`` gives ``{name: tensor}`` for the requested ``arrays``; ``batch(indices)``
    gives the same with a leading batch axis in one memory-mapped fetch per shard, and
    ``__getitems__`` (used by ``DataLoader``) returns its rows as a list of such dicts.
    ``numpy(name)`` loads one array for the whole split (for XGBoost).
    """

    def __init__(
        self,
        shard_dirs: Sequence[str],
        split: str | None = "train",
        arrays: Sequence[str] = ("jet_images", "label", "weight"),
    ) -> None:
        if isinstance(shard_dirs, str):
            shard_dirs = [shard_dirs]
        if not shard_dirs:
            raise InputError("PreparedDataset: no shard directories given")
        if split is not None and split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS} or None, not {split!r}")
        self.shard_dirs = list(shard_dirs)
        self.split = split
        self.names = list(arrays)
        self.metas = [load_meta(d) for d in self.shard_dirs]
        self.meta: dict[str, Any] = self.metas[0]
        for d, m in zip(self.shard_dirs[1:], self.metas[1:], strict=True):
            if m["spec"] != self.meta["spec"] or m["task"] != self.meta["task"]:
                raise InputError(f"{d}: its representation spec differs from {self.shard_dirs[0]}'s")
        self._maps: list[dict[str, np.ndarray]] = []
        self._rows: list[np.ndarray] = []
        for d, m in zip(self.shard_dirs, self.metas, strict=True):
            self._maps.append({name: load_array(d, name, m) for name in self.names})
            if split is None:
                rows = np.arange(m["n_entries"], dtype=np.int64)
            else:
                rows = np.flatnonzero(np.asarray(load_array(d, "split", m)) == SPLITS.index(split))
            self._rows.append(rows)
        sizes = np.array([len(r) for r in self._rows], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} entries")
        indices = np.where(indices < 0, indices + len(self), indices)
        shard = np.searchsorted(self._starts, indices, side="right") - 1
        return shard, indices - self._starts[shard]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        (shard,), (pos,) = self._locate(np.array([int(i)]))
        row = self._rows[shard][pos]
        return {name: torch.as_tensor(np.array(self._maps[shard][name][row], dtype=_expanded(self._maps[shard][name].dtype)))
                for name in self.names}

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """``{name: tensor (B, ...)}`` for the given dataset indices, in their order."""
        idx = np.asarray(indices, dtype=np.int64)
        shard, pos = self._locate(idx)
        out: dict[str, np.ndarray] = {}
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            rows = self._rows[s][pos[sel]]
            # Memory maps read fastest in increasing row order; restore the request order after.
            order = np.argsort(rows, kind="stable")
            for name in self.names:
                src = self._maps[s][name]
                if name not in out:
                    out[name] = np.empty((idx.size,) + src.shape[1:], dtype=_expanded(src.dtype))
                out[name][sel[order]] = src[rows[order]]  # a float16 shard expands here, in the gather's copy
        if not idx.size:
            out = {n: np.empty((0,) + self._maps[0][n].shape[1:], _expanded(self._maps[0][n].dtype)) for n in self.names}
        return {name: torch.from_numpy(a) for name, a in out.items()}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        b = self.batch(indices)
        return [{name: b[name][j] for name in self.names} for j in range(len(indices))]

    def numpy(self, name: str) -> np.ndarray:
        """One array for the whole split, concatenated over shards, as an in-memory numpy array."""
        parts = []
        for d, m, rows in zip(self.shard_dirs, self.metas, self._rows, strict=True):
            a = self._maps[self.shard_dirs.index(d)].get(name)
            if a is None:
                a = load_array(d, name, m)
            parts.append(np.asarray(a[rows], dtype=_expanded(a.dtype)))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
