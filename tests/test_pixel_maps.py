"""Neutrino pixel maps: window alignment, view/plane mapping, energy inside the window, event variables."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepdl.errors import ConfigError, InputError
from hepdl.represent.pixel_maps import NEUTRINO_FEATURES, neutrino_variables, pixel_maps


def event_hits(rng):
    """A muon-like track from plane 41 (view of plane parity), a shower from plane 120, plus noise hits."""
    track_planes = np.arange(41, 101)
    track = {"plane": track_planes, "cell": 60 + (track_planes - 41) // 6, "e": np.full(track_planes.size, 2.0)}
    sp = np.repeat(np.arange(120, 140), 5)
    shower = {"plane": sp, "cell": 150 + np.tile(np.arange(-2, 3), 20), "e": rng.uniform(5, 20, sp.size)}
    noise = {"plane": np.array([3, 300, 350]), "cell": np.array([10, 250, 5]), "e": np.array([3.0, 4.0, 2.0])}
    events = []
    for parts in ([track, noise], [shower, noise]):
        plane = np.concatenate([p["plane"] for p in parts])
        events.append({
            "hit_view": plane % 2, "hit_plane": plane,
            "hit_cell": np.concatenate([p["cell"] for p in parts]),
            "hit_e": np.concatenate([p["e"] for p in parts]),
        })
    return {k: ak.Array([ev[k] for ev in events]) for k in events[0]}


def test_window_starts_at_event_and_keeps_its_energy():
    hits = event_hits(np.random.default_rng(1))
    pm = pixel_maps(hits, planes=100, cells=80)
    assert pm.shape == (2, 2, 100, 80) and pm.dtype == np.float32
    # Noise at plane 3 does not move the start: the track's first plane (41, view 1) is row 0.
    assert pm[0, 1, 0].sum() == 2.0 and pm[0, 0, 0].sum() == 0.0
    assert pm[0, 0, 1].sum() == 2.0  # plane 42 is in view 0, row 42 // 2 - 40 // 2 = 1
    # Everything but the noise lies inside the window.
    np.testing.assert_allclose(pm[0].sum(), 2.0 * 60, rtol=1e-6)
    shower_e = ak.to_numpy(hits["hit_e"][1])[:-3].sum()
    np.testing.assert_allclose(pm[1].sum(), shower_e, rtol=1e-5)
    # The cell window is centred on the shower: its core sits in the middle columns.
    assert pm[1, :, :, 38:43].sum() == pytest.approx(shower_e, rel=1e-5)
    # Row 0 of the shower event holds its first planes (120 in view 0, 121 in view 1).
    assert pm[1, 0, 0].sum() > 0 and pm[1, 1, 0].sum() > 0 and pm[1, :, 10:].sum() == 0


def test_smaller_window_drops_exactly_the_hits_outside():
    hits = event_hits(np.random.default_rng(2))
    pm = pixel_maps(hits, planes=10, cells=80)
    # Rows are plane // 2 - start // 2: 10 rows from start 41 hold planes 40..59, i.e. 41..59 here.
    np.testing.assert_allclose(pm[0].sum(), 2.0 * 19, rtol=1e-6)


def test_event_variables():
    hits = event_hits(np.random.default_rng(3))
    ex = neutrino_variables(hits)
    assert ex.shape == (2, len(NEUTRINO_FEATURES)) and ex.dtype == np.float32
    col = {name: ex[:, i] for i, name in enumerate(NEUTRINO_FEATURES)}
    np.testing.assert_allclose(col["n_hits_v0"] + col["n_hits_v1"], [60, 100])
    np.testing.assert_allclose(col["length_planes_v1"][0], 100 - 41 + 1 - 1)  # odd planes 41..99
    np.testing.assert_allclose(col["energy_v0"][0] + col["energy_v1"][0], 120.0, rtol=1e-6)
    # A uniform track puts 10% of its energy in its hottest 10% of hits; a shower more.
    np.testing.assert_allclose(col["hot_fraction_v0"][0], 0.1, atol=0.01)
    assert col["hot_fraction_v0"][1] > 0.12
    assert col["cell_width_v0"][1] == pytest.approx(np.sqrt(2.0), rel=0.2)


def test_bad_input():
    hits = event_hits(np.random.default_rng(4))
    with pytest.raises(ConfigError, match="hit_e"):
        pixel_maps({k: v for k, v in hits.items() if k != "hit_e"})
    with pytest.raises(InputError, match="hit_view"):
        pixel_maps({**hits, "hit_view": hits["hit_view"] + 2})


def test_representation_builds_only_the_arrays_asked_for():
    from hepdl.represent import representation, resolve_spec

    hits = ak.zip(event_hits(np.random.default_rng(5)), depth_limit=1)
    spec = resolve_spec("neutrino")
    full = representation(hits, spec)
    assert list(full) == ["pixel_maps", "expert", "label", "weight"]
    maps = representation(hits, spec, only=["pixel_maps"])
    assert list(maps) == ["pixel_maps"]
    np.testing.assert_array_equal(maps["pixel_maps"], full["pixel_maps"])
    expert = representation(hits, spec, only=["expert", "label"])
    assert list(expert) == ["expert", "label"]
    np.testing.assert_array_equal(expert["expert"], full["expert"])
