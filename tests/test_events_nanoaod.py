"""jets-from-events on a file nobody here wrote: the CMS Open Data NanoAOD sample (200 events).

What the file holds decides what can be shown: its 200 events have 2 FatJets in all and no
hadronic W or top (every W decays to a lepton; there is no top quark in GenPart), so the FatJets
are exploded, counted against uproot and matched to GenPart (label 0 for both, checked against
GenPart directly), and the BDT path is shown end to end on the same file's 537 AK4 jets
(``Jet``), labelled by the same GenPart matching in parton mode (a hard-process quark, status
23, within DeltaR 0.4): a small sample (about 130 test jets), so the AUC bound is loose.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepdl.cli import main
from hepdl.io import read_events
from hepdl.io.events import jets_from_events
from hepdl.io.jet_matching import QUARKS, JetSelection, TruthMatch

NANO = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-root" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"

pytestmark = pytest.mark.skipif(not NANO.exists(), reason=f"{NANO} is absent (the shared real-ROOT test files)")


@pytest.fixture(scope="module")
def events():
    return uproot.open(NANO)["Events"].arrays(["nFatJet", "FatJet_pt", "FatJet_eta", "nJet", "Jet_pt", "Jet_eta",
                                               "GenPart_pdgId", "GenPart_genPartIdxMother"])


def test_every_fatjet_without_a_selection(events, tmp_path):
    out = tmp_path / "fatjets.root"
    assert main(["jets-from-events", str(NANO), "--tree", "Events", "--jets", "FatJet", "--output", str(out),
                 "--truth", "GenPart", "--mothers", "6", "24"]) == 0
    jets = uproot.open(out)["events"].arrays()
    assert len(jets) == ak.sum(events.nFatJet) == 2
    # each entry is its own FatJet: pT, tau ratios and the event it came from
    assert jets.jet_pt.tolist() == ak.flatten(events.FatJet_pt).tolist()
    assert jets.event_entry.tolist() == np.flatnonzero(np.asarray(events.nFatJet)).tolist()
    assert {"jet_tau1", "jet_tau2", "jet_tau3", "jet_mass", "event", "run"} <= set(jets.fields)  # no msoftdrop here
    # no W in the file decays to quarks and there is no top: GenPart says so directly, and no jet matches
    pid = abs(events.GenPart_pdgId)
    mother = events.GenPart_genPartIdxMother
    mother_pid = pid[ak.where(mother >= 0, mother, 0)]
    assert ak.sum((pid <= 5) & (mother >= 0) & ((mother_pid == 24) | (mother_pid == 6))) == 0
    assert jets.label.tolist() == [0, 0]


@pytest.mark.parametrize(("collection", "pt_min", "eta_max", "leading"),
                         [("FatJet", 300.0, 2.4, None), ("Jet", 30.0, 2.4, 2), ("Jet", None, None, None)])
def test_selected_count_equals_uproots(events, tmp_path, collection, pt_min, eta_max, leading):
    pt, eta = events[f"{collection}_pt"], events[f"{collection}_eta"]
    mask = ak.ones_like(pt, dtype=bool)
    if leading is not None:  # NanoAOD collections are pT-ordered: the leading N are the first N
        mask = mask & (ak.local_index(pt) < leading)
    if pt_min is not None:
        mask = mask & (pt > pt_min)
    if eta_max is not None:
        mask = mask & (abs(eta) < eta_max)
    summary = jets_from_events(NANO, tmp_path / "j.root", jets=collection,
                               selection=JetSelection(pt_min, eta_max, leading))
    assert summary["jets"] == ak.sum(mask) > 0
    got = read_events(tmp_path / "j.root", "events", ["jet_pt"]).jet_pt
    assert got.tolist() == ak.flatten(pt[mask]).tolist()


def test_bdt_trains_and_evaluates_on_nanoaod_jets(tmp_path):
    """Small sample: 537 AK4 jets of 200 events, a quark-jet label from GenPart (parton mode)."""
    from hepdl.bdt import BDTSettings
    from hepdl.bdt.root_table import train_bdt_on_root
    from hepdl.evaluate.metrics import binary_metrics

    out = tmp_path / "jets.root"
    summary = jets_from_events(NANO, out, jets="Jet", truth=TruthMatch(mode="parton", mothers=QUARKS, status=(23,), dr=0.4))
    assert summary["jets"] == 537 and 20 < summary["signal_jets"] < 200
    features = ["jet_qgl", "jet_nConstituents", "jet_mass", "jet_chHEF", "jet_neHEF", "jet_pt", "jet_btagDeepB"]
    booster, table = train_bdt_on_root(out, "events", features, seed=1,
                                       settings=BDTSettings(n_estimators=100, max_depth=2))
    assert sum(len(p["label"]) for p in table.values()) == 537
    test = table["test"]
    assert test["label"].sum() >= 5
    auc = binary_metrics(test["score"], test["label"])["auc"]
    assert 0.65 < auc <= 1.0, auc  # measured 0.86; the quark-gluon likelihood (jet_qgl) alone carries most of it
    assert booster.num_boosted_rounds() > 1


def test_fatjet_variables_form_the_bdt_table(tmp_path):
    """The FatJet-level variables reach the BDT's table as they are (two jets: too few to train on)."""
    from hepdl.bdt.root_table import root_feature_table

    out = tmp_path / "fatjets.root"
    jets_from_events(NANO, out, jets="FatJet", truth=TruthMatch())
    features = ["jet_tau1", "jet_tau2", "jet_tau3", "jet_mass", "jet_pt"]
    table = root_feature_table(out, "events", features, fractions=(1.0, 0.0, 0.0))
    raw = uproot.open(NANO)["Events"].arrays([f"FatJet_{f[4:]}" for f in features])
    expected = np.stack([ak.to_numpy(ak.flatten(raw[f"FatJet_{f[4:]}"])) for f in features], axis=1)
    assert np.array_equal(table["train"]["x"], expected.astype(np.float32))


RNTUPLE = NANO.parent / "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root"


@pytest.mark.skipif(not RNTUPLE.exists(), reason=f"{RNTUPLE} is absent")
def test_nanoaod_stored_as_rntuple(tmp_path):
    """The same kind of content as an RNTuple (10 events): every Jet, matched to GenPart."""
    counts = uproot.open(RNTUPLE)["Events"].arrays(["nJet"]).nJet
    summary = jets_from_events(RNTUPLE, tmp_path / "j.root", jets="Jet", truth=TruthMatch())
    assert summary["jets"] == ak.sum(counts) > 0
    j = read_events(tmp_path / "j.root", "events", ["event_entry", "jet_index"])
    assert np.bincount(np.asarray(j.event_entry), minlength=len(counts)).tolist() == counts.tolist()
