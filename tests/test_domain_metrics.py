"""Network-feature domain metrics (hepdl.evaluate.domain) and ``hepdl domain evaluate`` on toy shards."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from hepdl.errors import InputError
from hepdl.evaluate.domain import domain_metrics, network_outputs
from hepdl.models import build_model, save_model
from hepdl.train import ArrayDataset

torch.set_num_threads(1)


def toy_outputs(n: int, feature_shift: float, score_shift: float, seed: int, labelled: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    score = np.clip(rng.normal(0.3 + 0.4 * label + score_shift, 0.15), 0, 1)
    features = rng.normal(size=(n, 6)) + feature_shift
    out = {"score": score, "features": features, "weight": np.ones(n)}
    out["label"] = label if labelled else np.full(n, -1)
    return out


def test_identical_distributions_look_alike():
    m = domain_metrics(toy_outputs(2000, 0.0, 0.0, 1), toy_outputs(2000, 0.0, 0.0, 2), seed=3)
    assert abs(m["domain_auc"] - 0.5) < 0.05
    assert m["ks"] < 0.06 and m["wasserstein"] < 0.02
    assert m["eff_shift"] < 0.05
    assert m["data_auc"] == pytest.approx(m["sim_auc"], abs=0.03)


def test_shifted_distributions_are_told_apart():
    m = domain_metrics(toy_outputs(2000, 0.0, 0.0, 1), toy_outputs(2000, 0.8, 0.15, 2), seed=3)
    assert m["domain_auc"] > 0.85
    assert m["ks"] > 0.15 and m["wasserstein"] > 0.08
    # the data signal sits higher: the sim 50 % cut keeps much more of it
    assert m["data_signal_eff"] > 0.75 and m["eff_shift"] == pytest.approx(m["data_signal_eff"] - 0.5)
    n_signal = int(np.sum(toy_outputs(2000, 0.8, 0.15, 2)["label"] == 1))
    eff = m["data_signal_eff"]
    assert m["eff_shift_err"] == pytest.approx(np.sqrt(eff * (1 - eff) / n_signal))


def test_unlabelled_data_gives_only_label_free_metrics():
    m = domain_metrics(toy_outputs(500, 0.0, 0.0, 1), toy_outputs(500, 0.0, 0.0, 2, labelled=False))
    assert {"domain_auc", "ks", "wasserstein", "sim_auc"} <= set(m)
    assert "data_auc" not in m and "eff_shift" not in m


def test_network_outputs_gives_body_features_and_scores():
    model = build_model({"name": "jet_cnn", "in_channels": 1, "channels": [4, 8], "head": [8]}).eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 1, 8, 8)).astype(np.float32)
    ds = ArrayDataset({"jet_images": x, "label": rng.integers(0, 2, 37), "weight": np.ones(37, np.float32)})
    out = network_outputs(model, ds, ["jet_images"], batch_size=16)
    assert out["features"].shape == (37, 8) and out["score"].shape == (37,)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.as_tensor(x))).numpy()
        feats = model.body(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(out["score"], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["features"], feats, rtol=1e-5, atol=1e-6)
    assert out["label"].tolist() == ds.numpy("label").tolist()


def _write_shard(path: str, images: np.ndarray, label: np.ndarray, domain: str) -> None:
    """A prepared shard in the brief-dataset layout (meta.json + .npy arrays)."""
    os.makedirs(path)
    n = len(label)
    split = (np.arange(n) % 5 >= 3).astype(np.uint8) + (np.arange(n) % 5 == 4).astype(np.uint8)  # 0,0,0,1,2
    arrays = {"jet_images": images.astype(np.float32), "label": label.astype(np.int64),
              "weight": np.ones(n, np.float32), "split": split}
    for name, a in arrays.items():
        np.save(os.path.join(path, f"{name}.npy"), a)
    meta = {"format": "hepdl-prepared-v1", "task": "jets", "n_entries": n,
            "arrays": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()},
            "feature_names": {}, "spec": {"channels": ["calo_et"]}, "fields": {},
            "source": {"path": f"{domain}.root", "tree": "events", "entries": n, "domain": domain},
            "split": {"seed": 1, "fractions": [0.6, 0.2, 0.2]}, "hepdl_version": "test"}
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f)


def test_domain_evaluate_cli_writes_json_and_plots(tmp_path):
    from hepdl.cli import main

    rng = np.random.default_rng(4)
    n = 400
    for name, shift in (("sim", 0.0), ("data", 0.6)):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 1, 8, 8))
        x[:, :, 3:5, 3:5] += (1.5 * y + shift)[:, None, None, None]
        _write_shard(str(tmp_path / name / "s0"), x, y, name)
    paths = {}
    for name, seed in (("cnn", 1), ("dann", 2)):
        if name == "dann":
            model = build_model({"name": "domain_adversarial", "seed": seed,
                                 "base": {"name": "jet_cnn", "in_channels": 1, "channels": [4], "head": [4]}})
        else:
            model = build_model({"name": "jet_cnn", "in_channels": 1, "channels": [4], "head": [4], "seed": seed})
        paths[name] = str(tmp_path / f"{name}.pt")
        save_model(paths[name], model, architecture=model.config, representation={}, inputs=["jet_images"],
                   task="jets", classes=["background", "signal"], provenance={})
    out = tmp_path / "out"
    rc = main(["evaluate", "domain", "--models", f"cnn={paths['cnn']}", f"dann={paths['dann']}",
               "--sim-shards", str(tmp_path / "sim"), "--data-shards", str(tmp_path / "data"),
               "--seed", "0", "--output", str(out)])
    assert rc == 0
    result = json.loads((out / "domain.json").read_text())
    assert result["task"] == "jets" and result["model"] == "domain"
    for name in ("cnn", "dann"):
        for key in ("data_auc", "domain_auc", "eff_shift", "ks", "wasserstein", "sim_auc"):
            assert np.isfinite(result[f"{name}_{key}"]), (name, key)
        assert (out / f"scores_{name}.png").stat().st_size > 1000
    assert (out / "domain_scores.png").stat().st_size > 1000
    assert result["cnn_n_sim"] == 80 and result["cnn_n_data"] == 80  # the test split only
    assert main(["evaluate", "domain", "--models", "cnn", "--sim-shards", str(tmp_path / "sim"),
                 "--data-shards", str(tmp_path / "data"), "--seed", "0", "--output", str(out)]) == 2


def test_reweight_pt_applies_to_the_aucs_only():
    # The score is the jet pT, whose spectrum differs between the classes: its AUC on sim and on
    # data falls to ~0.5 with the background weighted to the signal's pT; the label-free metrics
    # and the working point (signal only) stay as they are.
    rng = np.random.default_rng(4)

    def sample(n):
        label = rng.integers(0, 2, n)
        pt = np.where(label == 1, rng.normal(320, 20, n), 250 + rng.exponential(40, n))
        return {"score": pt / 1000, "features": rng.normal(size=(n, 3)), "weight": np.ones(n), "label": label,
                "jet_pt": pt}

    sim, data = sample(3000), sample(3000)
    plain = domain_metrics(sim, data, seed=1)
    flat = domain_metrics(sim, data, seed=1, reweight="pt")
    assert plain["sim_auc"] > 0.8 and plain["data_auc"] > 0.8
    assert abs(flat["sim_auc"] - 0.5) < 0.03 and abs(flat["data_auc"] - 0.5) < 0.03
    for key in ("domain_auc", "ks", "wasserstein", "eff_shift"):
        assert flat[key] == plain[key], key


def test_reweight_errors_are_named():
    sim, data = toy_outputs(400, 0.0, 0.0, 1), toy_outputs(400, 0.0, 0.0, 2)
    with pytest.raises(InputError, match="needs jet_pt"):
        domain_metrics(sim, data, seed=1, reweight="pt")
    with pytest.raises(InputError, match="'none' or 'pt'"):
        domain_metrics(sim, data, seed=1, reweight="eta")
