"""ONNX export of trained hepdl models, checked against torch with onnxruntime on real prepared inputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from toy_trained_models import train_toy_model

from hepdl.errors import HepdlError
from hepdl.models import MODEL_REGISTRY, build_model, save_model
from hepdl.onnx_export import check_parity, example_inputs, export_onnx, onnx_session
from hepdl.represent import load_array, load_meta
from hepdl.scoring import load_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
#: Small configs of every registered classifier; the ones another module has not registered are skipped.
CONFIGS = {
    "jet_mlp": {"name": "jet_mlp", "n_features": 9, "hidden": [16]},
    "two_view_cvn": {"name": "two_view_cvn"},
    "track_rnn": {"name": "track_rnn", "n_features": 6, "hidden": 8, "embed": 8, "head": [8]},
    "combined_tagger": {"name": "combined_tagger", "in_channels": 3, "n_track_features": 6},
}
#: Models whose forward() the TorchScript exporter cannot trace into a batch-independent graph.
NOT_EXPORTABLE: dict[str, str] = {}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("onnx")
    model_path, root, shard = train_toy_model(str(tmp), {"name": "jet_cnn", "channels": [4, 8], "head": [8]})
    return {"tmp": tmp, "model": model_path, "root": root, "shard": shard}


def test_jet_cnn_export_command_parity_and_dynamic_batch(trained, tmp_path):
    out = tmp_path / "cnn.onnx"
    cmd = [sys.executable, "-m", "hepdl.cli", "export", "onnx", trained["model"], "-o", str(out), "--n-check", "100"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "parity on 100 entries" in proc.stderr
    model = load_model(trained["model"], device="cpu")
    session = onnx_session(out)
    assert [i.name for i in session.get_inputs()] == ["jet_images"]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "logits"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["task"] == "jets" and '"signal"' in meta["classes"] and '"spec"' in meta["representation"]
    # real inputs from the ROOT file through the stored representation, batch sizes never traced
    images = example_inputs(model, [trained["root"]], n=240)["jet_images"]
    for n in (1, 3, 240):
        probs = session.run(["probabilities"], {"jet_images": images[:n]})[0]
        assert probs.shape == (n,)
        np.testing.assert_allclose(probs, model.predict_arrays({"jet_images": images[:n]}), rtol=0, atol=1e-5)


def test_parity_violation_fails_loudly_and_writes_nothing(trained, tmp_path):
    model = load_model(trained["model"], device="cpu")
    example = example_inputs(model, [trained["shard"]], n=64)
    export_onnx(model, tmp_path / "a.onnx", example)
    other = build_model({**model.info["architecture"], "seed": 99}).eval()  # same shape, other weights
    model.module.load_state_dict(other.state_dict())
    with pytest.raises(HepdlError, match="ONNX and torch disagree"):
        check_parity(model, tmp_path / "a.onnx", example)
    cmd = [sys.executable, "-m", "hepdl.cli", "export", "onnx", trained["model"], "-o", str(tmp_path / "b.onnx"),
           "--check-data", trained["shard"], "--atol", "-1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2 and "disagree" in proc.stderr and not (tmp_path / "b.onnx").exists()
    assert sorted(os.listdir(tmp_path)) == ["a.onnx"]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_other_models_export_with_parity_on_real_inputs(trained, tmp_path, name):
    if name not in MODEL_REGISTRY:
        pytest.skip(f"model {name!r} is not in this hepdl")
    net = build_model(CONFIGS[name])
    keys = list(getattr(net, "input_keys", None) or [net.input_key])
    shard = trained["shard"]
    meta = load_meta(shard)
    if name == "two_view_cvn":
        from hepdl.generate import generate_neutrino
        from hepdl.represent import prepare_file

        generate_neutrino(tmp_path / "nu.root", n_events=24, seed=5, progress=False)
        shard = str(tmp_path / "nu_shard")
        meta = prepare_file("neutrino", str(tmp_path / "nu.root"), shard, spec={"pixel_map": {"planes": 40, "cells": 32}})
        net = build_model({**CONFIGS[name], "n_outputs": 4})
    arrays = {k: np.asarray(load_array(shard, k, meta)) for k in keys}
    if hasattr(net, "fit_standardisation") and keys == ["expert"]:
        net.fit_standardisation(arrays["expert"])
    classes = ["numu_cc", "nue_cc", "nc", "nutau_cc"] if meta["task"] == "neutrino" else ["background", "signal"]
    save_model(tmp_path / "m.pt", net, architecture=net.config, inputs=keys, task=meta["task"], classes=classes,
               provenance={}, representation={"spec": meta["spec"], "fields": meta["fields"]})
    model = load_model(tmp_path / "m.pt", device="cpu")
    if name in NOT_EXPORTABLE:
        with pytest.raises(HepdlError, match="cannot be exported to ONNX"):
            export_onnx(model, tmp_path / "m.onnx", arrays)
        assert not (tmp_path / "m.onnx").exists()
        return
    report = export_onnx(model, tmp_path / "m.onnx", arrays)
    assert report["n_checked"] == len(arrays[keys[0]])
    assert report["max_abs_diff_probabilities"] <= 1e-5 and report["max_rel_diff_logits"] <= 1e-5
    assert [i.name for i in onnx_session(tmp_path / "m.onnx").get_inputs()] == keys
