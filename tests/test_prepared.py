"""Prepared shards: round trip, metadata, split stability, PreparedDataset, CLI, bad input."""

from __future__ import annotations

import json
import os

import awkward as ak
import numpy as np
import pytest
import torch

from hepdl.cli import main
from hepdl.errors import ConfigError, InputError
from hepdl.io import read_events, write_tree
from hepdl.represent import (
    PreparedDataset,
    default_spec,
    load_meta,
    prepare_file,
    representation,
    resolve_spec,
)
from hepdl.represent.split import assign_split

JET_FIELDS = ["calo_eta", "calo_phi", "calo_e", "trk_pt", "trk_eta", "trk_phi", "trk_d0", "trk_z0",
              "trk_charge", "jet_pt", "jet_eta", "jet_phi", "jet_mass", "label", "weight"]


def synthetic_jets(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    nc, nt = rng.integers(1, 40, n), rng.integers(0, 15, n)
    jeta, jphi = rng.uniform(-2, 2, n), rng.uniform(-np.pi, np.pi, n)

    def around(centre, counts, width):
        return ak.unflatten((np.repeat(centre, counts) + rng.normal(0, width, counts.sum())).astype(np.float32), counts)

    phi_wrap = lambda a: (a + np.pi) % (2 * np.pi) - np.pi  # noqa: E731
    return {
        "calo_eta": around(jeta, nc, 0.3),
        "calo_phi": ak.unflatten(phi_wrap(ak.to_numpy(ak.flatten(around(jphi, nc, 0.3)))).astype(np.float32), nc),
        "calo_e": ak.unflatten(rng.exponential(10, nc.sum()).astype(np.float32), nc),
        "trk_pt": ak.unflatten(rng.exponential(5, nt.sum()).astype(np.float32), nt),
        "trk_eta": around(jeta, nt, 0.2),
        "trk_phi": ak.unflatten(phi_wrap(ak.to_numpy(ak.flatten(around(jphi, nt, 0.2)))).astype(np.float32), nt),
        "trk_d0": ak.unflatten(rng.normal(0, 0.1, nt.sum()).astype(np.float32), nt),
        "trk_z0": ak.unflatten(rng.normal(0, 1, nt.sum()).astype(np.float32), nt),
        "trk_charge": ak.unflatten(rng.choice([-1, 1], nt.sum()).astype(np.int32), nt),
        "jet_pt": rng.uniform(250, 350, n).astype(np.float32),
        "jet_eta": jeta.astype(np.float32),
        "jet_phi": jphi.astype(np.float32),
        "jet_mass": rng.uniform(10, 150, n).astype(np.float32),
        "label": rng.integers(0, 2, n).astype(np.int32),
        "weight": rng.uniform(0.5, 1.5, n).astype(np.float32),
    }


@pytest.fixture(scope="module")
def jet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prep") / "jets_sim.root"
    write_tree(str(path), "events", synthetic_jets(300, 5))
    return str(path)


def test_shard_round_trip_matches_library_function(jet_file, tmp_path):
    out = str(tmp_path / "shard")
    meta = prepare_file("jets", jet_file, out, seed=1, step_size=70, domain="sim")
    assert load_meta(out) == json.loads(json.dumps(meta))
    assert meta["format"] == "hepdl-prepared-v1" and meta["n_entries"] == 300
    assert meta["source"]["domain"] == "sim" and meta["source"]["entries"] == 300
    assert meta["spec"] == default_spec("jets") and meta["fields"]["label"] == "label"
    assert meta["feature_names"]["expert"][:2] == ["mass", "tau1"]
    expected = representation(read_events(jet_file, "events", JET_FIELDS), meta["spec"])
    for name, info in meta["arrays"].items():
        arr = np.load(os.path.join(out, f"{name}.npy"), mmap_mode="r")
        assert list(arr.shape) == info["shape"] and str(arr.dtype) == info["dtype"]
        if name != "split":
            np.testing.assert_allclose(arr, expected[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert meta["arrays"]["jet_images"]["shape"] == [300, 3, 32, 32]
    assert meta["arrays"]["label"]["dtype"] == "int64" and meta["arrays"]["track_mask"]["dtype"] == "bool"
    assert not [p for p in os.listdir(tmp_path) if p != "shard"]  # no temporary left behind


def test_split_is_stable_across_chunking_and_runs_and_follows_the_seed(jet_file, tmp_path):
    a = prepare_file("jets", jet_file, str(tmp_path / "a"), seed=4, step_size=37)
    b = prepare_file("jets", jet_file, str(tmp_path / "b"), seed=4, step_size=1000)
    sa, sb = (np.load(str(tmp_path / d / "split.npy")) for d in "ab")
    np.testing.assert_array_equal(sa, sb)
    assert a["split"] == b["split"] == {"seed": 4, "fractions": [0.6, 0.2, 0.2], "key": a["split"]["key"]}
    # The same identity gives the same split in any other context (e.g. a later shard).
    np.testing.assert_array_equal(assign_split("jets_sim.root", np.arange(300), 4), sa)
    other = assign_split("jets_sim.root", np.arange(300), 5)
    assert (other != sa).mean() > 0.3
    big = assign_split("x.root", np.arange(100_000), 4, (0.5, 0.3, 0.2))
    np.testing.assert_allclose(np.bincount(big) / big.size, [0.5, 0.3, 0.2], atol=0.01)


def test_prepared_dataset(jet_file, tmp_path):
    out1, out2 = str(tmp_path / "s1"), str(tmp_path / "s2")
    prepare_file("jets", jet_file, out1, seed=2)
    prepare_file("jets", jet_file, out2, seed=2)
    ds = PreparedDataset([out1, out2], "train", arrays=("jet_images", "expert", "label", "weight"))
    split = np.load(os.path.join(out1, "split.npy"))
    assert len(ds) == 2 * (split == 0).sum()
    item = ds[0]
    assert item["jet_images"].shape == (3, 32, 32) and item["label"].dtype == torch.int64
    labels = np.load(os.path.join(out1, "label.npy"))
    np.testing.assert_array_equal(ds.numpy("label"), np.concatenate([labels[split == 0]] * 2))
    idx = [len(ds) - 1, 0, 5, len(ds) // 2 + 3]
    batch = ds.batch(idx)
    for j, i in enumerate(idx):
        for name in ds.names:
            torch.testing.assert_close(batch[name][j], ds[i][name])
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)
    first = next(iter(loader))
    assert first["jet_images"].shape == (16, 3, 32, 32)
    torch.testing.assert_close(first["expert"], ds.batch(range(16))["expert"])
    assert len(PreparedDataset([out1], None, arrays=("label",))) == 300
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(ConfigError, match="split"):
        PreparedDataset([out1], "training")


def test_missing_branch_names_it_and_leaves_nothing(tmp_path):
    arrays = synthetic_jets(20, 1)
    del arrays["calo_e"]
    path = str(tmp_path / "broken.root")
    write_tree(path, "events", arrays)
    out = str(tmp_path / "shard")
    with pytest.raises(InputError, match="calo_e"):
        prepare_file("jets", path, out, seed=0)
    assert os.listdir(tmp_path) == ["broken.root"]
    with pytest.raises(InputError, match="no tree 'jets'"):
        prepare_file("jets", path, out, tree="jets", seed=0)
    with pytest.raises(ConfigError, match="unknown representation setting"):
        resolve_spec("jets", {"image": {"pixels": 3}})


def test_cli_prepare_with_field_mapping_and_options(tmp_path, capsys):
    arrays = synthetic_jets(40, 3)
    renamed = {("tower_" + k[5:] if k.startswith("calo_") else k): v for k, v in arrays.items() if k != "label"}
    path = str(tmp_path / "user.root")
    write_tree(path, "t", renamed)
    out = str(tmp_path / "shard")
    rc = main(["prepare", "jets", "--input", path, "--tree", "t", "--output", out, "--seed", "9",
               "--fields", "calo_eta=tower_eta", "calo_phi=tower_phi", "calo_e=tower_e",
               "--image-size", "16", "16", "--channels", "calo_et", "--track-length", "5",
               "--domain", "data", "--no-progress"])
    assert rc == 0
    meta = load_meta(out)
    assert meta["arrays"]["jet_images"]["shape"] == [40, 1, 16, 16]
    assert meta["arrays"]["tracks"]["shape"] == [40, 5, 6]
    assert meta["fields"]["calo_e"] == "tower_e" and "label" not in meta["fields"]
    assert (np.load(os.path.join(out, "label.npy")) == -1).all()
    assert meta["source"]["domain"] == "data"
    rc = main(["prepare", "jets", "--input", path, "--tree", "t", "--output", out, "--seed", "9", "--no-progress"])
    assert rc == 2 and "calo_eta" in capsys.readouterr().err


def test_neutrino_shard(tmp_path):
    from hepdl.generate import generate_neutrino

    path = str(tmp_path / "nu.root")
    generate_neutrino(path, variant="sim", n_events=60, seed=3)
    out = str(tmp_path / "nu_shard")
    meta = prepare_file("neutrino", path, out, seed=1, spec={"pixel_map": {"planes": 50}})
    assert meta["arrays"]["pixel_maps"]["shape"] == [60, 2, 50, 80]
    assert meta["arrays"]["expert"]["shape"] == [60, 10] and "nu_energy" in meta["arrays"]
    ds = PreparedDataset([out], "test", arrays=("pixel_maps", "label", "nu_energy"))
    assert len(ds) == (np.load(os.path.join(out, "split.npy")) == 2).sum()
    assert ds.meta["task"] == "neutrino"


def test_finiteness_check_of_representations():
    from hepdl.represent.prepared import _all_finite

    base = np.linspace(-3e38, 3e38, 4096, dtype=np.float32).reshape(4, 32, 32)
    assert _all_finite(base) and _all_finite(base.astype(np.float64)) and _all_finite(base[:, ::2])
    for bad in (np.nan, np.inf, -np.inf):
        for dtype in (np.float32, np.float64):
            a = base.astype(dtype)
            a[3, 31, 31 if dtype == np.float32 else 0] = bad
            assert not _all_finite(a) and not _all_finite(a[:, :, ::-1])
    tiny = np.array([-0.0, 1e-45, np.finfo(np.float32).max, -np.finfo(np.float32).max], dtype=np.float32)
    assert _all_finite(tiny)


def test_threads_give_a_byte_identical_shard(jet_file, tmp_path):
    # Several chunks (read ahead in a thread) of several blocks (written in a thread), taus
    # on two threads: the same bytes as one thread.
    one = str(tmp_path / "one")
    two = str(tmp_path / "two")
    prepare_file("jets", jet_file, one, seed=3, step_size=70, block_size=32)
    meta = prepare_file("jets", jet_file, two, seed=3, step_size=70, block_size=32, threads=2)
    for name in meta["arrays"]:
        with open(os.path.join(one, f"{name}.npy"), "rb") as a, open(os.path.join(two, f"{name}.npy"), "rb") as b:
            assert a.read() == b.read(), name
    with pytest.raises(ConfigError, match="threads"):
        prepare_file("jets", jet_file, str(tmp_path / "zero"), seed=3, threads=0)


def test_a_failure_while_reading_ahead_leaves_nothing(tmp_path):
    arrays = synthetic_jets(200, 4)
    arrays["weight"][150] = np.nan  # in the third chunk, read by the read-ahead thread
    path = str(tmp_path / "nan.root")
    write_tree(path, "events", arrays)
    with pytest.raises(InputError, match="weight"):
        prepare_file("jets", path, str(tmp_path / "shard"), seed=0, step_size=60, threads=2)
    assert os.listdir(tmp_path) == ["nan.root"]


def test_compact_storage_halves_or_sparsifies_the_large_arrays(tmp_path):
    from toy_trained_models import SPEC, write_toy_file

    from hepdl.represent.prepared import SparseRows

    write_toy_file(tmp_path / "toy.root", 300, seed=2)
    shards = {}
    for storage in ("float32", "float16", "sparse"):
        shards[storage] = str(tmp_path / storage)
        meta = prepare_file("jets", str(tmp_path / "toy.root"), shards[storage], spec=SPEC, seed=1, storage=storage)
        assert meta["storage"] == storage

    def disk(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))

    assert disk(shards["float16"]) < 0.55 * disk(shards["float32"])
    assert disk(shards["sparse"]) < 0.25 * disk(shards["float32"])  # ~25 of 768 toy pixels lit
    sparse_meta = load_meta(shards["sparse"])
    assert sparse_meta["arrays"]["jet_images"]["layout"] == "sparse"
    assert sparse_meta["arrays"]["tracks"]["dtype"] == "float16" and sparse_meta["arrays"]["expert"]["dtype"] == "float32"
    arrays = ("jet_images", "tracks", "track_mask", "expert", "label", "jet_pt")
    full = {s: PreparedDataset([p], "train", arrays) for s, p in shards.items()}
    rows = np.arange(0, len(full["float32"]), 7)
    b32, b16, bsp = (full[s].batch(rows) for s in ("float32", "float16", "sparse"))
    for name in ("jet_images", "tracks"):  # the loader expands: float32, the values rounded to half precision
        assert b16[name].dtype == torch.float32
        np.testing.assert_array_equal(b16[name].numpy(), b32[name].numpy().astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(bsp[name].numpy(), b16[name].numpy())
    for name in ("track_mask", "expert", "label", "jet_pt"):
        np.testing.assert_array_equal(bsp[name].numpy(), b32[name].numpy())
    np.testing.assert_array_equal(full["sparse"].numpy("jet_images"), full["float16"].numpy("jet_images"))
    # the sparse array reads as dense rows whatever the key
    from hepdl.represent.prepared import load_array

    images = load_array(shards["sparse"], "jet_images")
    dense = np.load(os.path.join(shards["float16"], "jet_images.npy"))
    assert isinstance(images, SparseRows) and images.shape == dense.shape
    np.testing.assert_array_equal(images[5], dense[5])
    np.testing.assert_array_equal(images[10:20], dense[10:20])
    np.testing.assert_array_equal(images[np.array([3, 1, 250])], dense[[3, 1, 250]])
    np.testing.assert_array_equal(np.asarray(images), dense)


def test_half_precision_overflow_is_an_error_naming_the_array(tmp_path):
    from toy_trained_models import write_toy_file

    write_toy_file(tmp_path / "toy.root", 50, seed=2)
    spec = {"image": {"size": [8, 8], "normalise": "none"}}  # raw E_T per pixel: TeV-scale jets fit, 1e5 GeV not
    fields = ["calo_eta", "calo_phi", "calo_e", "trk_pt", "trk_eta", "trk_phi", "jet_pt", "jet_eta", "jet_phi",
              "jet_mass", "label"]
    events = read_events(tmp_path / "toy.root", "events", fields)
    write_tree(tmp_path / "hot.root", "events", {**{f: events[f] for f in fields}, "calo_e": events["calo_e"] * 1e5})
    with pytest.raises(InputError, match=r"'jet_images' representation .*beyond float16's range"):
        prepare_file("jets", str(tmp_path / "hot.root"), str(tmp_path / "out"), spec=spec, storage="float16")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="storage"):
        prepare_file("jets", str(tmp_path / "toy.root"), str(tmp_path / "out"), storage="bfloat8")
