"""Scoring ROOT files with a trained model (hepdl.scoring, hepdl score, the README snippet)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
from toy_trained_models import RENAMED, train_toy_model, write_toy_file

import hepdl
from hepdl.errors import HepdlError, InputError
from hepdl.models import TwoViewCVN, save_model
from hepdl.represent import resolve_spec
from hepdl.scoring import load_model, score_file

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("scoring")
    model_path, root, shard = train_toy_model(str(tmp), {"name": "jet_cnn", "channels": [4, 8], "head": [8]})
    return {"tmp": tmp, "model": model_path, "root": root, "shard": shard}


def friend_scores(path, tree="scores"):
    with uproot.open(path) as f:
        return f[tree].arrays(library="np")


def test_scores_match_training_test_split_and_awkward_input(trained):
    model = load_model(trained["model"], device="cpu")
    assert model.classes == ["background", "signal"] and model.inputs == ["jet_images"]
    assert model.representation["spec"]["image"]["size"] == [16, 16]
    assert "test_auc" in model.metrics and model.info["provenance"]["hepdl_version"] == hepdl.__version__
    scores = model.predict(trained["root"])
    # other chunking/batching: the same up to float rounding (conv kernels depend on the batch size)
    np.testing.assert_allclose(model.predict(trained["root"], batch_size=50, step_size=70), scores, rtol=0, atol=1e-6)
    assert scores.shape == (240,) and scores.dtype == np.float32 and np.all((scores > 0) & (scores < 1))
    # the representation rebuilt from the model file gives exactly what the trainer scored
    split = np.load(os.path.join(trained["shard"], "split.npy"))
    test = np.load(os.path.join(os.path.dirname(trained["model"]), "test_scores.npz"))
    np.testing.assert_allclose(scores[split == 2], test["score"], rtol=0, atol=1e-6)
    # an awkward array under logical names scores the same
    events = hepdl.read_events(trained["root"], "events", model.field_mapping())
    np.testing.assert_array_equal(model.predict(events), scores)
    selected = scores[events.jet_pt > 350]
    np.testing.assert_allclose(model.predict(events, cut="jet_pt > 350"), selected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.predict(trained["root"], cut="jet_pt > 350"), selected, rtol=0, atol=1e-6)


def test_scoring_builds_only_the_model_inputs(trained):
    from hepdl.errors import ConfigError
    from hepdl.represent import representation

    model = load_model(trained["model"], device="cpu")
    events = hepdl.read_events(trained["root"], "events", model.field_mapping())
    spec = model.representation["spec"]
    full = representation(events, spec)
    images = representation(events, spec, only=["jet_images"])
    assert list(images) == ["jet_images"]
    np.testing.assert_array_equal(images["jet_images"], full["jet_images"])
    tracks = representation(events, spec, only=["tracks", "track_mask", "label"])
    assert list(tracks) == ["tracks", "track_mask", "label"]
    np.testing.assert_array_equal(tracks["tracks"], full["tracks"])
    # An N-subjettiness setting that fails shows whether the expert variables are built: a CNN's
    # scoring never builds them (they cost several times the images).
    broken = {**spec, "expert": {**spec["expert"], "nsubjettiness": {**spec["expert"]["nsubjettiness"], "axes": "bogus"}}}
    with pytest.raises(ConfigError, match="axes"):
        representation(events, broken)
    model.representation["spec"] = broken
    np.testing.assert_array_equal(model.predict(events), model.predict(trained["root"]))


def test_renamed_branches_score_through_a_field_mapping(trained, tmp_path):
    model = load_model(trained["model"], device="cpu")
    renamed = tmp_path / "user.root"
    write_toy_file(renamed, 240, 1, renamed=True)  # same jets as toy.root, other branch names
    np.testing.assert_array_equal(model.predict(renamed, fields=RENAMED), model.predict(trained["root"]))
    with pytest.raises(InputError, match="no branch 'calo_eta'"):
        model.predict(renamed)
    with pytest.raises(hepdl.ConfigError, match="unknown logical fields"):
        model.predict(renamed, fields={"tower_e": "calo_e"})


def test_friend_trees_are_aligned_and_reproducible(trained, tmp_path):
    model = load_model(trained["model"], device="cpu")
    scores = model.predict(trained["root"])
    out = tmp_path / "a.scores.root"
    assert score_file(model, trained["root"], out, step_size=100) == 240
    first = friend_scores(out)
    np.testing.assert_allclose(first["score"], scores, rtol=0, atol=1e-6)
    score_file(model, trained["root"], out, step_size=100)  # rerun over the existing output
    np.testing.assert_array_equal(friend_scores(out)["score"], first["score"])
    assert sorted(os.listdir(tmp_path)) == ["a.scores.root"]  # no temporary left behind

    # the command: one friend file per input, named after it, written twice identically
    second = shutil.copy(trained["root"], tmp_path / "other.root")
    cmd = [sys.executable, "-m", "hepdl.cli", "score", trained["model"], trained["root"], str(second),
           "-o", str(tmp_path / "friends"), "--device", "cpu", "--threads", "1", "--step-size", "100"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "friends")) == ["other.scores.root", "toy.scores.root"]
    for name in ("other", "toy"):
        got = friend_scores(tmp_path / "friends" / f"{name}.scores.root")
        assert list(got) == ["score"]
        np.testing.assert_array_equal(got["score"], first["score"])  # a fresh process, the same scores


def test_bad_fields_argument_is_one_line_error(trained, tmp_path):
    cmd = [sys.executable, "-m", "hepdl.cli", "score", trained["model"], trained["root"], "-o", str(tmp_path),
           "--fields", '{"calo_e": "nope"}', "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2 and "no branch 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []  # no half-written friend file


class _Marker:
    """An object whose unpickling would create a file: the payload of a malicious model file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_tampered_model_files_are_refused(trained, tmp_path):
    data = bytearray(Path(trained["model"]).read_bytes())
    content = torch.load(trained["model"], weights_only=True)
    weight = content["state_dict"]["body.0.0.weight"].numpy().tobytes()
    at = data.find(weight)
    assert at > 0
    changed = bytearray(data)
    changed[at + 5] ^= 0x01  # one bit of one weight
    (tmp_path / "changed.pt").write_bytes(bytes(changed))
    with pytest.raises(HepdlError, match="checksum mismatch"):
        load_model(tmp_path / "changed.pt", device="cpu")

    marker = tmp_path / "code-ran"
    content["provenance"] = _Marker(str(marker))
    torch.save(content, tmp_path / "pickled.pt")
    with pytest.raises(HepdlError, match="holding code"):
        load_model(tmp_path / "pickled.pt", device="cpu")
    assert not marker.exists()

    (tmp_path / "truncated.pt").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(HepdlError, match="truncated.pt"):
        load_model(tmp_path / "truncated.pt", device="cpu")


def test_multiclass_model_writes_one_branch_per_class(tmp_path):
    from hepdl.generate import generate_neutrino

    generate_neutrino(tmp_path / "nu.root", n_events=40, seed=3, progress=False)
    spec = resolve_spec("neutrino", {"pixel_map": {"planes": 20, "cells": 16}})
    net = TwoViewCVN(channels=[4], stem_channels=4, head=[], n_outputs=3, seed=2)
    classes = ["numu_cc", "nue_cc", "nc"]
    save_model(tmp_path / "nu.pt", net, architecture=net.config, inputs=["pixel_maps"], task="neutrino",
               classes=classes, provenance={"sources": [{"tree": "events"}]},
               representation={"spec": spec, "fields": {f: f for f in ("hit_view", "hit_plane", "hit_cell", "hit_e")}})
    model = load_model(tmp_path / "nu.pt", device="cpu")
    probs = model.predict(tmp_path / "nu.root")
    assert probs.shape == (40, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    score_file(model, tmp_path / "nu.root", tmp_path / "nu.scores.root", branch_prefix="cvn")
    got = friend_scores(tmp_path / "nu.scores.root")
    assert list(got) == ["cvn_numu_cc", "cvn_nue_cc", "cvn_nc"]
    np.testing.assert_array_equal(np.stack([got[b] for b in got], axis=1), probs)


def test_readme_snippet_and_example_script_run(trained, tmp_path):
    """examples/analysis_snippet.py is README's "Use in your analysis" code; run it as it is."""
    os.makedirs(tmp_path / "results" / "jets" / "cnn")
    shutil.copy(trained["model"], tmp_path / "results" / "jets" / "cnn" / "model.pt")
    shutil.copy(trained["root"], tmp_path / "my_jets.root")
    write_toy_file(tmp_path / "user_jets.root", 240, 1, renamed=True)
    snippet = os.path.join(ROOT_DIR, "examples", "analysis_snippet.py")
    proc = subprocess.run([sys.executable, snippet], cwd=tmp_path, capture_output=True, text=True, env=ENV,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "jets tagged" in proc.stdout
    expected = load_model(trained["model"], device="cpu").predict(trained["root"])
    np.testing.assert_array_equal(friend_scores(tmp_path / "my_jets.scores.root")["score"], expected)

    script = os.path.join(ROOT_DIR, "examples", "score_root_file.py")
    proc = subprocess.run([sys.executable, script, "results/jets/cnn/model.pt", "user_jets.root", "--device", "cpu"],
                          cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=120)
    # the example uses the stored mapping: the user-named file fails with one clear message
    assert proc.returncode != 0 and "no branch 'calo_eta'" in proc.stderr
    proc = subprocess.run([sys.executable, script, "results/jets/cnn/model.pt", "my_jets.root", "--device", "cpu"],
                          cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "240 entries" in proc.stdout
