"""The community's jet tables: top-tagging HDF5 (pandas table, pandas fixed, plain h5py) and JetClass Parquet.

Each test writes a tiny file in exactly the layout of the public dataset (the column names, the
zero padding, pandas' own ``to_hdf``, awkward's own ``to_parquet``), reads it through the same
field mapping as a ROOT file, and checks what comes out against the toy it was written from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from toy_trained_models import SPEC, toy_jets

import hepdl
from hepdl.errors import InputError
from hepdl.io import read_events
from hepdl.represent import prepare_file
from hepdl.represent.prepared import load_array

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SLOTS = 200  # the reference files' 200 constituent slots
N = 240

#: the top-tagging layout as the jet task's logical fields (it has no tracks: all constituents stand in)
TOP_FIELDS = {"calo_eta": "part_eta", "calo_phi": "part_phi", "calo_e": "part_energy",
              "trk_pt": "part_pt", "trk_eta": "part_eta", "trk_phi": "part_phi", "label": "is_signal_new"}
#: the JetClass layout: tracks are the charged constituents, the label W against QCD
JETCLASS_FIELDS = {"calo_eta": "part_eta", "calo_phi": "part_phi", "calo_e": "part_energy",
                   "trk_pt": "charged_pt", "trk_eta": "charged_eta", "trk_phi": "charged_phi",
                   "trk_d0": "charged_d0val", "trk_z0": "charged_dzval", "trk_charge": "charged_charge",
                   "label": "label_Wqq_vs_QCD"}
JETCLASS_LABELS = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")


def toy_four_momenta(n: int = N, seed: int = 3) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The toy jets' calorimeter constituents as zero-padded massless (E, PX, PY, PZ) arrays, and the labels."""
    toy = toy_jets(n, seed)
    eta, phi, e = (ak.to_numpy(ak.fill_none(ak.pad_none(toy[f], SLOTS, axis=1), 0.0)) for f in
                   ("calo_eta", "calo_phi", "calo_e"))
    pt = e / np.cosh(eta)
    return {"E": e, "PX": pt * np.cos(phi), "PY": pt * np.sin(phi), "PZ": pt * np.sinh(eta)}, toy["label"]


def top_tagging_frame(momenta: dict[str, np.ndarray], label: np.ndarray) -> pd.DataFrame:
    """The reference files' columns, in their order: E_0, PX_0, PY_0, PZ_0, E_1, ..., then truth and labels."""
    columns = {f"{p}_{i}": momenta[p][:, i] for i in range(SLOTS) for p in ("E", "PX", "PY", "PZ")}
    columns |= {"truthE": np.zeros(len(label)), "truthPX": np.zeros(len(label)), "truthPY": np.zeros(len(label)),
                "truthPZ": np.zeros(len(label)), "ttv": np.zeros(len(label), np.int64),
                "is_signal_new": np.asarray(label, np.int64)}
    return pd.DataFrame(columns)


def write_pandas_table(path, frame: pd.DataFrame) -> None:
    frame.to_hdf(path, key="table", format="table", mode="w")


def write_plain_h5(path, momenta: dict[str, np.ndarray], label: np.ndarray, group: str = "jets") -> None:
    """The documented plain layout: one (jets, slots) dataset per four-momentum component, 1-D columns."""
    with h5py.File(path, "w") as f:
        g = f.create_group(group)
        for p, values in momenta.items():
            g.create_dataset(p, data=values)
        g.create_dataset("is_signal_new", data=np.asarray(label, np.int64))


def jetclass_arrays(n: int = N, seed: int = 4) -> dict[str, np.ndarray | ak.Array]:
    """JetClass's columns for the toy jets (W for the two-prong ones, QCD otherwise)."""
    toy = toy_jets(n, seed)
    rng = np.random.default_rng(seed)
    counts = ak.num(toy["calo_e"])
    eta, phi, e = (ak.to_numpy(ak.flatten(toy[f])) for f in ("calo_eta", "calo_phi", "calo_e"))
    pt = e / np.cosh(eta)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    charge = rng.choice([-1.0, 0.0, 1.0], size=len(e))
    sum_px, sum_py, sum_pz, sum_e = (np.add.reduceat(v, np.r_[0, np.cumsum(counts)[:-1]]) for v in (px, py, pz, e))
    jet_pt = np.hypot(sum_px, sum_py)
    jet_eta, jet_phi = np.arcsinh(sum_pz / jet_pt), np.arctan2(sum_py, sum_px)
    dphi = np.mod(phi - np.repeat(jet_phi, counts) + np.pi, 2 * np.pi) - np.pi
    jagged = {"part_px": px, "part_py": py, "part_pz": pz, "part_energy": e,
              "part_deta": eta - np.repeat(jet_eta, counts), "part_dphi": dphi,
              "part_charge": charge, "part_d0val": rng.normal(0, 0.1, len(e)) * (charge != 0),
              "part_dzval": rng.normal(0, 0.1, len(e)) * (charge != 0)}
    out: dict[str, np.ndarray | ak.Array] = {k: ak.unflatten(v.astype(np.float32), counts) for k, v in jagged.items()}
    out |= {"jet_pt": jet_pt, "jet_eta": jet_eta, "jet_phi": jet_phi,
            "jet_energy": sum_e, "jet_nparticles": np.asarray(counts, np.float32),
            "jet_sdmass": toy["jet_mass"], "jet_tau1": rng.random(n), "jet_tau2": rng.random(n)}
    out |= {f"label_{c}": np.asarray(toy["label"] == (1 if c == "Wqq" else 0)) & (c in ("Wqq", "QCD"))
            for c in JETCLASS_LABELS}
    return out


def write_jetclass(path, arrays: dict, row_group_size: int = 64) -> None:
    ak.to_parquet(ak.Array(arrays), path, row_group_size=row_group_size)


# --- reading ---------------------------------------------------------------------------------------


def test_pandas_table_layout_is_what_pytables_writes(tmp_path):
    """What the reader relies on: one compound dataset, columns grouped in values_block_* by dtype."""
    momenta, label = toy_four_momenta(20)
    write_pandas_table(tmp_path / "top.h5", top_tagging_frame(momenta, label))
    with h5py.File(tmp_path / "top.h5") as f:
        table = f["table/table"]
        assert f["table"].attrs["pandas_type"] == b"frame_table"
        assert table.dtype.names == ("index", "values_block_0", "values_block_1")
        assert table.dtype["values_block_0"].shape == (4 * SLOTS + 4,)  # every float64 column in one block


@pytest.mark.parametrize("layout", ["pandas_table", "pandas_fixed", "plain_h5py"])
def test_top_tagging_layouts_give_the_constituents_and_the_jet(tmp_path, layout):
    momenta, label = toy_four_momenta()
    path, tree = tmp_path / "top.h5", "table"
    if layout == "pandas_table":
        write_pandas_table(path, top_tagging_frame(momenta, label))
    elif layout == "pandas_fixed":
        top_tagging_frame(momenta, label).to_hdf(path, key="table", mode="w")
    else:
        write_plain_h5(path, momenta, label)
        tree = "jets"
    fields = {"e": "part_energy", "pt": "part_pt", "eta": "part_eta", "phi": "part_phi", "jet_pt": "jet_pt",
              "jet_mass": "jet_mass", "jet_eta": "jet_eta", "label": "is_signal_new"}
    events = read_events(str(path), tree, fields, step_size=37)  # chunks that split the file unevenly
    real = momenta["E"] > 0
    assert ak.num(events.e).tolist() == real.sum(axis=1).tolist()  # padding dropped
    np.testing.assert_allclose(ak.flatten(events.e), momenta["E"][real])
    px, py, pz = (momenta[p][real] for p in ("PX", "PY", "PZ"))
    np.testing.assert_allclose(ak.flatten(events.pt), np.hypot(px, py))
    np.testing.assert_allclose(ak.flatten(events.eta), np.arcsinh(pz / np.hypot(px, py)))
    np.testing.assert_allclose(ak.flatten(events.phi), np.arctan2(py, px))
    px, py, pz, e = (momenta[p].sum(axis=1) for p in ("PX", "PY", "PZ", "E"))
    np.testing.assert_allclose(events.jet_pt, np.hypot(px, py))
    np.testing.assert_allclose(events.jet_mass, np.sqrt(e**2 - px**2 - py**2 - pz**2), rtol=1e-6)
    np.testing.assert_allclose(events.jet_eta, np.arcsinh(pz / np.hypot(px, py)))
    assert events.label.tolist() == list(label)
    # the whole file in one chunk (a size, as uproot takes it) reads the same
    whole = read_events(str(path), tree, fields, step_size="50 MB")
    assert ak.all(ak.flatten(whole.eta) == ak.flatten(events.eta))


@pytest.mark.parametrize("complib", ["zlib", "blosc"])
def test_compressed_pandas_tables(tmp_path, complib):
    """PyTables' own compressors (blosc is not among h5py's filters: hdf5plugin brings it)."""
    momenta, label = toy_four_momenta(50)
    top_tagging_frame(momenta, label).to_hdf(tmp_path / "top.h5", key="table", format="table", mode="w",
                                             complib=complib, complevel=5)
    events = read_events(str(tmp_path / "top.h5"), "table", ["part_energy", "is_signal_new"], step_size=20)
    assert ak.flatten(events.part_energy).tolist() == momenta["E"][momenta["E"] > 0].tolist()
    assert events.is_signal_new.tolist() == list(label)


def test_pandas_table_column_names_match_pandas(tmp_path):
    """The names decoded from the table's attributes are pandas' own, in its order."""
    momenta, label = toy_four_momenta(30)
    frame = top_tagging_frame(momenta, label)
    frame["ttv"] = np.arange(30)  # an integer column in the second block, distinct per row
    write_pandas_table(tmp_path / "top.h5", frame)
    back = pd.read_hdf(tmp_path / "top.h5", key="table", start=5, stop=17)
    events = read_events(str(tmp_path / "top.h5"), "table", ["ttv", "is_signal_new", "part_energy"])
    assert events.ttv.tolist()[5:17] == back["ttv"].tolist()
    assert events.is_signal_new.tolist()[5:17] == back["is_signal_new"].tolist()
    assert events.part_energy[7].tolist() == [v for v in back.loc[7, [f"E_{i}" for i in range(SLOTS)]] if v]


def test_jetclass_parquet_gives_absolute_constituents_tracks_and_pair_labels(tmp_path):
    arrays = jetclass_arrays()
    write_jetclass(tmp_path / "jc.parquet", arrays)
    events = read_events(str(tmp_path / "jc.parquet"), "ignored", JETCLASS_FIELDS | {"jet_mass": "jet_mass"},
                         step_size=50)
    np.testing.assert_allclose(ak.flatten(events.calo_eta), ak.flatten(arrays["part_deta"]) +
                               np.repeat(arrays["jet_eta"], ak.num(arrays["part_px"])), atol=1e-4)
    charged = arrays["part_charge"] != 0
    assert ak.num(events.trk_pt).tolist() == ak.sum(charged, axis=1).tolist()
    np.testing.assert_allclose(ak.flatten(events.trk_d0), ak.flatten(arrays["part_d0val"][charged]))
    assert events.label.tolist() == ak.to_list(arrays["label_Wqq"].astype(int))
    e, pt, eta = arrays["jet_energy"], arrays["jet_pt"], arrays["jet_eta"]
    np.testing.assert_allclose(events.jet_mass, np.sqrt(e**2 - (pt * np.cosh(eta)) ** 2), rtol=1e-6)


# --- through prepare and training -----------------------------------------------------------------


def _prepare_cli(path, tree: str, fields: dict, out) -> dict:
    cmd = [sys.executable, "-m", "hepdl.cli", "prepare", "jets", "--input", str(path), "--tree", tree,
           "--output", str(out), "--seed", "1", "--fields", json.dumps(fields), "--spec", json.dumps(SPEC),
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "meta.json").read_text())


@pytest.mark.parametrize("layout", ["pandas_table", "plain_h5py", "jetclass_parquet"])
def test_prepare_and_train_with_only_a_field_mapping(tmp_path, layout):
    if layout == "jetclass_parquet":
        arrays = jetclass_arrays()
        path, tree, fields, label = tmp_path / "jc.parquet", "tree", JETCLASS_FIELDS, arrays["label_Wqq"]
        n_tracks = ak.to_numpy(ak.sum(arrays["part_charge"] != 0, axis=1))
        write_jetclass(path, arrays)
    else:
        momenta, label = toy_four_momenta()
        path, tree, fields = tmp_path / "top.h5", "table", TOP_FIELDS
        n_tracks = (momenta["E"] > 0).sum(axis=1)  # every constituent stands in for a track
        if layout == "pandas_table":
            write_pandas_table(path, top_tagging_frame(momenta, label))
        else:
            write_plain_h5(path, momenta, label, group="table")
    meta = _prepare_cli(path, tree, fields, tmp_path / "shard")
    assert meta["n_entries"] == N and meta["fields"]["calo_e"] == "part_energy"
    assert np.asarray(load_array(str(tmp_path / "shard"), "label")).tolist() == np.asarray(label, int).tolist()
    images = np.asarray(load_array(str(tmp_path / "shard"), "jet_images"))
    assert images.shape[0] == N and (images.reshape(N, -1).sum(axis=1) > 0).all()
    track_mask = np.asarray(load_array(str(tmp_path / "shard"), "track_mask"))
    assert track_mask.sum(axis=1).tolist() == np.minimum(n_tracks, SPEC["tracks"]["length"]).tolist()
    torch.set_num_threads(1)
    settings = {"model": {"name": "jet_cnn", "channels": [4, 8], "head": [8]}, "epochs": 3, "batch_size": 32,
                "progress": "never", "device": "cpu", "seed": 5}
    run = hepdl.train_model([str(tmp_path / "shard")], settings, tmp_path / "run")
    # the signal jets' second prong survives the reading: the CNN separates them
    assert os.path.isfile(run.model_file) and run.metrics["test_auc"] > 0.8
    assert len(run.scores["test"]["label"]) == int(np.sum(np.asarray(load_array(str(tmp_path / "shard"), "split")) == 2))
    # the model file scores the table itself, through the field mapping and tree it was trained with
    scores = hepdl.load_model(run.model_file, device="cpu").predict(str(path), step_size=100)
    assert scores.shape == (N,) and roc_auc_score(np.asarray(label, int), scores) > 0.8


# --- bad input: one clear error naming the file and the column, nothing written -------------------


def _refused(tmp_path, path, tree: str, fields: dict, *needles: str) -> None:
    out = tmp_path / "shard"
    with pytest.raises(InputError) as err:
        prepare_file("jets", str(path), str(out), tree=tree, fields=fields, spec=SPEC, step_size=100)
    for needle in (str(path), *needles):
        assert needle in str(err.value)
    assert "\n" not in str(err.value) and not out.exists()


def test_top_tagging_bad_inputs(tmp_path):
    momenta, label = toy_four_momenta()
    frame = top_tagging_frame(momenta, label)
    write_pandas_table(tmp_path / "missing.h5", frame.drop(columns="PZ_17"))
    _refused(tmp_path, tmp_path / "missing.h5", "table", TOP_FIELDS, "no column 'PZ_17'")
    bad = frame.copy()
    bad.loc[150, "PX_3"] = np.nan  # in the second chunk
    write_pandas_table(tmp_path / "nan.h5", bad)
    _refused(tmp_path, tmp_path / "nan.h5", "table", TOP_FIELDS, "column 'PX_3' has NaN", "entry 150")
    write_pandas_table(tmp_path / "nolabel.h5", frame.drop(columns="is_signal_new"))
    _refused(tmp_path, tmp_path / "nolabel.h5", "table", TOP_FIELDS, "'is_signal_new'")
    _refused(tmp_path, tmp_path / "nolabel.h5", "events", TOP_FIELDS, "no group 'events'", "table")


def test_plain_h5py_bad_shapes(tmp_path):
    momenta, label = toy_four_momenta()
    write_plain_h5(tmp_path / "short.h5", momenta | {"PX": momenta["PX"][:, :-1]}, label)
    _refused(tmp_path, tmp_path / "short.h5", "jets", TOP_FIELDS, f"no column 'PX_{SLOTS - 1}'")
    write_plain_h5(tmp_path / "rows.h5", momenta | {"PY": momenta["PY"][:-1]}, label)
    _refused(tmp_path, tmp_path / "rows.h5", "jets", TOP_FIELDS, "dataset 'PY' has 239 rows")
    write_plain_h5(tmp_path / "cube.h5", momenta | {"PZ": momenta["PZ"][:, :, None]}, label)
    _refused(tmp_path, tmp_path / "cube.h5", "jets", TOP_FIELDS, "dataset 'PZ' has shape (240, 200, 1)")


def test_jetclass_bad_inputs(tmp_path):
    arrays = jetclass_arrays()
    write_jetclass(tmp_path / "missing.parquet", {k: v for k, v in arrays.items() if k != "part_pz"})
    _refused(tmp_path, tmp_path / "missing.parquet", "tree", JETCLASS_FIELDS, "no column 'part_pz'")
    write_jetclass(tmp_path / "list.parquet", arrays | {"jet_pt": ak.unflatten(arrays["jet_pt"], 1)})
    _refused(tmp_path, tmp_path / "list.parquet", "tree", JETCLASS_FIELDS, "column 'jet_pt' holds a list per jet")
    write_jetclass(tmp_path / "lengths.parquet", arrays | {"part_py": arrays["part_py"][:, 1:]})
    _refused(tmp_path, tmp_path / "lengths.parquet", "tree", JETCLASS_FIELDS,
             "'part_px' and 'part_py' have different numbers of constituents", "entry 0")
    px = ak.to_numpy(ak.flatten(arrays["part_px"])).copy()
    px[int(ak.sum(ak.num(arrays["part_px"])[:130]))] = np.inf  # the first constituent of entry 130
    write_jetclass(tmp_path / "nan.parquet", arrays | {"part_px": ak.unflatten(px, ak.num(arrays["part_px"]))})
    _refused(tmp_path, tmp_path / "nan.parquet", "tree", JETCLASS_FIELDS, "column 'part_px' has NaN", "entry 130")
    top = arrays | {"label_QCD": np.asarray(arrays["label_QCD"]).copy(), "label_Tbqq": np.zeros(N, bool)}
    top["label_QCD"][6], top["label_Tbqq"][6] = False, True  # a top jet among W and QCD
    write_jetclass(tmp_path / "top.parquet", top)
    _refused(tmp_path, tmp_path / "top.parquet", "tree", JETCLASS_FIELDS, "entry 6 is of class 'label_Tbqq'")
    top["label_QCD"][6], top["label_Tbqq"][6], top["label_Tbqq"][9] = True, False, True  # a W that is also a top
    write_jetclass(tmp_path / "two.parquet", top)
    _refused(tmp_path, tmp_path / "two.parquet", "tree", JETCLASS_FIELDS, "entry 9 has 2 of the label columns")


def test_the_cli_prints_one_line_naming_file_and_column(tmp_path):
    momenta, label = toy_four_momenta(40)
    bad = top_tagging_frame(momenta, label)
    bad.loc[11, "E_0"] = np.nan
    write_pandas_table(tmp_path / "nan.h5", bad)
    cmd = [sys.executable, "-m", "hepdl.cli", "prepare", "jets", "--input", str(tmp_path / "nan.h5"), "--tree",
           "table", "--output", str(tmp_path / "shard"), "--seed", "1", "--fields", json.dumps(TOP_FIELDS),
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2 and not (tmp_path / "shard").exists()
    assert proc.stderr.strip().splitlines() == [
        f"hepdl prepare: error: {tmp_path / 'nan.h5'}, table 'table': column 'E_0' has NaN or infinite values "
        "(first: entry 11)"]


def test_inspect_lists_the_tables_and_the_computed_branches(tmp_path):
    momenta, label = toy_four_momenta(20)
    write_pandas_table(tmp_path / "top.h5", top_tagging_frame(momenta, label))
    write_plain_h5(tmp_path / "plain.h5", momenta, label, group="jets")
    write_jetclass(tmp_path / "jc.parquet", jetclass_arrays(20))
    text = hepdl.describe_file(tmp_path / "top.h5")
    assert "HDF5 table 'table': 20 entries" in text and "_i_table" not in text  # not PyTables' index group
    assert "is_signal_new" in text and "part_eta" in text and "E_0" not in text
    assert "HDF5 table 'jets': 20 entries" in hepdl.describe_file(tmp_path / "plain.h5")
    text = hepdl.describe_file(tmp_path / "jc.parquet", filter_name="charged_d0")
    assert "Parquet table" in text and "charged_d0val  computed (part_d0val, part_charge)" in text
    assert "part_px" not in text


def test_readme_configs_are_the_tested_mappings():
    import re
    from pathlib import Path

    import yaml

    from hepdl.config import validate_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### The community's jet datasets: HDF5 and Parquet\n", 1)[1].split("\n### ", 1)[0]
    top, jetclass = (yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, flags=re.S))
    assert top["jets"]["fields"] == TOP_FIELDS and jetclass["jets"]["fields"] == JETCLASS_FIELDS
    for config in (top, jetclass):
        validate_config(config, source="README")
