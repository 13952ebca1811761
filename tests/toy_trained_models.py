"""Small trained hepdl models for the scoring and ONNX tests (not a test module).

The jets are a fast toy in the layout of the generator's ROOT files: signal jets have
two calorimeter prongs, background jets one, so a few training steps separate them.
The models go through the real chain: ROOT file -> ``prepare_file`` -> ``hepdl train``
(a subprocess) -> ``model.pt``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import awkward as ak
import numpy as np

from hepdl.io import write_tree

#: Small images and short track sequences keep preparation and training at seconds.
SPEC = {"image": {"size": [16, 16]}, "tracks": {"length": 8}}
RENAMED = {
    "calo_eta": "tower_eta", "calo_phi": "tower_phi", "calo_e": "tower_e",
    "trk_pt": "track_pt", "trk_eta": "track_eta", "trk_phi": "track_phi",
    "jet_pt": "fj_pt", "jet_eta": "fj_eta", "jet_phi": "fj_phi", "jet_mass": "fj_mass",
}


def toy_jets(n: int, seed: int) -> dict[str, np.ndarray | ak.Array]:
    """``n`` jets, half two-prong (label 1), half one-prong (label 0), under logical names."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 2).astype(np.int32)
    jet_pt = rng.uniform(300, 400, n)
    jet_eta = rng.uniform(-1.5, 1.5, n)
    jet_phi = rng.uniform(-np.pi, np.pi, n)
    n_calo = rng.integers(15, 40, n)
    n_trk = rng.integers(3, 12, n)

    def constituents(counts):
        owner = np.repeat(np.arange(n), counts)
        prong = (rng.random(len(owner)) < 0.4) & (label[owner] == 1)  # the second prong of signal jets
        angle = rng.uniform(0, 2 * np.pi, n)[owner]
        deta = np.where(prong, 0.4 * np.cos(angle), 0) + rng.normal(0, 0.05, len(owner))
        dphi = np.where(prong, 0.4 * np.sin(angle), 0) + rng.normal(0, 0.05, len(owner))
        e = rng.exponential(1.0, len(owner)) * (jet_pt / counts)[owner] * np.cosh(jet_eta[owner])
        return (ak.unflatten(jet_eta[owner] + deta, counts), ak.unflatten(jet_phi[owner] + dphi, counts),
                ak.unflatten(e, counts))

    calo_eta, calo_phi, calo_e = constituents(n_calo)
    trk_eta, trk_phi, trk_e = constituents(n_trk)
    return {
        "calo_eta": calo_eta, "calo_phi": calo_phi, "calo_e": calo_e,
        "trk_pt": trk_e / np.cosh(trk_eta), "trk_eta": trk_eta, "trk_phi": trk_phi,
        "jet_pt": jet_pt, "jet_eta": jet_eta, "jet_phi": jet_phi,
        "jet_mass": np.where(label == 1, rng.normal(80, 8, n), rng.normal(40, 20, n)),
        "label": label, "weight": np.ones(n),
    }


def write_toy_file(path, n: int, seed: int, renamed: bool = False) -> None:
    """The toy jets as a ROOT file (tree ``events``); ``renamed`` uses the user-style names of :data:`RENAMED`."""
    arrays = toy_jets(n, seed)
    if renamed:
        arrays = {RENAMED.get(k, k): v for k, v in arrays.items()}
    write_tree(path, "events", arrays)


def train_toy_model(tmp_path, model: dict, n: int = 240, seed: int = 1) -> tuple[str, str, str]:
    """Prepare a toy file, train ``model`` (a registry config) for one short epoch; return (model.pt, ROOT file, shard)."""
    from hepdl.represent import prepare_file

    root = os.path.join(tmp_path, "toy.root")
    if not os.path.exists(root):
        write_toy_file(root, n, seed)
    shard = os.path.join(tmp_path, "shards", "toy")
    if not os.path.exists(shard):
        prepare_file("jets", root, shard, spec=SPEC, seed=seed)
    out = os.path.join(tmp_path, f"run_{model['name']}")
    settings = os.path.join(tmp_path, f"settings_{model['name']}.json")
    with open(settings, "w") as f:
        json.dump({"model": model, "epochs": 1, "batch_size": 32, "progress": "never", "device": "cpu"}, f)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hepdl.cli", "train", "--shards", shard, "--output", out, "--settings", settings,
           "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"hepdl train failed:\n{proc.stderr}")
    return os.path.join(out, "model.pt"), root, shard
