"""Tests of the Pythia 8 + FastJet jet generator (small shared samples, ~30 s in total)."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

import hepdl  # noqa: E402
from hepdl.errors import ConfigError, HepdlError  # noqa: E402
from hepdl.generate.jet_detector import SIM, delta_phi  # noqa: E402
from hepdl.generate.jets import generate_jets, make_pythia, process_settings  # noqa: E402

FIELDS = [
    "calo_eta", "calo_phi", "calo_e",
    "trk_pt", "trk_eta", "trk_phi", "trk_d0", "trk_z0", "trk_charge",
    "jet_pt", "jet_eta", "jet_phi", "jet_mass", "label", "weight", "event_id",
]  # fmt: skip
N_SIM, N_DATA = 80, 50


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    path = tmp_path_factory.mktemp("jets") / "sim.root"
    summary = generate_jets(path, n_signal=N_SIM, n_background=N_SIM, seed=11, progress=False)
    return path, summary, hepdl.read_events(path, "events", FIELDS)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("jets") / "data.root"
    summary = generate_jets(
        path, variant="data", n_signal=N_DATA, n_background=N_DATA, seed=11, progress=False
    )
    return path, summary, hepdl.read_events(path, "events", FIELDS)


def test_file_layout_and_counts(sim):
    path, summary, ev = sim
    assert len(ev) == 2 * N_SIM
    assert int(np.sum(ev.label == 1)) == N_SIM and int(np.sum(ev.label == 0)) == N_SIM
    assert summary["n_signal"] == N_SIM and summary["n_background"] == N_SIM
    assert np.all(ev.weight == 1.0)
    assert len(np.unique(ak.to_numpy(ev.event_id))) == len(ev)
    with uproot.open(path) as f:
        tree = f["events"]
        assert tree["label"].interpretation.from_dtype == np.dtype(">i4")
        assert tree["event_id"].interpretation.from_dtype == np.dtype(">i8")
    json.dumps(summary)  # JSON-able
    assert (
        summary["signal"]["jets_per_second"] > 0 and summary["background"]["cross_section_pb"] > 0
    )


def test_jets_in_window(sim):
    _, _, ev = sim
    assert np.all((ev.jet_pt > 250) & (ev.jet_pt < 350))
    assert np.all(np.abs(ev.jet_eta) < 2.0)


def test_signal_mass_peaks_at_w_and_differs_from_qcd(sim):
    _, summary, ev = sim
    m_sig = ak.to_numpy(ev.jet_mass[ev.label == 1])
    m_bkg = ak.to_numpy(ev.jet_mass[ev.label == 0])
    assert 60 < np.median(m_sig) < 100
    # W jets sit in a peak; QCD jet masses are spread low: most of them below 60 GeV.
    assert np.mean((m_sig > 60) & (m_sig < 100)) > 0.5
    assert np.mean((m_bkg > 60) & (m_bkg < 100)) < 0.35
    assert np.median(m_bkg) < np.median(m_sig) - 20


def test_towers_and_tracks_belong_to_the_jet(sim):
    _, summary, ev = sim
    for pre in ("calo", "trk"):
        dr2 = (ev[f"{pre}_eta"] - ev.jet_eta) ** 2 + delta_phi(ev[f"{pre}_phi"], ev.jet_phi) ** 2
        assert ak.all(dr2 < 1.0 + 1e-4)
    assert ak.all(ev.calo_e > SIM.tower_threshold)
    assert np.all(ak.num(ev.calo_e) > 10)
    assert ak.all(np.abs(ev.trk_eta) < 2.5) and ak.all(ev.trk_pt > 0.3)
    assert ak.all(np.abs(ev.trk_charge) == 1)
    assert np.all(ak.sum(ev.trk_pt, axis=1) < 1.2 * ev.jet_pt)
    # Fewer tracks than charged particles in the cone (efficiency, pT threshold).
    for cls in ("signal", "background"):
        mean = summary[cls]["mean"]
        assert 5 < mean["n_tracks"] < mean["n_charged_in_cone"]
    # Pile-up tracks come from vertices spread along z; displaced decays give |d0| >> resolution.
    z0 = ak.to_numpy(ak.flatten(ev.trk_z0))
    d0 = ak.to_numpy(ak.flatten(ev.trk_d0))
    assert np.mean(np.abs(z0) > 5.0) > 0.02
    assert np.mean(np.abs(d0) > 1.0) > 0.002


def test_data_differs_from_sim(sim, data):
    _, s_sum, s_ev = sim
    _, d_sum, d_ev = data
    assert d_sum["variant"] == "data" and len(d_ev) == 2 * N_DATA
    n_sim = np.mean(ak.num(s_ev.calo_e))
    n_data = np.mean(ak.num(d_ev.calo_e))
    assert n_data > 1.2 * n_sim  # pile-up x2 and calorimeter noise
    # Transverse energy in the jet area beyond the (trimmed) jet pT: pile-up, noise, scale.
    excess_sim = np.mean(ak.sum(s_ev.calo_e / np.cosh(s_ev.calo_eta), axis=1) / s_ev.jet_pt) - 1
    excess_data = np.mean(ak.sum(d_ev.calo_e / np.cosh(d_ev.calo_eta), axis=1) / d_ev.jet_pt) - 1
    assert excess_data > 1.3 * excess_sim > 0
    assert (
        d_sum["variant_settings"]["detector"]["pileup_mu"]
        > s_sum["variant_settings"]["detector"]["pileup_mu"]
    )
    assert d_sum["variant_settings"]["tune"] != s_sum["variant_settings"]["tune"]


def test_same_seed_same_file_other_seed_differs_and_cli(tmp_path, capfd):
    from hepdl.cli import main

    kw = dict(n_signal=6, n_background=6, progress=False)
    generate_jets(tmp_path / "a.root", seed=3, **kw)
    # The same sample once more through ``hepdl generate jets``.
    args = "generate jets --n-signal 6 --n-background 6 --seed 3 -o".split()
    rc = main([*args, str(tmp_path / "b.root")])
    assert rc == 0
    # stdout is pure JSON: Pythia and FastJet chatter goes to stderr.
    summary = json.loads(capfd.readouterr().out)
    assert summary["n_signal"] == 6 and summary["settings"]["seed"] == 3
    generate_jets(tmp_path / "c.root", seed=4, **kw)
    assert not list(tmp_path.glob("*.tmp*"))
    ea, eb, ec = (hepdl.read_events(tmp_path / f"{n}.root", "events", FIELDS) for n in "abc")
    for f in FIELDS:
        assert ak.array_equal(ea[f], eb[f]), f
    assert not ak.array_equal(ea.calo_e, ec.calo_e)
    assert not np.array_equal(ak.to_numpy(ea.jet_pt), ak.to_numpy(ec.jet_pt))


def test_zero_cross_section_is_an_error():
    settings = [s for s in process_settings("w", 250, 350) if not s.startswith("Wprime:coup2WZ")]
    with pytest.raises(HepdlError, match="init"):
        make_pythia(["Tune:pp = 14", *settings], 1, "W' without coup2WZ")


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="pt_min"):
        generate_jets(
            tmp_path / "x.root", n_signal=1, n_background=1, seed=1, pt_min=400, pt_max=300
        )
    with pytest.raises(ConfigError, match="variant"):
        generate_jets(tmp_path / "x.root", n_signal=1, n_background=1, seed=1, variant="mc")
    assert not (tmp_path / "x.root").exists()


def test_overlay_pileup_places_every_use_once():
    from hepdl.generate.jet_detector import overlay_pileup

    rng = np.random.default_rng(0)
    n_pool, per_event = 3, np.array([2, 0, 5])
    counts = np.array([4, 1, 3])
    pool = {
        k: rng.normal(size=counts.sum()) for k in ("px", "py", "pz", "e", "vx", "vy", "vz", "eta")
    }
    pool["id"] = np.arange(counts.sum())
    pool["event"] = np.repeat(np.arange(n_pool), counts)
    out = overlay_pileup(pool, n_pool, per_event, SIM, rng)
    assert np.all(np.isin(out["event"], [0, 2]))
    # Each particle keeps its pT, |pz| and |eta| (rotation and reflection only).
    np.testing.assert_allclose(
        np.hypot(out["px"], out["py"]), np.hypot(pool["px"], pool["py"])[out["id"]]
    )
    np.testing.assert_allclose(np.abs(out["eta"]), np.abs(pool["eta"][out["id"]]))
    # Event 2 got 5 whole pool events: its particle count is a sum of 5 pool-event sizes.
    n2 = int(np.sum(out["event"] == 2))
    assert 5 * counts.min() <= n2 <= 5 * counts.max()
