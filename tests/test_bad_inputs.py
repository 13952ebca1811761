"""The bad-input corpus: each case gives one clear error naming the file and the branch or key,
exit status 2 from the CLI without a traceback, and nothing half-written in the output folder.

Cases: truncated ROOT files (against the header's fEND), corrupt baskets (``inspect --check``),
empty and non-ROOT files, NaN and +-inf in a branch, jagged branches of one collection whose
counts disagree, a tree with zero entries, a missing tree or branch; files that are not hepdl
models; outputs that cannot be written (read-only file system, full disk), on a small tmpfs
where this test may mount one.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from test_prepared import synthetic_jets

from hepdl import load_model
from hepdl.cli import main
from hepdl.errors import InputError, ModelFileError, OutputError
from hepdl.io import TreeWriter, check_tree, describe_file, read_events, write_tree

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-root"
needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real ROOT files not found at {REAL} (the shared/ folder beside the repo)"
)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """``hepdl ARGV`` in this process; returns (exit status, stderr)."""
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def prepare(capsys, path, out, *extra) -> tuple[int, str]:
    return run_cli(capsys, "prepare", "jets", "--input", path, "--output", out, "--seed", "1", "--no-progress",
                   *extra)


@pytest.fixture(scope="module")
def jet_file(tmp_path_factory) -> str:
    """A hepdl jets file written in four pieces, so that each branch has four baskets."""
    path = str(tmp_path_factory.mktemp("bad") / "jets.root")
    data = synthetic_jets(800, 2)
    with TreeWriter(path, "events") as out:
        for k in range(4):
            out.extend({name: v[k * 200:(k + 1) * 200] for name, v in data.items()})
    return path


# ---------------------------------------------------------------- truncated


def _cut_in_half(src: str | Path, dst: Path) -> tuple[int, int]:
    raw = Path(src).read_bytes()
    dst.write_bytes(raw[: len(raw) // 2])
    return len(raw), len(raw) // 2


@needs_real
def test_a_real_file_cut_in_half_is_named_with_both_sizes(tmp_path, capsys):
    cut = tmp_path / "HZZ.root"
    full, half = _cut_in_half(REAL / "uproot-HZZ.root", cut)
    end = struct.unpack(">i", (REAL / "uproot-HZZ.root").read_bytes()[12:16])[0]  # the header's fEND
    assert end == full  # ROOT writes the file's size as fEND
    message = rf"{cut}: truncated ROOT file: its header says it is {end} bytes long, but it has {half} bytes"
    with pytest.raises(InputError, match=message):
        read_events(cut, "events", ["Jet_Px"])
    with pytest.raises(InputError, match=message):
        describe_file(cut)
    assert_one_line_error(*run_cli(capsys, "inspect", cut), f"{cut}: truncated", str(end), str(half))


def test_a_generated_file_cut_in_half_is_not_reported_as_fine(jet_file, tmp_path, capsys):
    # The directory of a file hepdl writes sits near its start: without the header check,
    # inspect listed the cut file as whole.
    cut = tmp_path / "jets.root"
    full, half = _cut_in_half(jet_file, cut)
    assert_one_line_error(*run_cli(capsys, "inspect", cut), "truncated ROOT file", f"{full} bytes long",
                          f"has {half} bytes")
    out = tmp_path / "shard"
    assert_one_line_error(*prepare(capsys, cut, out), f"{cut}: truncated ROOT file")
    assert sorted(os.listdir(tmp_path)) == ["jets.root"]


def test_a_64_bit_header_and_a_header_cut_short(tmp_path):
    big = tmp_path / "big.root"  # fVersion >= 1000000: fEND is a 64-bit integer (files over 2 GB)
    big.write_bytes(b"root" + struct.pack(">iiq", 1_063_206, 100, 5_000_000_000) + bytes(100))
    with pytest.raises(InputError, match=r"says it is 5000000000 bytes long, but it has 120 bytes"):
        read_events(big, "events", ["x"])
    (tmp_path / "stub.root").write_bytes(b"root\x00\x00")
    with pytest.raises(InputError, match=r"stub\.root: truncated ROOT file: 6 bytes, shorter than ROOT's file header"):
        read_events(tmp_path / "stub.root", "events", ["x"])


# ------------------------------------------------------------ corrupt baskets


def _corrupt_basket(path: Path, tree: str, branch: str, basket: int) -> tuple[int, int]:
    """Overwrite bytes in the middle of a compressed basket; returns its entry range."""
    b = uproot.open(path)[tree][branch]
    seek, size = int(b.member("fBasketSeek")[basket]), int(b.basket_compressed_bytes(basket))
    assert b.basket_uncompressed_bytes(basket) > size  # compressed, so the damage cannot pass unseen
    lo, hi = (int(x) for x in b.basket_entry_start_stop(basket))
    raw = bytearray(path.read_bytes())
    raw[seek + size // 2: seek + size // 2 + 8] = b"\x00\xff" * 4
    path.write_bytes(bytes(raw))
    return lo, hi


def test_check_names_the_branch_and_basket_that_fails_to_decompress(jet_file, tmp_path, capsys):
    bad = tmp_path / "bad.root"
    shutil.copy(jet_file, bad)
    lo, hi = _corrupt_basket(bad, "events", "calo_e", 2)
    where = f"{bad}, tree 'events': branch 'calo_e', basket 2 (entries {lo}..{hi - 1}): cannot be decompressed"
    # Listing reads no basket, so it cannot see the damage; --check does.
    assert run_cli(capsys, "inspect", bad)[0] == 0
    rc, err = run_cli(capsys, "inspect", bad, "--check")
    assert_one_line_error(rc, err, where)
    # only the other branches: no error
    assert run_cli(capsys, "inspect", bad, "--check", "--branch", "calo_eta", "--branch", "jet_pt")[0] == 0
    # a reader names the basket as well, and prepare leaves nothing behind
    with pytest.raises(InputError, match=where.replace("(", r"\(").replace(")", r"\)")):
        read_events(bad, "events", ["calo_eta", "calo_e"])
    assert_one_line_error(*prepare(capsys, bad, tmp_path / "shard"), where)
    assert sorted(os.listdir(tmp_path)) == ["bad.root"]


def test_check_of_a_sound_file_reads_every_basket(jet_file, capsys):
    report = check_tree(jet_file, "events", step_size=150)  # chunks that straddle baskets
    assert report.n_branches == 17 and report.n_baskets == 4 * 17 and report.n_entries == 800
    assert run_cli(capsys, "inspect", jet_file, "--check")[0] == 0
    assert_one_line_error(*run_cli(capsys, "inspect", jet_file, "--check", "--branch", "calo_ee"),
                          "no branch 'calo_ee'; closest branches: calo_e")
    assert_one_line_error(*run_cli(capsys, "inspect", jet_file, "--branch", "calo_e"), "add --check")


@needs_real
def test_check_finds_a_corrupt_basket_in_a_file_written_by_root(tmp_path, capsys):
    bad = tmp_path / "HZZ.root"
    shutil.copy(REAL / "uproot-HZZ.root", bad)
    lo, hi = _corrupt_basket(bad, "events", "Jet_Px", 0)
    assert_one_line_error(*run_cli(capsys, "inspect", bad, "--check"),
                          f"branch 'Jet_Px', basket 0 (entries {lo}..{hi - 1}): cannot be decompressed")
    report = check_tree(REAL / "uproot-small-evnt-tree-fullsplit.root", "tree")  # split object branches
    assert report.n_branches > 30 and report.n_entries == 100
    rntuple = check_tree(REAL / "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root",
                         "Events", ["nJet", "Jet_pt"])
    assert rntuple.kind == "RNTuple" and rntuple.n_branches == 2 and rntuple.n_entries == 10


# ----------------------------------------------------- empty, not ROOT, trees


def test_empty_and_text_files(tmp_path, capsys):
    (tmp_path / "empty.root").write_bytes(b"")
    (tmp_path / "notes.root").write_text("run 1: jets\n" * 50)
    for name, what in (("empty.root", "empty file (0 bytes)"), ("notes.root", "not a ROOT file")):
        path = tmp_path / name
        assert_one_line_error(*run_cli(capsys, "inspect", path), f"{path}: {what}")
        assert_one_line_error(*prepare(capsys, path, tmp_path / "shard"), f"{path}: {what}")
    assert sorted(os.listdir(tmp_path)) == ["empty.root", "notes.root"]


def test_a_tree_with_zero_entries(tmp_path, capsys):
    path = tmp_path / "none.root"
    with uproot.recreate(path) as f:
        f.mktree("events", {"jet_pt": np.float32, "calo_e": "var * float32"})
    with pytest.raises(InputError, match=r"tree 'events' in .*none\.root: the input has no entries"):
        read_events(path, "events", ["jet_pt", "calo_e"])
    assert run_cli(capsys, "inspect", path)[0] == 0  # listing an empty tree is no error
    assert_one_line_error(*prepare(capsys, path, tmp_path / "shard"), f"{path}, tree 'events': the tree has no entries")
    assert os.listdir(tmp_path) == ["none.root"]


def test_missing_tree_and_branch_from_the_cli(jet_file, tmp_path, capsys):
    out = tmp_path / "shard"
    assert_one_line_error(*prepare(capsys, jet_file, out, "--tree", "Events"),
                          f"{jet_file}: no tree 'Events'; did you mean 'events'")
    assert_one_line_error(*prepare(capsys, jet_file, out, "--fields", "calo_e=tower_e"),
                          f"{jet_file}, tree 'events': no branch 'tower_e' (for field 'calo_e')")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------ values and counts


@pytest.mark.parametrize(("bad_value", "kind"), [(np.nan, "NaN"), (np.inf, "+inf"), (-np.inf, "-inf")])
def test_nonfinite_values_name_the_branch_and_the_field(tmp_path, capsys, bad_value, kind):
    data = synthetic_jets(60, 4)
    pt = np.asarray(data.pop("jet_pt")).copy()
    pt[17] = bad_value
    e = ak.to_numpy(ak.flatten(data["calo_e"])).copy()
    counts = ak.to_numpy(ak.num(data["calo_e"]))
    e[counts[:40].sum()] = bad_value  # the first tower of entry 40
    data["calo_e"] = ak.unflatten(e, counts)
    path = tmp_path / "user.root"
    write_tree(path, "events", {"fj_pt": pt, **data})
    with pytest.raises(InputError, match=rf"branch 'fj_pt' \(field 'pt'\) has NaN or infinite values in 1 "
                                         rf"entries \(first: entry 17, {re.escape(kind)}"):
        read_events(path, "events", {"pt": "fj_pt"})
    with pytest.raises(InputError, match=rf"branch 'calo_e' \(field 'towers.e'\) .* \(first: entry 40, {re.escape(kind)}"):
        read_events(path, "events", {"towers": "calo"})
    with pytest.raises(InputError, match=r"branch 'calo_e' has NaN"):  # same name: said once
        read_events(path, "events", ["calo_e"])
    out = tmp_path / "shard"
    assert_one_line_error(*prepare(capsys, path, out, "--fields", "jet_pt=fj_pt"), str(path),
                          "branch 'fj_pt' (field 'jet_pt') has NaN or infinite values", kind)
    assert os.listdir(tmp_path) == ["user.root"]


def test_jagged_branches_of_one_collection_whose_counts_disagree(tmp_path, capsys):
    data = synthetic_jets(50, 6)
    n_other = ak.num(data["calo_e"]).to_numpy().copy()
    n_other[9] += 1  # entry 9 has one energy more than it has eta values
    other_e = ak.unflatten(np.ones(n_other.sum(), np.float32), n_other)
    path = tmp_path / "user.root"
    branches = {**{k: v for k, v in data.items() if k != "calo_e"}, "calo_e": other_e}
    with uproot.recreate(path) as f:  # each jagged branch with its own counter, as some ntuples have
        f.mktree("events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()})
        f["events"].extend(branches)
    assert {"ncalo_eta", "ncalo_e"} <= set(uproot.open(path)["events"].keys())
    message = r"jagged branches 'calo_eta' and 'calo_e' have different lengths in 1 entries \(first: chunk entry 9\)"
    with pytest.raises(InputError, match=message):
        read_events(path, "events", ["calo_eta", "calo_e"])
    with pytest.raises(InputError, match=r"jagged branches 'calo_eta' \(field 'c\.eta'\) and 'calo_e' \(field 'c\.e'\) "
                                         r"have different lengths in 1 entries"):
        read_events(path, "events", {"c": "calo"})
    assert_one_line_error(*prepare(capsys, path, tmp_path / "shard"), str(path), "jagged branches 'calo_eta' and 'calo_e' have different lengths")
    assert os.listdir(tmp_path) == ["user.root"]


def test_an_error_of_the_representation_names_the_branch(tmp_path, capsys):
    from hepdl.generate import generate_neutrino

    generate_neutrino(tmp_path / "nu.root", n_events=30, seed=3, progress=False)
    events = uproot.open(tmp_path / "nu.root")["events"].arrays()
    flat = {k: events[k] for k in events.fields if not k.startswith("n")}
    view = ak.to_numpy(ak.flatten(flat.pop("hit_view"))).copy()
    view[5] = 7  # neither view 0 (XZ) nor 1 (YZ)
    flat["hit_v"] = ak.unflatten(view, ak.num(events["hit_view"]))
    write_tree(tmp_path / "user.root", "events", flat)
    rc, err = run_cli(capsys, "prepare", "neutrino", "--input", tmp_path / "user.root", "--output",
                      tmp_path / "shard", "--seed", "1", "--no-progress", "--fields", "hit_view=hit_v")
    assert_one_line_error(rc, err, f"{tmp_path / 'user.root'}, tree 'events', entries 0..",
                          "branch 'hit_v' (field 'hit_view') must be 0 (XZ) or 1 (YZ)")
    assert sorted(os.listdir(tmp_path)) == ["nu.root", "user.root"]


# ----------------------------------------------------------- model files


class _Payload:
    """Unpickling it would create a directory: the code a malicious model file would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _write_not_a_model(case: str, path: Path, marker: Path) -> str:
    """Write a file that is not a hepdl model; returns the reason the error must give."""
    if case == "text":
        path.write_text("weights: see the wiki\n")
        return "a text file"
    if case == "empty":
        path.write_bytes(b"")
        return "empty file, 0 bytes"
    if case == "random":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
        return "not the zip archive torch.save writes"
    if case == "pickle_with_code":
        path.write_bytes(pickle.dumps(_Payload(str(marker))))
        return "a Python pickle"
    if case == "torch_with_code":
        torch.save({"format": "hepdl-model-v1", "state_dict": {}, "x": _Payload(str(marker))}, path)
        return "holding code or classes"
    if case == "torch_module":
        torch.save(torch.nn.Linear(3, 2), path)
        return "torch.nn.modules.linear.Linear"
    if case == "state_dict":
        torch.save(torch.nn.Linear(3, 2).state_dict(), path)
        return "without hepdl's format mark"
    raise AssertionError(case)


NOT_MODELS = ["text", "empty", "random", "pickle_with_code", "torch_with_code", "torch_module", "state_dict"]


@pytest.mark.parametrize("case", NOT_MODELS)
def test_a_file_that_is_not_a_hepdl_model(case, tmp_path, capsys, jet_file):
    path = tmp_path / "model.pt"
    marker = tmp_path / "code-ran"
    reason = _write_not_a_model(case, path, marker)
    with pytest.raises(ModelFileError) as caught:
        load_model(path, device="cpu")
    message = str(caught.value)
    assert message.startswith(f"not a hepdl model file: {path} (") and reason in message, message
    assert "weights_only" not in message and "\n" not in message
    for argv in (["score", path, jet_file, "-o", tmp_path / "scores"],
                 ["export", "onnx", path, "-o", tmp_path / "model.onnx"]):
        rc, err = run_cli(capsys, *argv)
        assert_one_line_error(rc, err, f"error: not a hepdl model file: {path} (", reason)
        assert "weights_only" not in err
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


def test_a_text_model_from_the_command_line_has_no_traceback(tmp_path, jet_file):
    (tmp_path / "model.pt").write_text("not a model\n")
    proc = subprocess.run([sys.executable, "-m", "hepdl.cli", "score", str(tmp_path / "model.pt"), jet_file, "-o",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"hepdl score: error: not a hepdl model file: {tmp_path / 'model.pt'} " \
                                  "(a text file, starting 'not a model\\n')"


# --------------------------------------------------- outputs not writable


@contextmanager
def small_tmpfs(directory: Path, *, size: str = "64k", read_only: bool = False):
    """A tmpfs of ``size`` mounted at ``directory`` (read-only if asked), unmounted afterwards;
    skips the test where it cannot be mounted (not root, no mount namespace rights)."""
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make a read-only or full file system")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): a read-only or full "
                    "file system needs mount rights (root)")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True, timeout=30)


def _fill(directory: Path) -> Path:
    """Fill a file system to the last byte; returns the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: closing has nothing left to flush
        try:
            while f.write(b"\0" * 512):
                pass
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory) -> tuple[str, str]:
    """An untrained two-view CVN saved as a hepdl model, and a neutrino file to score."""
    from hepdl.generate import generate_neutrino
    from hepdl.models import TwoViewCVN, save_model
    from hepdl.represent import resolve_spec

    tmp = tmp_path_factory.mktemp("model")
    generate_neutrino(tmp / "nu.root", n_events=40, seed=3, progress=False)
    spec = resolve_spec("neutrino", {"pixel_map": {"planes": 20, "cells": 16}})
    net = TwoViewCVN(channels=[4], stem_channels=4, head=[], n_outputs=3, seed=2)
    save_model(tmp / "nu.pt", net, architecture=net.config, inputs=["pixel_maps"], task="neutrino",
               classes=["numu_cc", "nue_cc", "nc"], provenance={"sources": [{"tree": "events"}]},
               representation={"spec": spec, "fields": {f: f for f in ("hit_view", "hit_plane", "hit_cell", "hit_e")}})
    return str(tmp / "nu.pt"), str(tmp / "nu.root")


def test_prepare_and_score_into_a_read_only_file_system(tmp_path, capsys, jet_file, toy_model):
    with small_tmpfs(tmp_path / "ro", read_only=True) as ro:
        shard = ro / "shards" / "jets"
        assert_one_line_error(*prepare(capsys, jet_file, shard), f"cannot write {shard}: read-only file system")
        rc, err = run_cli(capsys, "score", toy_model[0], toy_model[1], "-o", ro / "scores", "--device", "cpu")
        assert_one_line_error(rc, err, f"cannot write {ro / 'scores' / 'nu.scores.root'}: read-only file system")
        assert os.listdir(ro) == []


def test_prepare_and_score_onto_a_full_disk(tmp_path, capsys, jet_file, toy_model):
    with small_tmpfs(tmp_path / "full", size="64k") as full:
        shard = full / "jets"  # the shard is ~4 MB: the disk fills while it is written
        assert_one_line_error(*prepare(capsys, jet_file, shard), f"cannot write {shard}: no space left on device")
        assert os.listdir(full) == []  # the partial shard is gone
        filler = _fill(full)
        rc, err = run_cli(capsys, "score", toy_model[0], toy_model[1], "-o", full, "--device", "cpu")
        assert_one_line_error(rc, err, f"cannot write {full / 'nu.scores.root'}: no space left on device")
        assert os.listdir(full) == ["filler"]
        filler.unlink()
        assert run_cli(capsys, "score", toy_model[0], toy_model[1], "-o", full, "--device", "cpu")[0] == 0
        assert os.listdir(full) == ["nu.scores.root"]  # with room again, the same command works


def test_an_output_parent_that_is_missing_or_a_file(tmp_path, capsys, jet_file):
    (tmp_path / "results").write_text("a file where a folder should be")
    shard = tmp_path / "results" / "shards" / "jets"
    assert_one_line_error(*prepare(capsys, jet_file, shard), f"cannot write {shard}: not a directory")
    assert os.listdir(tmp_path) == ["results"]
    missing = tmp_path / "new" / "shards" / "jets"  # missing parents are made
    assert prepare(capsys, jet_file, missing, "--image-size", "8", "8", "--track-length", "4")[0] == 0
    assert (missing / "meta.json").is_file()


def test_output_errors_are_hepdl_errors_and_os_errors():
    err = OutputError("cannot write x: read-only file system")
    assert isinstance(err, OSError) and str(err) == "cannot write x: read-only file system"
