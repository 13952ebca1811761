"""Neutrino two-view pixel maps (NOvA CVN style) and hand-made event variables.

Each view (0 = XZ, 1 = YZ) reads out every other plane, so a plane's row within its
view is ``plane // 2``. The window starts at the event's first active plane above
threshold (noise hits aside) and is centred, per view, on the energy-weighted median cell.
"""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError, InputError
from hepdl.represent.jagged import flat_content, owner_index, rank_within

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
    *, planes: int, cells: int, threshold: float, min_hits: int = 3, span: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Per event: the first plane of the window (N,), and per view the window's first cell (N, 2).

    The event starts at the first plane above ``threshold`` that opens a run of activity,
    at least ``min_hits`` hits within ``span`` consecutive planes: isolated noise hits,
    scattered over the whole detector, must not pull the window upstream of the vertex.
    The cell window is centred on the energy-weighted median cell of the view's hits
    inside the plane window (a median, so that stray noise hits do not shift it).
    """
    n = len(counts)
    owner = owner_index(counts)
    sel = e > threshold
    n_planes = int(plane.max()) + span + 1 if plane.size else span + 1
    occupancy = np.bincount(owner[sel] * n_planes + plane[sel], minlength=n * n_planes).reshape(n, n_planes)
    cum = np.zeros((n, n_planes + 1), dtype=np.int64)
    np.cumsum(occupancy, axis=1, out=cum[:, 1:])
    in_span = cum[:, span:] - cum[:, :-span]  # hits in planes [p, p + span)
    opens = (in_span >= min_hits) & (occupancy[:, : n_planes - span + 1] > 0)
    first_any = np.argmax(occupancy > 0, axis=1)  # fallback for events without a run of activity
    start = np.where(opens.any(axis=1), np.argmax(opens, axis=1), first_any).astype(np.int64)

    in_win = sel & (plane >= start[owner]) & (plane < start[owner] + 2 * planes)
    key = (owner * 2 + view)[in_win]
    order = np.lexsort((cell[in_win], key))
    ew = e[in_win][order]
    cs = np.cumsum(ew)
    totals = np.bincount(key, weights=e[in_win], minlength=2 * n)
    before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    pos = np.searchsorted(cs, before + 0.5 * totals, side="left")
    has = totals > 0
    median = np.full(2 * n, N_CELLS_FALLBACK, dtype=np.int64)
    median[has] = cell[in_win][order][np.minimum(pos[has], max(cs.size - 1, 0))]
    first_cell = median - cells // 2
    return start, first_cell.reshape(n, 2)


#: Window centre for a view without any hit in the window: nothing to centre on, so any
#: value gives an empty map; 0 keeps it defined.
N_CELLS_FALLBACK = 0


def _windowed_hits(hits: Mapping[str, ak.Array], planes: int, cells: int, threshold: float):
    """The flat hits, the events' count and each hit's event, its (row, column) in its event's
    window and whether it falls inside."""
    view, plane, cell, e, counts = _flat_hits(hits)
    owner = owner_index(counts)
    start, first_cell = event_window(view, plane, cell, e, counts, planes=planes, cells=cells, threshold=threshold)
    row = plane // 2 - start[owner] // 2
    col = cell - first_cell[owner, view]
    inside = (row >= 0) & (row < planes) & (col >= 0) & (col < cells)
    return view, plane, cell, e, len(counts), owner, row, col, inside


def pixel_maps(
    hits: Mapping[str, ak.Array],
    *,
    planes: int = 100,
    cells: int = 80,
    threshold: float = 0.0,
) -> np.ndarray:
    """``(N, 2, planes, cells)`` float32 deposited energy per (view, plane // 2, cell) in the window."""
    view, plane, cell, e, n, owner, row, col, inside = _windowed_hits(hits, planes, cells, threshold)
    flat = ((owner[inside] * 2 + view[inside]) * planes + row[inside]) * cells + col[inside]
    out = np.bincount(flat, weights=e[inside], minlength=n * 2 * planes * cells)
    return out.astype(np.float32).reshape(n, 2, planes, cells)


def neutrino_variables(
    hits: Mapping[str, ak.Array],
    *,
    planes: int = 100,
    cells: int = 80,
    threshold: float = 0.0,
    hot_fraction: float = 0.1,
) -> np.ndarray:
    """``(N, 10)`` float32 per-view event variables in the order of :data:`NEUTRINO_FEATURES`.

    Computed from the hits inside the pixel-map window (same ``planes``, ``cells``,
    ``threshold``), so that detector noise far from the event does not count. Per view:
    number of hits, length in planes (last - first + 1), total energy, fraction of the
    view's energy in its hottest ``hot_fraction`` of hits (at least one hit: a track
    spreads energy evenly, an EM shower concentrates it), energy-weighted RMS of the cell.
    """
    view, plane, cell, e, n, owner, _, _, inside = _windowed_hits(hits, planes, cells, threshold)
    inside &= e > threshold
    view, plane, cell, e, owner = view[inside], plane[inside], cell[inside], e[inside], owner[inside]
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

