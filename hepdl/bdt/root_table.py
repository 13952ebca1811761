"""The BDT on per-jet ROOT branches: a jets file's flat branches (``hepdl jets-from-events``
output, e.g. ``jet_tau1``, ``jet_msoftdrop``) as the feature table, without a prepared shard.

The prepared-shard path (``hepdl prepare`` + ``hepdl bdt``) computes expert variables from
constituents; a NanoAOD file already carries the jet-level variables, so this path reads them as
they are, streamed chunk by chunk (a table of a few floats per jet is what stays in memory), and
splits entries with the same seeded split as prepare (:func:`hepdl.represent.split.assign_split`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from hepdl.bdt.boosted_trees import BDTSettings, predict_bdt, train_bdt
from hepdl.errors import InputError
from hepdl.io import iterate_events
from hepdl.io.read import DEFAULT_STEP_SIZE
from hepdl.represent.split import DEFAULT_FRACTIONS, SPLITS, assign_split


def root_feature_table(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    tree: str,
    features: Sequence[str],
    *,
    label: str = "label",
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    step_size: int | str = DEFAULT_STEP_SIZE,
) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {"x": (N, F) float32, "label": (N,) int64}}`` from flat per-jet branches."""
    if not features:
        raise InputError(f"tree {tree!r}: no feature branches given")
    parts: dict[str, dict[str, list]] = {s: {"x": [], "label": []} for s in SPLITS}
    for chunk, source in iterate_events(paths, tree, [*features, label], step_size=step_size, with_source=True):
        x = np.stack([np.asarray(chunk[f], dtype=np.float32) for f in features], axis=1)
        if x.ndim != 2:
            raise InputError(f"{source.path}, tree {tree!r}: feature branches must hold one value per entry")
        y = np.asarray(chunk[label], dtype=np.int64)
        code = assign_split(os.path.basename(source.path), np.arange(source.entry_start, source.entry_stop),
                            seed, fractions)
        for i, name in enumerate(SPLITS):
            parts[name]["x"].append(x[code == i])
            parts[name]["label"].append(y[code == i])
    return {s: {k: np.concatenate(v) for k, v in p.items()} for s, p in parts.items()}


def train_bdt_on_root(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    tree: str,
    features: Sequence[str],
    *,
    label: str = "label",
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    settings: BDTSettings = BDTSettings(),  # noqa: B008 - frozen dataclass
) -> tuple[object, dict[str, dict[str, np.ndarray]]]:
    """Train on the train split (early stopping on validation) and score every split.

    Returns the booster and ``{split: {"x", "label", "score"}}``.
    """
    table = root_feature_table(paths, tree, features, label=label, seed=seed, fractions=fractions)
    booster = train_bdt(table["train"]["x"], table["train"]["label"], table["validation"]["x"],
                        table["validation"]["label"], feature_names=list(features), settings=settings, seed=seed)
    for part in table.values():
        part["score"] = predict_bdt(booster, part["x"], list(features))
    return booster, table
