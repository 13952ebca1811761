"""Track sequences: each jet's tracks sorted, padded/truncated to a fixed length, with a mask."""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError
from hepdl.represent.jagged import flat_content, owner_index, rank_within, wrap_phi

TRACK_FEATURES = ("pt_frac", "deta", "dphi", "d0", "z0", "charge")
SORT_KEYS = ("pt", "abs_d0")


def track_sequences(
    tracks: Mapping[str, ak.Array],
    jet_pt: np.ndarray,
    jet_eta: np.ndarray,
    jet_phi: np.ndarray,
    *,
    length: int = 30,
    sort_by: str = "pt",
) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, length, 6) float32, mask (N, length) bool)`` from jagged track fields.

    ``tracks`` maps ``trk_pt``, ``trk_eta``, ``trk_phi`` (required) and ``trk_d0``,
    ``trk_z0``, ``trk_charge`` (optional: zeros when absent) to jagged arrays. Tracks are
    ordered by decreasing pT (or |d0|, ``sort_by="abs_d0"``); features are
    ``TRACK_FEATURES``: pT / jet pT, eta and wrapped phi offsets from the jet axis, d0, z0,
    charge. Padding rows are zero with mask False.
    """
    if sort_by not in SORT_KEYS:
        raise ConfigError(f"track sort_by must be one of {SORT_KEYS}, not {sort_by!r}")
    if length < 1:
        raise ConfigError(f"track length must be >= 1, not {length}")
    for name in ("trk_pt", "trk_eta", "trk_phi"):
        if name not in tracks:
            raise ConfigError(f"track sequences need the field {name!r}")
    pt, counts = flat_content(tracks["trk_pt"], "trk_pt")
    n = len(counts)
    flat = {"pt": pt, "eta": flat_content(tracks["trk_eta"], "trk_eta")[0], "phi": flat_content(tracks["trk_phi"], "trk_phi")[0]}
    for name in ("d0", "z0", "charge"):
        field = f"trk_{name}"
        flat[name] = flat_content(tracks[field], field)[0] if field in tracks else None
    if sort_by == "pt":
        key = -pt
    else:
        key = -np.abs(flat["d0"]) if flat["d0"] is not None else np.zeros_like(pt)
    order, rank = rank_within(key, owner_index(counts), counts)
    # ``order`` runs jet by jet, so the kept tracks fill each jet's first min(count, length)
    # rows: one flat destination index, and features computed for kept tracks only.
    keep = rank < length
    src = order[keep]
    kept = np.minimum(counts, length)
    dest = np.repeat(np.arange(n, dtype=np.int64) * length, kept) + rank[keep]

    def per_track(per_jet) -> np.ndarray:
        return np.repeat(np.asarray(per_jet), kept)

    jet_pt = np.asarray(jet_pt)
    block = np.zeros((src.size, len(TRACK_FEATURES)), dtype=np.float32)
    block[:, 0] = flat["pt"][src] / per_track(np.where(jet_pt > 0, jet_pt, 1.0))
    block[:, 1] = flat["eta"][src] - per_track(jet_eta)
    block[:, 2] = wrap_phi(flat["phi"][src] - per_track(jet_phi))
    for j, name in enumerate(("d0", "z0", "charge"), start=3):
        if flat[name] is not None:
            block[:, j] = flat[name][src]
    features = np.zeros((n, length, len(TRACK_FEATURES)), dtype=np.float32)
    features.reshape(n * length, len(TRACK_FEATURES))[dest] = block
    mask = np.zeros((n, length), dtype=bool)
    mask.reshape(-1)[dest] = True
    return features, mask
