"""Track sequences: sorting, padding, truncation, mask, features relative to the jet."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepdl.errors import ConfigError, InputError
from hepdl.represent.track_sequences import TRACK_FEATURES, track_sequences


def tracks():
    return {
        "trk_pt": ak.Array([[5.0, 20.0, 1.0], [], [3.0, 2.0, 9.0, 4.0, 7.0]]),
        "trk_eta": ak.Array([[0.1, 0.2, 0.3], [], [1.0, 1.1, 1.2, 1.3, 1.4]]),
        "trk_phi": ak.Array([[3.1, -3.1, 3.0], [], [0.0, 0.1, 0.2, 0.3, 0.4]]),
        "trk_d0": ak.Array([[0.01, -0.5, 0.2], [], [0.0, 0.3, -0.1, 0.05, 0.02]]),
        "trk_z0": ak.Array([[1.0, 2.0, 3.0], [], [4.0, 5.0, 6.0, 7.0, 8.0]]),
        "trk_charge": ak.Array([[1, -1, 1], [], [-1, 1, 1, -1, 1]]),
    }


def test_sorted_padded_truncated_with_mask():
    jet_pt, jet_eta, jet_phi = np.array([100.0, 50.0, 40.0]), np.array([0.0, 0.0, 1.0]), np.array([3.1, 0.0, 0.0])
    feats, mask = track_sequences(tracks(), jet_pt, jet_eta, jet_phi, length=4)
    assert feats.shape == (3, 4, len(TRACK_FEATURES)) and feats.dtype == np.float32 and mask.dtype == bool
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    col = {name: feats[..., i] for i, name in enumerate(TRACK_FEATURES)}
    np.testing.assert_allclose(col["pt_frac"][0], [0.2, 0.05, 0.01, 0.0], rtol=1e-6)
    np.testing.assert_allclose(col["pt_frac"][2], np.array([9.0, 7.0, 4.0, 3.0]) / 40, rtol=1e-6)  # pT 2 dropped
    np.testing.assert_allclose(col["charge"][0], [-1, 1, 1, 0])
    np.testing.assert_allclose(col["z0"][2], [6, 8, 7, 4])
    # dphi is wrapped: a track at phi=-3.1 next to a jet at 3.1 is 0.083 away, not 6.2.
    np.testing.assert_allclose(col["dphi"][0, 0], 2 * np.pi - 6.2, atol=1e-6)
    np.testing.assert_allclose(col["deta"][2, :2], [0.2, 0.4], atol=1e-6)
    assert (feats[~mask] == 0).all()


def test_sort_by_abs_d0_and_missing_optional_fields():
    t = tracks()
    feats, _ = track_sequences(t, np.ones(3), np.zeros(3), np.zeros(3), length=5, sort_by="abs_d0")
    d0 = feats[..., TRACK_FEATURES.index("d0")]
    np.testing.assert_allclose(d0[2], [0.3, -0.1, 0.05, 0.02, 0.0], atol=1e-7)
    minimal = {k: t[k] for k in ("trk_pt", "trk_eta", "trk_phi")}
    feats, mask = track_sequences(minimal, np.ones(3), np.zeros(3), np.zeros(3), length=2)
    assert mask.sum() == 4 and (feats[..., 3:] == 0).all()


def test_bad_input():
    with pytest.raises(ConfigError, match="sort_by"):
        track_sequences(tracks(), np.ones(3), np.zeros(3), np.zeros(3), sort_by="eta")
    with pytest.raises(ConfigError, match="trk_phi"):
        track_sequences({"trk_pt": tracks()["trk_pt"], "trk_eta": tracks()["trk_eta"]}, np.ones(3), np.zeros(3), np.zeros(3))
    with pytest.raises(InputError, match="trk_pt"):
        track_sequences({**tracks(), "trk_pt": ak.Array([1.0, 2.0, 3.0])}, np.ones(3), np.zeros(3), np.zeros(3))
