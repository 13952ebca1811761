"""hepdl.io on ROOT files written by ROOT itself, on files we write, and on bad input."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

import hepdl
from hepdl.cli import main as cli_main
from hepdl.errors import InputError
from hepdl.io import TreeWriter, iterate_events, read_events, write_friend, write_tree

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-root"
needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real ROOT files not found at {REAL} (the shared/ folder beside the repo)"
)
HZZ_VARIANTS = ["uproot-HZZ.root", "uproot-HZZ-lz4.root", "uproot-HZZ-lzma.root", "uproot-HZZ-zstd.root",
                "uproot-HZZ-uncompressed.root"]
NANO = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
NANO_RNTUPLE = "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root"
HZZ_FIELDS = {"jet_px": "Jet_Px", "jet_e": "Jet_E", "muon_px": "Muon_Px", "met_px": "MET_px", "njet": "NJet"}


# ---------------------------------------------------------------- real files


@needs_real
def test_hzz_compression_variants_read_identically():
    reference = read_events(REAL / HZZ_VARIANTS[0], "events", HZZ_FIELDS)
    assert len(reference) == 2421
    assert reference.fields == list(HZZ_FIELDS)
    assert ak.all(ak.num(reference.jet_px) == reference.njet)
    for name in HZZ_VARIANTS[1:]:
        other = read_events(REAL / name, "events", HZZ_FIELDS)
        assert ak.array_equal(reference, other), name


@needs_real
def test_nanoaod_collections_have_the_counts_of_their_counters():
    events = read_events(REAL / NANO, "Events", {"fatjet": "FatJet", "genpart": "GenPart", "nfat": "nFatJet",
                                                  "ngen": "nGenPart", "met": "MET_pt"})
    assert len(events) == 200
    assert ak.all(ak.num(events.fatjet) == events.nfat)
    assert ak.all(ak.num(events.genpart) == events.ngen)
    assert {"pt", "eta", "phi", "mass", "particleNet_WvsQCD", "tau2"} <= set(events.fatjet.fields)
    assert {"pdgId", "genPartIdxMother", "status"} <= set(events.genpart.fields)
    assert ak.sum(events.nfat) > 0
    # A collection name alone gives the collection itself, one list of records per event.
    fatjets = read_events(REAL / NANO, "Events", "FatJet")
    assert ak.array_equal(fatjets, events.fatjet)


@needs_real
def test_rntuple_reads_like_a_ttree(tmp_path):
    spec = {"fatjet": "FatJet", "jet_pt": "Jet_pt", "njet": "nJet", "met": "MET_pt", "run": "run"}
    from_rntuple = read_events(REAL / NANO_RNTUPLE, "Events", spec)
    from_ttree = read_events(REAL / NANO, "Events", spec)
    assert len(from_rntuple) == 10
    assert from_rntuple.fields == from_ttree.fields
    assert from_rntuple.fatjet.fields == from_ttree.fatjet.fields
    assert ak.all(ak.num(from_rntuple.jet_pt) == from_rntuple.njet)
    # The same content written as a TTree reads back identically through the same spec.
    flat = {"jet_pt": from_rntuple.jet_pt, "njet": from_rntuple.njet, "met": from_rntuple.met,
            **{f"fatjet_{f}": from_rntuple.fatjet[f] for f in ("pt", "eta", "mass")}}
    write_tree(tmp_path / "copy.root", "Events", flat)
    again = read_events(tmp_path / "copy.root", "Events", {"jet_pt": "jet_pt", "met": "met", "fatjet": "fatjet"})
    assert ak.array_equal(again.jet_pt, from_rntuple.jet_pt)
    assert ak.array_equal(again.fatjet.pt, from_rntuple.fatjet.pt)


@needs_real
def test_every_real_file_can_be_inspected(capsys):
    files = sorted(p for p in REAL.glob("*.root"))
    assert len(files) == 9
    assert cli_main(["inspect", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert "RNTuple 'Events': 10 entries" in out
    assert "TTree 'events': 2421 entries" in out
    assert "FatJet_particleNet_WvsQCD" in out
    assert "collections" in out and "FatJet" in out


@needs_real
def test_fullsplit_object_tree_branches_by_their_full_names():
    events = read_events(REAL / "uproot-small-evnt-tree-fullsplit.root", "tree",
                         {"i32": "evt/I32", "f64": "evt/F64", "vec": "evt/StlVecF64"})
    assert len(events) == 100
    assert events.i32.tolist()[:3] == [0, 1, 2]
    assert ak.num(events.vec).tolist()[:3] == [0, 1, 2]


@needs_real
def test_chunks_concatenate_to_the_whole_and_report_their_entries():
    path = REAL / "uproot-HZZ-zstd.root"
    whole = read_events(path, "events", HZZ_FIELDS)
    pieces = list(iterate_events(path, "events", HZZ_FIELDS, step_size=500, with_source=True))
    assert len(pieces) == 5
    assert [s.entry_start for _, s in pieces] == [0, 500, 1000, 1500, 2000]
    assert pieces[-1][1].entry_stop == 2421
    assert ak.array_equal(ak.concatenate([c for c, _ in pieces]), whole)


@needs_real
def test_glob_and_several_files_keep_their_order():
    both = read_events([REAL / "uproot-HZZ.root", str(REAL / "uproot-HZZ-l*.root")], "events", {"e": "Jet_E"})
    assert len(both) == 3 * 2421  # HZZ, then lz4 and lzma in sorted order


@needs_real
def test_cut_in_logical_names():
    events = read_events(REAL / "uproot-HZZ.root", "events", HZZ_FIELDS, cut="(njet >= 2) & (abs(met_px) < 50)")
    assert len(events) > 0
    assert ak.all(events.njet >= 2)
    assert np.all(np.abs(events.met_px) < 50)


# ------------------------------------------------------ files written by us


def _jets(n: int, seed: int = 1) -> dict[str, ak.Array | np.ndarray]:
    rng = np.random.default_rng(seed)
    n_calo = rng.integers(0, 40, n)
    n_trk = rng.integers(0, 15, n)
    calo = {k: ak.unflatten(rng.normal(size=n_calo.sum()).astype(np.float32), n_calo) for k in ("eta", "phi", "e")}
    trk = {k: ak.unflatten(rng.normal(size=n_trk.sum()).astype(np.float32), n_trk) for k in ("pt", "eta", "phi")}
    return {
        **{f"calo_{k}": v for k, v in calo.items()},
        **{f"trk_{k}": v for k, v in trk.items()},
        "jet_pt": rng.uniform(250, 350, n).astype(np.float32),
        "label": rng.integers(0, 2, n).astype(np.int32),
    }


def test_round_trip_of_jagged_calorimeter_and_track_branches(tmp_path):
    data = _jets(1000)
    path = tmp_path / "jets.root"
    with TreeWriter(path, "events") as out:
        out.extend({k: v[:600] for k, v in data.items()})
        out.extend({k: v[600:] for k, v in data.items()})
    tree = uproot.open(path)["events"]
    assert tree.num_entries == 1000
    assert {"ncalo", "calo_e", "ntrk", "trk_pt"} <= set(tree.keys())  # one counter per collection
    events = read_events(path, "events", list(data))
    for name, values in data.items():
        assert ak.array_equal(events[name], values), name
    # Renamed branches map back to the logical names.
    renamed = read_events(path, "events", {"tower_energy": "calo_e", "pt": "jet_pt"})
    assert ak.array_equal(renamed.tower_energy, data["calo_e"])


def test_write_friend_aligns_with_its_input_and_is_atomic(tmp_path):
    data = _jets(300)
    write_tree(tmp_path / "in.root", "events", data)
    scores = np.linspace(0, 1, 300)
    write_friend(tmp_path / "scores.root", "scores", {"score": scores}, friend_of=(str(tmp_path / "in.root"), "events"))
    back = read_events(tmp_path / "scores.root", "scores", ["score"])
    assert np.allclose(back.score, scores, atol=1e-6)
    before = (tmp_path / "scores.root").read_bytes()
    with pytest.raises(InputError, match="300"):
        write_friend(tmp_path / "scores.root", "scores", {"score": scores[:10]},
                     friend_of=(str(tmp_path / "in.root"), "events"))
    assert (tmp_path / "scores.root").read_bytes() == before  # the earlier result is untouched
    assert sorted(os.listdir(tmp_path)) == ["in.root", "scores.root"]  # no temporary left behind


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.root"
    with pytest.raises(RuntimeError), TreeWriter(path, "events") as out:
        out.extend({"x": np.arange(3.0)})
        raise RuntimeError("generator crashed")
    assert os.listdir(tmp_path) == []


def test_public_api_reads_in_a_few_lines(tmp_path):
    write_tree(tmp_path / "a.root", "events", _jets(50))
    events = hepdl.read_events(tmp_path / "a.root", "events", {"calo_e": "calo_e", "jet_pt": "jet_pt"})
    assert len(events) == 50


# ----------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.root: no such file"):
        read_events(tmp_path / "nothere.root", "events", ["x"])


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(InputError, match="no file matches"):
        read_events(str(tmp_path / "*.root"), "events", ["x"])


def test_not_a_root_file(tmp_path):
    (tmp_path / "notes.root").write_text("this is a text file\n" * 100)
    with pytest.raises(InputError, match=r"notes\.root: not a ROOT file"):
        read_events(tmp_path / "notes.root", "events", ["x"])


def test_truncated_file(tmp_path):
    write_tree(tmp_path / "full.root", "events", _jets(3000))
    raw = (tmp_path / "full.root").read_bytes()
    (tmp_path / "cut.root").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"cut\.root.*(truncated|corrupt)"):
        read_events(tmp_path / "cut.root", "events", ["calo_e", "jet_pt"])


def test_corrupt_bytes_in_the_middle(tmp_path):
    write_tree(tmp_path / "full.root", "events", _jets(3000))
    raw = bytearray((tmp_path / "full.root").read_bytes())
    raw[2000:60000] = bytes(58000)
    (tmp_path / "bad.root").write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"bad\.root.*(truncated|corrupt)"):
        read_events(tmp_path / "bad.root", "events", ["calo_e", "calo_eta", "jet_pt", "trk_pt"])


def test_missing_tree_lists_the_trees(tmp_path):
    write_tree(tmp_path / "a.root", "events", _jets(5))
    with pytest.raises(InputError, match=r"no tree 'Events'; did you mean 'events'"):
        read_events(tmp_path / "a.root", "Events", ["jet_pt"])


def test_missing_branch_suggests_the_closest(tmp_path):
    write_tree(tmp_path / "a.root", "events", _jets(5))
    with pytest.raises(InputError, match=r"no branch 'calo_energy' \(for field 'calo_e'\); closest branches: calo_e, calo_eta"):
        read_events(tmp_path / "a.root", "events", {"calo_e": "calo_energy"})


def test_jagged_fields_whose_counts_disagree(tmp_path):
    data = _jets(100)
    write_tree(tmp_path / "a.root", "events", data)
    # calo_e paired with the track collection's phi: both jagged, different objects.
    with pytest.raises(InputError, match=r"'trk_phi' \(field 'calo_phi'\) have different lengths"):
        read_events(tmp_path / "a.root", "events", {"calo_e": "calo_e", "calo_phi": "trk_phi"})


def test_empty_selection(tmp_path):
    write_tree(tmp_path / "a.root", "events", _jets(50))
    with pytest.raises(InputError, match=r"cut 'jet_pt > 1e6' selects no entries"):
        read_events(tmp_path / "a.root", "events", ["jet_pt"], cut="jet_pt > 1e6")


def test_cut_with_an_unknown_name(tmp_path):
    write_tree(tmp_path / "a.root", "events", _jets(50))
    with pytest.raises(InputError, match="unknown name"):
        read_events(tmp_path / "a.root", "events", ["jet_pt"], cut="jet_ptt > 3")


def test_nonfinite_values_error_by_default_and_can_be_dropped(tmp_path):
    data = _jets(200)
    e = ak.to_numpy(ak.flatten(data["calo_e"])).copy()
    counts = ak.num(data["calo_e"])
    first_nonempty = int(np.flatnonzero(ak.to_numpy(counts) > 0)[3])
    e[int(ak.sum(counts[:first_nonempty]))] = np.nan
    data["calo_e"] = ak.unflatten(e, counts)
    write_tree(tmp_path / "a.root", "events", data)
    with pytest.raises(InputError, match=rf"branch 'calo_e' has NaN or infinite values in 1 entries \(first: entry {first_nonempty}, NaN\)"):
        read_events(tmp_path / "a.root", "events", ["calo_e", "jet_pt"])
    dropped = read_events(tmp_path / "a.root", "events", ["calo_e", "jet_pt"], nonfinite="drop")
    assert len(dropped) == 199
    kept = read_events(tmp_path / "a.root", "events", ["calo_e", "jet_pt"], nonfinite="keep")
    assert len(kept) == 200


def test_cli_reports_one_line_without_traceback(tmp_path, capsys):
    (tmp_path / "x.root").write_bytes(b"garbage" * 10)
    assert cli_main(["inspect", str(tmp_path / "x.root")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a ROOT file" in err and "Traceback" not in err


def test_directory_given_as_file(tmp_path):
    os.mkdir(tmp_path / "d.root")
    with pytest.raises(InputError, match="is a directory"):
        read_events(tmp_path / "d.root", "events", ["x"])
