"""The neutrino toy generator: file layout, detector bounds, physics shapes, determinism, variants."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepdl.errors import ConfigError
from hepdl.generate import generate_neutrino
from hepdl.generate import neutrino_detector as det
from hepdl.io import read_events

FIELDS = ["hit_view", "hit_plane", "hit_cell", "hit_e", "label", "nu_energy", "weight", "event_id"]
N_EVENTS = 800
FRACTIONS = {"numu_cc": 0.5, "nue_cc": 0.2, "nc": 0.3}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The same seed through the sim and the data detector: same interactions, two responses."""
    out = {}
    for variant in ("sim", "data"):
        path = tmp_path_factory.mktemp("nu") / f"{variant}.root"
        summary = generate_neutrino(
            path,
            variant=variant,
            n_events=N_EVENTS,
            seed=11,
            class_fractions=FRACTIONS,
            progress=False,
        )
        out[variant] = (summary, read_events(path, "events", FIELDS))
    return out


def _plane_extent(events: ak.Array) -> np.ndarray:
    """10 %-90 % quantile range of hit planes per event: robust against isolated noise hits."""
    planes = ak.sort(events.hit_plane, axis=1)
    n = ak.num(planes)
    lo = ak.to_numpy(planes[ak.local_index(planes) == (n // 10)][:, 0])
    hi = ak.to_numpy(planes[ak.local_index(planes) == (9 * n // 10)][:, 0])
    return hi - lo


def _median_plane(events: ak.Array) -> np.ndarray:
    planes = ak.sort(events.hit_plane, axis=1)
    return ak.to_numpy(planes[ak.local_index(planes) == ak.num(planes) // 2][:, 0])


def test_reads_back_with_logical_names(samples):
    summary, events = samples["sim"]
    assert len(events) == N_EVENTS == summary["n_events"]
    assert str(ak.type(events.hit_view)).endswith("var * int8")
    for name in ("hit_plane", "hit_cell"):
        assert str(ak.type(events[name])).endswith("var * int32")
    assert str(ak.type(events.hit_e)).endswith("var * float32")
    np.testing.assert_array_equal(ak.to_numpy(events.event_id), np.arange(N_EVENTS))
    assert np.all(ak.to_numpy(events.weight) == 1.0)
    assert summary["counts"] == {
        name: int(np.sum(ak.to_numpy(events.label) == i)) for i, name in enumerate(FRACTIONS)
    }
    assert summary["events_per_second"] > 0


def test_hits_inside_detector_and_both_views(samples):
    _, events = samples["sim"]
    plane, cell = ak.flatten(events.hit_plane), ak.flatten(events.hit_cell)
    assert ak.all((plane >= 0) & (plane < det.N_PLANES))
    assert ak.all((cell >= 0) & (cell < det.N_CELLS))
    # Even planes are the XZ view, odd planes the YZ view.
    assert ak.all(ak.flatten(events.hit_view) == plane % 2)
    e = ak.flatten(events.hit_e)
    assert ak.all(np.isfinite(e)) and ak.all(e > 0)
    both = ak.any(events.hit_view == 0, axis=1) & ak.any(events.hit_view == 1, axis=1)
    assert ak.mean(both) > 0.97
    # One hit per (plane, cell) and event: deposits are merged per cell.
    key = events.hit_plane * det.N_CELLS + events.hit_cell
    assert ak.all(ak.num(key) == ak.num(ak.run_lengths(ak.sort(key, axis=1)), axis=1))


def test_numu_tracks_longer_than_nue_showers(samples):
    _, events = samples["sim"]
    extent = _plane_extent(events)
    label = ak.to_numpy(events.label)
    numu, nue = np.median(extent[label == 0]), np.median(extent[label == 1])
    assert numu > 1.3 * nue, (numu, nue)


def test_class_fractions_as_configured(samples):
    _, events = samples["sim"]
    label = ak.to_numpy(events.label)
    for i, f in enumerate(FRACTIONS.values()):
        sigma = np.sqrt(N_EVENTS * f * (1 - f))
        assert abs(np.sum(label == i) - N_EVENTS * f) < 4 * sigma
    assert set(np.unique(label)) == {0, 1, 2}


def test_deposited_energy_follows_neutrino_energy(samples):
    _, events = samples["sim"]
    total = ak.to_numpy(ak.sum(events.hit_e, axis=1))
    e_nu = ak.to_numpy(events.nu_energy)
    label = ak.to_numpy(events.label)
    assert np.corrcoef(total, e_nu)[0, 1] > 0.5
    for cc in (0, 1):  # CC events see the lepton: tight correlation
        assert np.corrcoef(total[label == cc], e_nu[label == cc])[0, 1] > 0.8
    # NC events see only the hadronic system, y * E: less energy per GeV than CC.
    assert np.median(total[label == 2] / e_nu[label == 2]) < 0.6 * np.median(
        total[label == 1] / e_nu[label == 1]
    )
    assert 0.5 < np.median(e_nu) < 4.0


def test_same_seed_same_events_other_seed_differs(tmp_path, samples):
    kw = {"n_events": 150, "class_fractions": FRACTIONS, "progress": False}
    generate_neutrino(tmp_path / "a.root", seed=3, **kw)
    generate_neutrino(tmp_path / "b.root", seed=3, **kw)
    generate_neutrino(tmp_path / "c.root", seed=4, **kw)
    a, b, c = (read_events(tmp_path / f"{x}.root", "events", FIELDS) for x in "abc")
    for name in FIELDS:
        assert ak.all(ak.flatten(a[name], axis=None) == ak.flatten(b[name], axis=None)), name
    assert not np.array_equal(ak.to_numpy(a.nu_energy), ak.to_numpy(c.nu_energy))
    assert ak.sum(ak.num(a.hit_e)) != ak.sum(ak.num(c.hit_e))


def test_data_variant_shifts_response_not_physics(samples):
    s_sum, sim = samples["sim"]
    d_sum, data = samples["data"]
    # Same seed: the interactions are the same, only the detector differs.
    np.testing.assert_array_equal(ak.to_numpy(sim.label), ak.to_numpy(data.label))
    np.testing.assert_array_equal(ak.to_numpy(sim.nu_energy), ak.to_numpy(data.nu_energy))
    assert d_sum["response"]["energy_scale"] != s_sum["response"]["energy_scale"]

    # Noise: hits far from the event (in planes) are noise; the data detector has twice the rate.
    far_sim = ak.sum(abs(sim.hit_plane - _median_plane(sim)) > 150, axis=1)
    far_data = ak.sum(abs(data.hit_plane - _median_plane(data)) > 150, axis=1)
    assert ak.mean(far_data) > 1.5 * ak.mean(far_sim)

    # Energy of the event itself (near the event, bright hits): lower scale in data,
    # measured event by event on the same interactions.
    def core_energy(ev):
        near = (abs(ev.hit_plane - _median_plane(ev)) < 60) & (ev.hit_e > 5)
        return ak.to_numpy(ak.sum(ev.hit_e[near], axis=1))

    ratio = core_energy(data).sum() / core_energy(sim).sum()
    assert 0.9 < ratio < 0.98, ratio


def test_nutau_class_and_default_fractions(tmp_path):
    summary = generate_neutrino(
        tmp_path / "tau.root", n_events=400, seed=2, include_nutau=True, progress=False
    )
    assert summary["class_fractions"] == {
        "numu_cc": 0.25,
        "nue_cc": 0.25,
        "nc": 0.25,
        "nutau_cc": 0.25,
    }
    events = read_events(tmp_path / "tau.root", "events", ["label", "nu_energy", "hit_e"])
    label = ak.to_numpy(events.label)
    assert set(np.unique(label)) == {0, 1, 2, 3}
    assert np.all(ak.to_numpy(events.nu_energy)[label == 3] > 3.5)  # tau production threshold
    assert sum(summary["counts"].values()) == 400


def test_chunks_stream_into_one_tree(tmp_path):
    summary = generate_neutrino(
        tmp_path / "c.root", n_events=250, seed=1, chunk_size=100, progress=False
    )
    events = read_events(tmp_path / "c.root", "events", ["event_id", "hit_e"])
    np.testing.assert_array_equal(ak.to_numpy(events.event_id), np.arange(250))
    assert summary["mean_hits_per_event"] == pytest.approx(ak.mean(ak.num(events.hit_e)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_fractions": {"nutau_cc": 0.3, "nc": 0.7}}, "nutau_cc"),
        ({"class_fractions": {"numu": 1.0}}, "class_fractions"),
        ({"class_fractions": {"nc": -1.0, "nue_cc": 2.0}}, "non-negative"),
        ({"n_events": 0}, "n_events"),
        ({"variant": "mc"}, "variant"),
    ],
)
def test_bad_settings_raise_and_write_nothing(tmp_path, kwargs, match):
    settings = {"n_events": 10, "seed": 1, "progress": False, **kwargs}
    with pytest.raises(ConfigError, match=match):
        generate_neutrino(tmp_path / "bad.root", **settings)
    assert list(tmp_path.iterdir()) == []


def test_cli_generate_neutrino(tmp_path, capsys):
    from hepdl.cli import main

    out = tmp_path / "cli.root"
    rc = main(
        [
            "generate",
            "neutrino",
            "--n-events",
            "60",
            "--seed",
            "7",
            "--variant",
            "data",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    assert '"variant": "data"' in capsys.readouterr().out
    assert len(read_events(out, "events", ["label"])) == 60


@pytest.mark.parametrize("variant", ["sim", "data"])
def test_attenuation_along_the_cell(variant):
    """The same deposit near and far from the readout: sim calibrates it away, data is dimmer far away."""
    n = 4000
    rng = np.random.default_rng(0)
    x = np.full(n, 100.5 * det.CELL_WIDTH_CM)
    near = np.arange(n) % 2 == 0
    y = np.where(near, det.WIDTH_CM - 50.0, 50.0)  # view-0 cells are read out at the top
    z = np.full(n, 10.5 * det.PLANE_PITCH_CM)
    response = det.RESPONSES[variant]
    quiet = det.DetectorResponse(**{**response.as_dict(), "noise_hits_per_event": 0.0})
    hits = det.digitise(np.arange(n), x, y, z, np.full(n, 30.0), n, quiet, rng)
    assert np.all(hits["counts"] == 1) and np.all(hits["view"] == 0) and np.all(hits["cell"] == 100)
    e_near, e_far = hits["e"][near].mean(), hits["e"][~near].mean()
    if variant == "sim":
        assert e_near == pytest.approx(30.0, rel=0.02) and e_far == pytest.approx(30.0, rel=0.02)
    else:
        expected = np.exp(-900.0 * (1 / 550.0 - 1 / 700.0))
        assert e_far / e_near == pytest.approx(expected, rel=0.03)
        assert 0.5 * (e_near + e_far) < 0.97 * 30.0
