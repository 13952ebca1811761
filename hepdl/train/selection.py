"""Which entries a run sees: by class (anomaly mode), seeded subsets (label-efficiency studies).

``select_training_entries`` applies the ``train_classes``, ``max_train_entries`` and ``min_steps``
settings to a training dataset, ``select_validation_entries`` the ``max_validation_entries``
setting to a validation dataset; each returns a :class:`SubsetDataset` view (no copy of the
arrays), or the dataset itself when nothing is set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from hepdl.errors import HepdlError
from hepdl.train.data import BatchFetcher, dataset_array
from hepdl.train.settings import TrainSettings

#: mixed into the run seed for the subset draw, so it does not coincide with the shuffling stream
_SUBSET_STREAM = 0x5B5E7
#: mixed into the run seed for the validation subset: independent of the training subset's stream
_VALIDATION_STREAM = 0x7A11D


class SubsetDataset(Dataset):
    """Entries ``indices`` of ``dataset``, in that order; keeps ``batch``, ``numpy`` and ``meta``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.meta = getattr(dataset, "meta", {})
        self._fetch = BatchFetcher(dataset)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset[int(self.indices[i])]

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        out = self._fetch[self.indices[np.asarray(indices, dtype=np.int64)].tolist()]
        out.pop("index", None)  # the parent's index; the engine adds this dataset's own
        return out

    def numpy(self, name: str) -> np.ndarray:
        whole = dataset_array(self.dataset, name)
        if whole is None:
            raise KeyError(name)
        return whole[self.indices]


def training_indices(label: np.ndarray, settings: TrainSettings) -> np.ndarray | None:
    """Indices of the training entries to keep (sorted), or None to keep all.

    ``train_classes`` keeps entries whose label is listed; ``max_train_entries`` then draws that
    many without replacement from ``(seed, _SUBSET_STREAM)``, so the same settings pick the same jets.
    """
    if settings.train_classes is None and settings.max_train_entries is None:
        return None
    label = np.asarray(label)
    keep = np.arange(len(label))
    if settings.train_classes is not None:
        keep = np.flatnonzero(np.isin(label, settings.train_classes))
        if keep.size == 0:
            raise HepdlError(f"train_classes: no training entries have a label in {settings.train_classes} "
                             f"(labels present: {sorted(np.unique(label).tolist())})")
    if settings.max_train_entries is not None and settings.max_train_entries < keep.size:
        rng = np.random.default_rng([int(settings.seed), _SUBSET_STREAM])
        keep = np.sort(rng.choice(keep, size=settings.max_train_entries, replace=False))
    return keep


def select_training_entries(dataset: Dataset, settings: TrainSettings) -> Dataset:
    """The training dataset restricted by ``train_classes`` / ``max_train_entries``, repeated to
    ``min_steps`` (a view)."""
    if settings.train_classes is not None or settings.max_train_entries is not None:
        label = dataset_array(dataset, "label")
        if label is None:
            raise HepdlError("train_classes/max_train_entries: the training dataset has no 'label' array")
        keep = training_indices(label, settings)
        if keep is not None and len(keep) != len(dataset):
            dataset = SubsetDataset(dataset, keep)
    return repeat_to_steps(dataset, settings.batch_size, settings.epochs, settings.min_steps)


def repeat_to_steps(train_set: Dataset, batch_size: int, epochs: int, min_steps: int) -> Dataset:
    """``train_set`` repeated so that ``epochs`` epochs take at least ``min_steps`` optimiser steps.

    A 50-jet set gives one step per epoch: reaching the steps by more epochs would validate (and
    checkpoint) on the large validation split after every step; repeating the entries within an
    epoch gives the same optimisation at a tenth of the cost.
    """
    need = -(-min_steps * batch_size // epochs)
    if len(train_set) == 0 or len(train_set) >= need:
        return train_set
    if isinstance(train_set, SubsetDataset):
        parent, indices = train_set.dataset, train_set.indices
    else:
        parent, indices = train_set, np.arange(len(train_set))
    return SubsetDataset(parent, np.tile(indices, -(-need // len(indices))))


def select_validation_entries(dataset: Dataset, settings: TrainSettings) -> Dataset:
    """``max_validation_entries`` of the validation split, drawn from the run's seed (all of it when smaller).

    A run on a few hundred labelled jets should select its best epoch on no more labelled jets
    than it trained on: an analysis with 50 labels has no other 1000 to validate with, and a large
    validation set flatters small-label results (Oliver et al. 2018, "Realistic evaluation of
    deep semi-supervised learning algorithms").
    """
    size = settings.max_validation_entries
    if size is None or size >= len(dataset):
        return dataset
    rng = np.random.default_rng([int(settings.seed), _VALIDATION_STREAM])
    return SubsetDataset(dataset, np.sort(rng.choice(len(dataset), size=size, replace=False)))
