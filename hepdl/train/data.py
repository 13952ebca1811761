"""Batches for the training engine: deterministic epoch shuffling, batched fetching, read-ahead.

The shuffling of epoch ``e`` is a permutation drawn from a ``torch.Generator``
seeded by ``(seed, e)`` alone, so a resumed run sees exactly the batches the
uninterrupted run would have seen, and every DDP rank agrees on the permutation
before taking its own slice of it.

No Python runs per entry: a batch is an index array, gathered from each memory-mapped shard
in one fancy-index per array (:class:`BatchFetcher`); :class:`BatchLoader` gathers the next
batches in a background thread (and pins them for a GPU) while the current step runs; a
split that fits on the device is copied there once (:func:`device_resident`) and batches
are then gathered on the device itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from hepdl.background import read_ahead


def epoch_seed(seed: int, epoch: int) -> int:
    """One 63-bit seed per (run seed, epoch): used for shuffling, augmentation and dropout."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class ArrayDataset(Dataset):
    """A dataset over in-memory arrays of equal length (numpy or torch), same samples as PreparedDataset.

    ``__getitem__(i)`` gives a dict of tensors for entry ``i``; ``__getitems__(indices)``
    a dict of batched tensors; ``numpy(name)`` the whole array.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray | torch.Tensor], meta: Mapping | None = None) -> None:
        self.arrays = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for k, v in arrays.items()}
        lengths = {k: len(v) for k, v in self.arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"arrays differ in length: {lengths}")
        self.length = next(iter(lengths.values())) if lengths else 0
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.arrays.items()}

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return {k: v[idx.to(v.device)] for k, v in self.arrays.items()}

    def numpy(self, name: str) -> np.ndarray:
        return self.arrays[name].cpu().numpy()


def dataset_array(dataset: Dataset, name: str) -> np.ndarray | None:
    """The whole array ``name`` of a dataset (``.numpy(name)``), or None if it has none."""
    getter = getattr(dataset, "numpy", None)
    if getter is None:
        return None
    try:
        return np.asarray(getter(name))
    except (KeyError, ValueError):
        return None


class BatchFetcher(Dataset):
    """Indexable by a list of indices: one call fetches a whole batch.

    Uses the dataset's ``batch`` or ``__getitems__`` when it has one (one memory-mapped fancy-index
    per array instead of ``batch_size`` small reads), and adds per-entry tensors the
    engine computed (``sample_weight``) plus the entry ``index``.
    """

    def __init__(self, dataset: Dataset, extra: Mapping[str, torch.Tensor] | None = None) -> None:
        self.dataset = dataset
        self.extra = dict(extra or {})

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        # PreparedDataset.batch: one memory-mapped fetch per shard, already a dict of batched tensors
        fetch = getattr(self.dataset, "batch", None) or getattr(self.dataset, "__getitems__", None)
        batch = fetch(indices) if fetch is not None else [self.dataset[int(i)] for i in indices]
        if not isinstance(batch, Mapping):
            batch = default_collate(batch)
        batch = {k: torch.as_tensor(v) for k, v in batch.items()}
        idx = torch.from_numpy(indices)
        for key, values in self.extra.items():
            batch[key] = values[idx.to(values.device)]
        batch["index"] = idx
        return batch


class EpochBatchSampler:
    """Yields lists of indices: the batches of one epoch for one rank.

    Args:
        n: dataset length.
        shuffle: permute from ``epoch_seed(seed, epoch)``; else in dataset order.
        block: 1 shuffles the entries one by one; ``k > 1`` shuffles blocks of ``k`` consecutive
            entries as units and sorts each batch, so that a batch is read from the shards in
            runs of ``k`` rows (sequential reads from a disk; the batches are less random).
        rank, world_size: DDP slice; with ``pad`` the permutation is padded (wrapping around) to a
            multiple of ``world_size`` so every rank runs the same number of batches (training,
            whose steps are collective); without, each rank takes every ``world_size``-th entry.
        drop_last: drop a final short batch (a batch of one breaks batch norm).
    """

    def __init__(
        self, n: int, batch_size: int, *, seed: int = 0, shuffle: bool = True, block: int = 1, rank: int = 0,
        world_size: int = 1, drop_last: bool = False, pad: bool = True,
    ) -> None:
        if int(block) < 1:
            raise ValueError(f"block must be >= 1, not {block}")
        self.n, self.batch_size, self.seed, self.shuffle = int(n), int(batch_size), int(seed), shuffle
        self.block = int(block)
        self.rank, self.world_size, self.drop_last, self.pad = int(rank), int(world_size), drop_last, pad
        self.epoch = 0
        self.start_batch = 0
        self.generator = torch.Generator()

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start_batch`` batches (resume)."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def _indices(self) -> torch.Tensor:
        if self.shuffle and self.block > 1:
            self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
            blocks = torch.randperm(-(-self.n // self.block), generator=self.generator)
            order = (blocks[:, None] * self.block + torch.arange(self.block)).reshape(-1)
            order = order[order < self.n]
        elif self.shuffle:
            self.generator.manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            pad = self._per_rank() * self.world_size - self.n if self.pad else 0
            order = torch.cat([order, order[:pad]])[self.rank :: self.world_size]
        return order

    def _per_rank(self) -> int:
        if self.pad:
            return -(-self.n // self.world_size)
        return len(range(self.rank, self.n, self.world_size))

    def n_batches(self) -> int:
        per_rank = self._per_rank()
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __len__(self) -> int:
        return max(self.n_batches() - self.start_batch, 0)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self._indices().numpy()
        for b in range(self.start_batch, self.n_batches()):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield np.sort(batch) if self.block > 1 else batch

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": self.start_batch,
                "generator": self.generator.get_state()}


class BatchLoader:
    """The batches of ``sampler`` over ``dataset`` as dicts of tensors, gathered ``prefetch`` ahead in a
    background thread (pinned for an asynchronous copy to a GPU with ``pin_memory``).

    The same batches in the same order as fetching them one by one: only when they are made changes.
    """

    def __init__(self, dataset: Dataset, sampler: EpochBatchSampler, *, prefetch: int = 2, pin_memory: bool = False,
                 extra: Mapping[str, torch.Tensor] | None = None) -> None:
        self.fetch = BatchFetcher(dataset, extra)
        self.sampler, self.prefetch, self.pin_memory = sampler, int(prefetch), pin_memory

    def __len__(self) -> int:
        return len(self.sampler)

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        for indices in self.sampler:
            batch = self.fetch[indices]
            yield {k: v.pin_memory() for k, v in batch.items()} if self.pin_memory else batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.prefetch < 1:
            return self._batches()
        return read_ahead(self._batches(), self.prefetch, name="hepdl-batches")


def make_loader(
    dataset: Dataset, sampler: EpochBatchSampler, *, num_workers: int, pin_memory: bool,
    extra: Mapping[str, torch.Tensor] | None = None, prefetch: int = 2,
) -> BatchLoader | DataLoader:
    """An iterable whose every item is one whole batch dict: gathered in a background thread
    (``num_workers`` 0), or by a DataLoader's worker processes."""
    if num_workers == 0:
        return BatchLoader(dataset, sampler, prefetch=prefetch, pin_memory=pin_memory, extra=extra)
    # the loader's own generator: it draws a worker base seed at every iter(), which must
    # not consume torch's global RNG (dropout), or a mid-epoch resume would diverge
    return DataLoader(
        BatchFetcher(dataset, extra), sampler=sampler, batch_size=None, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=False, generator=torch.Generator().manual_seed(sampler.seed),
    )


def resident_bytes(dataset: Dataset) -> int:
    """Bytes the dataset's arrays take in memory (as the loader delivers them)."""
    probe = BatchFetcher(dataset)[np.arange(min(len(dataset), 1))]
    per_entry = sum(v.element_size() * v[0].numel() for k, v in probe.items() if k != "index" and len(v))
    return per_entry * len(dataset)


def device_resident(dataset: Dataset, device: torch.device) -> ArrayDataset:
    """The whole dataset gathered once and moved to ``device``: batches are then gathered there."""
    whole = BatchFetcher(dataset)[np.arange(len(dataset))]
    whole.pop("index")
    return ArrayDataset({k: v.to(device) for k, v in whole.items()}, meta=getattr(dataset, "meta", None))
