"""Neutrino two-view pixel maps (NOvA CVN style) and hand-made event variables.

Each view (0 = XZ, 1 = YZ) reads out every other plane, so a plane's row within its
view is ``plane // 2``. The window starts at the event's first plane with a hit above
threshold and is centred, per view, on the energy-weighted mean cell.
"""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError, InputError
from hepdl.represent.jagged import flat_content, owner_index, rank_within, segment_sum

NEUTRINO_FEATURES_PER_VIEW = ("n_hits", "length_planes", "energy", "hot_fraction", "cell_width")
NEUTRINO_FEATURES = tuple(f"{name}_v{view}" for view in (0, 1) for name in NEUTRINO_FEATURES_PER_VIEW)


def _flat_hits(hits: Mapping[str, ak.Array]):
    for name in ("hit_view", "hit_plane", "hit_cell", "hit_e"):
        if name not in hits:
            raise ConfigError(f"neutrino representations need the field {name!r}")
    view, counts = flat_content(hits["hit_view"], "hit_view")
    plane = flat_content(hits["hit_plane"], "hit_plane")[0].astype(np.int64)
    cell = flat_content(hits["hit_cell"], "hit_cell")[0].astype(np.int64)
    e = flat_content(hits["hit_e"], "hit_e")[0].astype(np.float64)
    view = view.astype(np.int64)
    if view.size and ((view < 0) | (view > 1)).any():
        raise InputError("field 'hit_view' must be 0 (XZ) or 1 (YZ)")
    return view, plane, cell, e, counts


def event_window(
    view: np.ndarray, plane: np.ndarray, cell: np.ndarray, e: np.ndarray, counts: np.ndarray,
    *, cells: int, threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per event: first plane above threshold (N,), and per view the first cell of the window (N, 2)."""
    n = len(counts)
    owner = owner_index(counts)
    above = e > threshold
    big = np.iinfo(np.int64).max
    start = np.full(n, big, dtype=np.int64)
    np.minimum.at(start, owner[above], plane[above])
    start = np.where(start == big, 0, start)
    key = owner * 2 + view
    sw = np.bincount(key, weights=e, minlength=2 * n)
    mean = np.bincount(key, weights=e * cell, minlength=2 * n) / np.where(sw > 0, sw, 1.0)
    first_cell = np.rint(mean).astype(np.int64) - cells // 2
    return start, first_cell.reshape(n, 2)


def pixel_maps(
    hits: Mapping[str, ak.Array],
    *,
    planes: int = 100,
    cells: int = 80,
    threshold: float = 0.0,
) -> np.ndarray:
    """``(N, 2, planes, cells)`` float32 deposited energy per (view, plane // 2, cell) in the window."""
    view, plane, cell, e, counts = _flat_hits(hits)
    n = len(counts)
    owner = owner_index(counts)
    start, first_cell = event_window(view, plane, cell, e, counts, cells=cells, threshold=threshold)
    row = plane // 2 - start[owner] // 2
    col = cell - first_cell[owner, view]
    inside = (row >= 0) & (row < planes) & (col >= 0) & (col < cells)
    flat = ((owner[inside] * 2 + view[inside]) * planes + row[inside]) * cells + col[inside]
    out = np.bincount(flat, weights=e[inside], minlength=n * 2 * planes * cells)
    return out.astype(np.float32).reshape(n, 2, planes, cells)


def neutrino_variables(hits: Mapping[str, ak.Array], *, hot_fraction: float = 0.1) -> np.ndarray:
    """``(N, 10)`` float32 per-view event variables in the order of :data:`NEUTRINO_FEATURES`.

    Per view: number of hits, length in planes (last - first + 1), total energy, fraction
    of the view's energy in its hottest ``hot_fraction`` of hits (at least one hit: a
    track spreads energy evenly, an EM shower concentrates it), energy-weighted RMS of the cell.
    """
    view, plane, cell, e, counts = _flat_hits(hits)
    n = len(counts)
    owner = owner_index(counts)
    key = owner * 2 + view
    size = 2 * n
    n_hits = np.bincount(key, minlength=size).astype(np.float64)
    big = np.iinfo(np.int64).max
    first = np.full(size, big, dtype=np.int64)
    last = np.full(size, -1, dtype=np.int64)
    np.minimum.at(first, key, plane)
    np.maximum.at(last, key, plane)
    length = np.where(n_hits > 0, last - first + 1, 0).astype(np.float64)
    energy = np.bincount(key, weights=e, minlength=size)
    safe = np.where(energy > 0, energy, 1.0)
    mean = np.bincount(key, weights=e * cell, minlength=size) / safe
    var = np.bincount(key, weights=e * cell * cell, minlength=size) / safe - mean**2
    width = np.sqrt(np.maximum(var, 0.0))
    key_counts = n_hits.astype(np.int64)
    order, rank = rank_within(-e, key, key_counts)
    n_hot = np.maximum(np.ceil(hot_fraction * n_hits), 1)
    hot = rank < n_hot[key[order]]
    hot_e = np.bincount(key[order][hot], weights=e[order][hot], minlength=size)
    hot_frac = np.where(energy > 0, hot_e / safe, 0.0)
    per_view = np.stack([n_hits, length, energy, hot_frac, width], axis=-1).reshape(n, 2, -1)
    return per_view.reshape(n, -1).astype(np.float32)

