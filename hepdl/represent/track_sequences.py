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
    owner = owner_index(counts)
    cols = {
        "pt_frac": pt / np.where(np.asarray(jet_pt) > 0, np.asarray(jet_pt), 1.0)[owner],
        "deta": flat_content(tracks["trk_eta"], "trk_eta")[0] - np.asarray(jet_eta)[owner],
        "dphi": wrap_phi(flat_content(tracks["trk_phi"], "trk_phi")[0] - np.asarray(jet_phi)[owner]),
    }
    for name in ("d0", "z0", "charge"):
        field = f"trk_{name}"
        cols[name] = flat_content(tracks[field], field)[0] if field in tracks else np.zeros_like(pt)
    key = -pt if sort_by == "pt" else -np.abs(cols["d0"])
    order, rank = rank_within(key, owner, counts)
    keep = rank < length
    src = order[keep]
    dest_jet, dest_pos = owner[src], rank[keep]
    features = np.zeros((n, length, len(TRACK_FEATURES)), dtype=np.float32)
    for j, name in enumerate(TRACK_FEATURES):
        features[dest_jet, dest_pos, j] = cols[name][src]
    mask = np.zeros((n, length), dtype=bool)
    mask[dest_jet, dest_pos] = True
    return features, mask
