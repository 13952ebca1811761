"""Event-level files to jets (hepdl jets-from-events), scores back per event, the generator's event layout."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from hepdl.cli import main
from hepdl.errors import HepdlError
from hepdl.io import read_events
from hepdl.io.event_scores import scores_to_events
from hepdl.io.events import ConstituentSource, jets_from_events
from hepdl.io.jet_matching import JetSelection, TruthMatch

# Two events written by hand in PFNano's layout. Event 0: a hadronic W (quarks at eta 0.1 and
# -0.1, phi 0) inside jet 0 (eta 0, phi 0), jet 1 far away; a leptonic W (no quark products).
# Event 1: a top (b, and W -> q q') whose three quarks all lie in jet 0; one jet only.
JETS = {
    "pt": [[400.0, 300.0, 40.0], [500.0]],
    "eta": [[0.0, 1.5, -1.0], [0.5]],
    "phi": [[0.0, 2.5, -2.0], [1.0]],
    "mass": [[80.0, 20.0, 5.0], [170.0]],
    "tau21": [[0.3, 0.8, 0.9], [0.5]],
}
CANDS = {
    "pt": [[50.0, 40.0, 30.0, 20.0, 10.0], [60.0, 50.0, 40.0]],
    "eta": [[0.1, -0.1, 1.4, 1.6, -1.0], [0.4, 0.6, 0.5]],
    "phi": [[0.1, -0.1, 2.4, 2.6, -2.0], [0.9, 1.1, 1.0]],
    "charge": [[1, 0, -1, 0, 0], [0, 1, 1]],
}
LINKS = {"jetIdx": [[0, 0, 1, 1, 2], [0, 0, 0]], "pFCandsIdx": [[0, 1, 2, 3, 4], [0, 1, 2]]}
GEN = {  # pdgId, mother; event 0: W(2) -> u(3) dbar(4); W(5) -> mu(6) nu(7)
    "pdgId": [[2, -1, 24, 2, -1, -24, 13, -14], [21, 21, 6, 5, 24, 2, -1, 24]],
    "genPartIdxMother": [[-1, -1, 0, 2, 2, 0, 5, 5], [-1, -1, 0, 2, 2, 7, 7, 4]],
    "eta": [[5.0, -5.0, 0.0, 0.1, -0.1, -1.0, -1.2, -0.8], [5.0, -5.0, 0.5, 0.45, 0.5, 0.55, 0.5, 0.5]],
    "phi": [[0.0, 0.0, 0.0, 0.05, -0.05, -2.0, -2.1, -1.9], [0.0, 0.0, 1.0, 0.9, 1.0, 1.05, 1.1, 1.0]],
    "status": [[21, 21, 22, 23, 23, 22, 23, 23], [21, 21, 22, 23, 22, 23, 23, 62]],
}


def _zip(columns: dict) -> ak.Array:
    return ak.zip({k: ak.Array(v) for k, v in columns.items()})


def write_pfnano(path, *, jets=JETS, cands=CANDS, links=LINKS, gen=GEN, extra=None, drop=()):
    """A two-event PFNano-style file (tree Events); ``drop`` leaves collections out."""
    data = {"event": np.array([1001, 1002], dtype=np.int64), "FatJet": _zip(jets), "PFCands": _zip(cands),
            "FatJetPFCands": _zip(links), "GenPart": _zip(gen)}
    data |= extra or {}
    for name in drop:
        del data[name]
    with uproot.recreate(path) as f:  # mktree + extend: NanoAOD's layout (nFatJet, FatJet_pt, ...)
        f.mktree("Events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
        f["Events"].extend(data)
    return str(path)


PF = [ConstituentSource.parse("calo=PFCands:charge == 0"), ConstituentSource.parse("trk=PFCands:charge != 0")]


def test_links_selection_and_truth_on_a_handwritten_pfnano_file(tmp_path):
    src = write_pfnano(tmp_path / "nano.root")
    out = tmp_path / "jets.root"
    summary = jets_from_events(src, out, tree="Events", jets="FatJet", constituents=PF, links="FatJetPFCands",
                               truth=TruthMatch())
    assert summary["jets"] == 4 and summary["events"] == 2 and summary["signal_jets"] == 2
    j = uproot.open(out)["events"].arrays()
    assert j.event_entry.tolist() == [0, 0, 0, 1] and j.jet_index.tolist() == [0, 1, 2, 0]
    assert j.event.tolist() == [1001, 1001, 1001, 1002] and j.event_file.tolist() == [0, 0, 0, 0]
    assert j.jet_pt.tolist() == [400.0, 300.0, 40.0, 500.0] and j.jet_tau21.tolist() == pytest.approx([0.3, 0.8, 0.9, 0.5])
    # the hadronic W in jet 0; the leptonic W matches nothing; the top (3 quarks) wins over its W
    assert j.label.tolist() == [1, 0, 0, 1] and j.truth_pdgid.tolist() == [24, 0, 0, 6]
    # constituents by link, split by charge: towers (neutral) and tracks (charged)
    assert j.trk_pt.tolist() == [[50.0], [30.0], [], [50.0, 40.0]]
    assert j.calo_pt.tolist() == [[40.0], [20.0], [10.0], [60.0]]
    # selection: leading two by pT, then pt > 350 and |eta| < 1
    sel = jets_from_events(src, tmp_path / "sel.root", tree="Events", jets="FatJet",
                           selection=JetSelection(pt_min=350, eta_max=1.0, leading=2))
    assert sel["jets"] == 2
    s = uproot.open(tmp_path / "sel.root")["events"].arrays(["event_entry", "jet_index"])
    assert s.event_entry.tolist() == [0, 1] and s.jet_index.tolist() == [0, 0]


def test_a_decay_product_outside_the_jet_means_no_match(tmp_path):
    """The W's second quark moved out of jet 0 (and the top's b out of its jet): no jet is signal in
    event 0, and event 1's jet is the W's (two quarks inside), not the top's."""
    eta = [list(GEN["eta"][0]), list(GEN["eta"][1])]
    eta[0][4] = 2.0
    eta[1][3] = -1.5
    src = write_pfnano(tmp_path / "nano.root", gen={**GEN, "eta": eta})
    jets_from_events(src, tmp_path / "jets.root", tree="Events", truth=TruthMatch())
    j = read_events(tmp_path / "jets.root", "events", ["label", "truth_pdgid"])
    assert j.label.tolist() == [0, 0, 0, 1] and j.truth_pdgid.tolist() == [0, 0, 0, 24]
    # only the partly contained W's jet selected: no (jet, mother) pair is complete in the chunk
    jets_from_events(src, tmp_path / "one.root", tree="Events", truth=TruthMatch(), selection=JetSelection(eta_max=0.3))
    assert read_events(tmp_path / "one.root", "events", ["label"]).label.tolist() == [0]


def test_deltar_matching_gives_the_linked_constituents(tmp_path):
    """The links of the hand-written file are the candidates within 0.3 of each jet: DeltaR agrees."""
    src = write_pfnano(tmp_path / "nano.root")
    jets_from_events(src, tmp_path / "links.root", tree="Events", constituents=PF[1:], links="FatJetPFCands")
    jets_from_events(src, tmp_path / "dr.root", tree="Events", constituents=PF[1:], dr=0.3)
    a = read_events(tmp_path / "links.root", "events", ["trk_pt", "trk_eta"])
    b = read_events(tmp_path / "dr.root", "events", ["trk_pt", "trk_eta"])
    assert a.trk_pt.tolist() == b.trk_pt.tolist() and a.trk_eta.tolist() == b.trk_eta.tolist()


def test_scores_go_back_to_their_own_jets(tmp_path):
    src = write_pfnano(tmp_path / "nano.root")
    jets = tmp_path / "jets.root"
    jets_from_events(src, jets, tree="Events", selection=JetSelection(pt_min=100))
    j = read_events(jets, "events", ["jet_pt", "event_entry", "jet_index"])
    with uproot.recreate(tmp_path / "jets.scores.root") as f:  # a score that identifies its jet
        f["scores"] = {"score": np.asarray(j.jet_pt) / 1000.0}
    out = tmp_path / "nano.scores.root"
    summary = scores_to_events(jets, tmp_path / "jets.scores.root", src, out, collection="FatJet")
    assert summary["events"] == 2 and summary["jets_scored"] == 3
    friend = uproot.open(out)["scores"].arrays()
    events = uproot.open(src)["Events"].arrays(["FatJet_pt"])
    assert ak.num(friend.FatJet_score).tolist() == ak.num(events.FatJet_pt).tolist()
    expected = ak.where(events.FatJet_pt > 100, events.FatJet_pt / 1000.0, -1.0)
    assert ak.flatten(friend.FatJet_score).tolist() == pytest.approx(ak.flatten(expected).tolist())
    # scores of another file's jets are refused, naming the files
    other = write_pfnano(tmp_path / "other.root", jets={k: [v[1], v[0]] for k, v in JETS.items()},
                         links={"jetIdx": [[0, 0, 0], [0, 0, 1, 1, 2]], "pFCandsIdx": [[0, 1, 2], [0, 1, 2, 3, 4]]},
                         cands={k: [v[1], v[0]] for k, v in CANDS.items()})
    with pytest.raises(HepdlError, match="was not made from this file"):
        scores_to_events(jets, tmp_path / "jets.scores.root", other, tmp_path / "bad.scores.root")
    assert not (tmp_path / "bad.scores.root").exists()


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("link_out_of_range", r"nano\.root.*index link FatJetPFCands_pFCandsIdx out of range in entry 1.*'PFCands' has 3"),
        ("counts_disagree", r"nano\.root.*collection 'FatJet': nFatJet says 2 objects but FatJet_pt has 3 in entry 0"),
        ("missing_truth", r"nano\.root, tree 'Events': no truth collection 'GenPart'"),
        ("absent_jets", r"nano\.root, tree 'Events': no jet collection 'AK15Jet'.*FatJet"),
        ("mother_out_of_range", r"nano\.root.*GenPart_genPartIdxMother out of range in entry 0"),
    ],
)
def test_bad_event_input_is_one_clear_error_and_nothing_is_written(tmp_path, case, pattern):
    kwargs = {}
    jets = "FatJet"
    if case == "link_out_of_range":
        src = write_pfnano(tmp_path / "nano.root", links={"jetIdx": LINKS["jetIdx"], "pFCandsIdx": [[0, 1, 2, 3, 4], [0, 1, 3]]})
    elif case == "counts_disagree":  # the counter says 2 jets, the branches hold 3
        fat = {f"FatJet_{k}": ak.Array(v) for k, v in JETS.items()}
        src = write_pfnano(tmp_path / "nano.root", extra={"nFatJet": np.array([2, 1], dtype=np.int32), **fat},
                           drop=("FatJet",))
    elif case == "missing_truth":
        src = write_pfnano(tmp_path / "nano.root", drop=("GenPart",))
    elif case == "absent_jets":
        src = write_pfnano(tmp_path / "nano.root")
        jets = "AK15Jet"
    else:
        src = write_pfnano(tmp_path / "nano.root", gen={**GEN, "genPartIdxMother": [[-1, -1, 0, 2, 9, 0, 5, 5],
                                                                                     GEN["genPartIdxMother"][1]]})
    out = tmp_path / "jets.root"
    out.write_text("an older output")
    with pytest.raises(HepdlError, match=pattern):
        jets_from_events(src, out, tree="Events", jets=jets, constituents=PF, links="FatJetPFCands",
                         truth=TruthMatch(), **kwargs)
    assert out.read_text() == "an older output"  # untouched, and no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jets.root", "nano.root"]


def test_cli_writes_jets_and_reports_bad_input_in_one_line(tmp_path, capsys):
    src = write_pfnano(tmp_path / "nano.root")
    out = tmp_path / "jets.root"
    assert main(["jets-from-events", src, "--tree", "Events", "--jets", "FatJet", "--output", str(out),
                 "--constituents", "trk=PFCands:charge != 0", "--links", "FatJetPFCands", "--truth", "GenPart",
                 "--leading", "1"]) == 0
    j = read_events(out, "events", ["label", "jet_index"])
    assert j.label.tolist() == [1, 1] and j.jet_index.tolist() == [0, 0]
    capsys.readouterr()
    assert main(["jets-from-events", src, "--tree", "Events", "--jets", "Fatjet", "--output",
                 str(tmp_path / "x.root")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hepdl jets-from-events: error:") and "did you mean 'FatJet'" in err


@pytest.fixture(scope="module")
def generated_events(tmp_path_factory):
    """A small event-level sample from the generator (Pythia 8 + FastJet), about 10 s."""
    from hepdl.generate import generate_jets

    path = tmp_path_factory.mktemp("gen") / "events.root"
    summary = generate_jets(path, n_signal=25, n_background=25, seed=5, layout="events", progress=False)
    return path, summary


def test_generator_event_layout_is_pfnano_like(generated_events):
    path, summary = generated_events
    assert summary["n_signal_events"] == 25 and summary["n_background_events"] == 25
    a = uproot.open(path)["Events"].arrays()
    assert len(a) == 50
    assert np.bincount(a.process).tolist() == [25, 25]
    n_jets, n_cands, n_gen = (ak.num(a[b]) for b in ("FatJet_pt", "PFCands_pt", "GenPart_pdgId"))
    assert ak.max(n_jets) > 1  # several jets per event
    assert ak.all(a.FatJetPFCands_jetIdx < n_jets) and ak.all(a.FatJetPFCands_pFCandsIdx < n_cands)
    assert ak.all(a.GenPart_genPartIdxMother < n_gen) and ak.all(a.GenPart_genPartIdxMother >= -1)
    # every signal event holds a W whose daughters are quarks, through the mother index
    pid = abs(a.GenPart_pdgId)
    mother_pid = pid[ak.where(a.GenPart_genPartIdxMother >= 0, a.GenPart_genPartIdxMother, 0)]
    quark_of_w = (pid <= 5) & (mother_pid == 24) & (a.GenPart_genPartIdxMother >= 0)
    assert ak.all(ak.sum(quark_of_w, axis=1)[a.process == 1] == 2)


def test_generated_events_explode_with_links_as_with_deltar(generated_events, tmp_path):
    """The generator's links are the towers and tracks within R = 1 of each jet: DeltaR gives the same."""
    path, _ = generated_events
    common = dict(tree="Events", jets="FatJet", truth=TruthMatch(), selection=JetSelection(pt_min=250, eta_max=2, leading=2))
    a = jets_from_events(path, tmp_path / "links.root", constituents=PF, links="FatJetPFCands", **common)
    b = jets_from_events(path, tmp_path / "dr.root", constituents=PF, dr=1.0, **common)
    assert a["jets"] == b["jets"] > 20
    x = read_events(tmp_path / "links.root", "events", ["calo_e", "trk_pt", "label", "event_entry"])
    y = read_events(tmp_path / "dr.root", "events", ["calo_e", "trk_pt"])
    assert ak.all(ak.sort(x.calo_e) == ak.sort(y.calo_e)) and ak.all(ak.sort(x.trk_pt) == ak.sort(y.trk_pt))
    process = uproot.open(path)["Events"]["process"].array(library="np")[np.asarray(x.event_entry)]
    label = np.asarray(x.label)
    assert label[process == 0].sum() == 0  # QCD: no W/top
    assert label[process == 1].mean() > 0.5  # W' -> W Z: the leading jet is mostly the W
