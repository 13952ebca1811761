"""hepdl features: autoencoder feature shards aligned with the events, usable by hepdl bdt; the train
CLI with objective autoencode (on unlabelled data too), anomaly mode and init_body_from."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import uproot

from hepdl.autoencode.features import encode, feature_names, pca_projection
from hepdl.cli import main
from hepdl.models import load_model_file
from hepdl.models.jet_cnn import JetCNN
from hepdl.represent import PreparedDataset
from hepdl.train.selection import (
    repeat_to_steps,
    select_training_entries,
    select_validation_entries,
)
from hepdl.train.settings import TrainSettings

torch.set_num_threads(1)

CHANNELS = ["calo_et", "trk_pt"]
EXPERT = ["mass", "tau21"]


def write_shard(path, n: int, seed: int, *, unlabelled: bool = False) -> dict[str, np.ndarray]:
    """A small prepared shard by the hepdl-prepared-v1 contract: images with one or two prongs."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    yy, xx = np.mgrid[0:8, 0:8].astype(np.float32)
    img = np.zeros((n, 2, 8, 8), np.float32)
    img[:, 0] = np.exp(-((yy - 4) ** 2 + (xx - 4) ** 2) / 2.0)[None] * rng.uniform(0.5, 1.5, (n, 1, 1))
    img[:, 0] += label[:, None, None] * np.exp(-((yy - 2) ** 2 + (xx - 6) ** 2) / 2.0)[None]
    img[:, 1] = img[:, 0] * rng.uniform(0, 1, (n, 1, 1))
    arrays = {
        "jet_images": img.astype(np.float32),
        "expert": np.stack([60 + 25 * label + rng.normal(0, 10, n), rng.uniform(0, 1, n)], 1).astype(np.float32),
        "jet_pt": rng.uniform(300, 400, n).astype(np.float32),
        "jet_mass": rng.uniform(50, 100, n).astype(np.float32),
        "label": np.full(n, -1, np.int64) if unlabelled else label.astype(np.int64),
        "weight": np.ones(n, np.float32),
        "split": rng.choice(np.array([0, 1, 2], np.uint8), n, p=[0.6, 0.2, 0.2]),
    }
    os.makedirs(path)
    for k, v in arrays.items():
        np.save(os.path.join(path, f"{k}.npy"), v)
    meta = {"format": "hepdl-prepared-v1", "task": "jets", "n_entries": n,
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "feature_names": {"expert": EXPERT, "jet_images": CHANNELS}, "spec": {"task": "jets", "image": {"size": [8, 8], "channels": CHANNELS},
                                                         "expert": {"features": EXPERT}},
            "fields": {}, "source": {"path": f"{os.path.basename(path)}.root", "domain": "data" if unlabelled else "sim"},
            "split": {"seed": seed}}
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f)
    return arrays


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ae")
    shards = [str(root / "prep_0"), str(root / "prep_1"), str(root / "data_0")]
    arrays = [write_shard(shards[0], 160, 1), write_shard(shards[1], 160, 2), write_shard(shards[2], 80, 3, unlabelled=True)]
    settings = root / "ae.json"
    settings.write_text(json.dumps({
        "objective": "autoencode", "epochs": 2, "batch_size": 32, "device": "cpu", "progress": "never",
        "model": {"name": "jet_image_autoencoder", "channels": [4, 8], "latent_dim": 3, "noise_std": 0.1},
    }))
    out = root / "ae_model"
    # sim and (unlabelled, label -1) data shards together: labels play no part in the loss
    assert main(["train", "--shards", *shards, "--output", str(out), "--settings", str(settings)]) == 0
    return root, shards, arrays, out


def test_train_cli_autoencode_writes_reconstruction_error_scores(trained):
    root, shards, _, out = trained
    model, info = load_model_file(out / "model.pt")
    assert info["architecture"]["name"] == "jet_image_autoencoder"
    assert info["architecture"]["image_size"] == [8, 8] and info["architecture"]["in_channels"] == 2
    scores = np.load(out / "test_scores.npz")
    test = PreparedDataset(shards, "test", ("jet_images",))
    assert len(scores["score"]) == len(test) and scores["code"].shape == (len(test), 3)
    table = encode(model, test.numpy("jet_images"))
    np.testing.assert_allclose(scores["score"], table[:, 3], rtol=1e-4, atol=1e-7)  # score = recon_mse column
    assert -1 in scores["label"]  # the data entries were scored too
    train_info = json.loads((out / "train_info.json").read_text())
    assert train_info["n_train"] == len(PreparedDataset(shards, "train", ("label",)))


def test_features_aligned_with_events_and_bdt_reads_them(trained, tmp_path):
    _, shards, arrays, out = trained
    feat = tmp_path / "feat"
    assert main(["features", "--model", str(out / "model.pt"), "--shards", *shards, "--output", str(feat),
                 "--friend", "--plots", str(tmp_path / "plots")]) == 0
    model, _ = load_model_file(out / "model.pt")
    names = feature_names(model, CHANNELS)
    for shard, a in zip(shards, arrays, strict=True):
        fdir = feat / os.path.basename(shard)
        meta = json.loads((fdir / "meta.json").read_text())
        assert meta["feature_names"]["ae_features"] == names
        table = np.load(fdir / "ae_features.npy")
        n = len(a["label"])
        assert table.shape == (n, len(names)) and meta["n_entries"] == n
        # same entries, same order: row i is the encoding of input entry i; the tables copied beside it
        np.testing.assert_allclose(table, encode(model, a["jet_images"]), rtol=1e-4, atol=1e-6)
        assert meta["feature_names"]["expert"] == EXPERT and "jet_images" not in meta["arrays"]
        for key in ("label", "weight", "split", "jet_pt", "jet_mass", "expert"):
            np.testing.assert_array_equal(np.load(fdir / f"{key}.npy"), a[key])
        with uproot.open(fdir / "ae_features.root") as f:
            tree = f["ae_features"]
            assert tree.num_entries == n
            np.testing.assert_allclose(tree["recon_mse"].array(library="np"), table[:, names.index("recon_mse")])
    # the region errors average to the total (core and periphery partition the image)
    t = np.load(feat / "prep_0" / "ae_features.npy")
    i = names.index
    assert np.all(t[:, i("recon_mse")] >= 0)
    assert np.all(np.minimum(t[:, i("recon_mse_core")], t[:, i("recon_mse_periphery")]) <= t[:, i("recon_mse")] + 1e-7)
    np.testing.assert_allclose(t[:, [i(f"recon_mse_{c}") for c in CHANNELS]].mean(1), t[:, i("recon_mse")], rtol=1e-4)
    for png in ("ae_average_images.png", "ae_latent_pca.png", "ae_reconstruction_error.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 1000
    # XGBoost on the autoencoder features and the expert variables side by side, split taken over
    sim = [str(feat / "prep_0"), str(feat / "prep_1")]
    assert main(["bdt", "--shards", *sim, "--array", "ae_features", "expert", "--output", str(tmp_path / "bdt"),
                 "--seed", "1", "--n-estimators", "30"]) == 0
    scores = np.load(tmp_path / "bdt" / "test_scores.npz")
    test = PreparedDataset([shards[0], shards[1]], "test", ("label",))
    np.testing.assert_array_equal(scores["label"], test.numpy("label"))
    info = json.loads((tmp_path / "bdt" / "bdt.info.json").read_text())
    assert info["feature_names"] == names + EXPERT


def test_features_refuse_non_autoencoder_and_leave_nothing(trained, tmp_path):
    root, shards, _, _ = trained
    cnn_settings = root / "cnn.json"
    cnn_settings.write_text(json.dumps({"epochs": 1, "device": "cpu", "progress": "never",
                                        "model": {"name": "jet_cnn", "channels": [4, 8]}}))
    assert main(["train", "--shards", shards[0], "--output", str(tmp_path / "cnn"), "--settings", str(cnn_settings)]) == 0
    assert main(["features", "--model", str(tmp_path / "cnn" / "model.pt"), "--shards", shards[0],
                 "--output", str(tmp_path / "feat")]) == 2
    assert not (tmp_path / "feat" / "prep_0").exists()


def test_train_cli_init_body_from_and_anomaly_mode(trained, tmp_path, capsys):
    root, shards, _, out = trained
    good = root / "pre.json"
    good.write_text(json.dumps({"epochs": 1, "device": "cpu", "progress": "never", "init_body_from": str(out / "model.pt"),
                                "model": {"name": "jet_cnn", "channels": [4, 8]}}))
    assert main(["train", "--shards", *shards[:2], "--output", str(tmp_path / "pre"), "--settings", str(good)]) == 0
    bad = root / "bad.json"
    bad.write_text(json.dumps({"epochs": 1, "device": "cpu", "init_body_from": str(out / "model.pt"),
                               "model": {"name": "jet_cnn", "channels": [4, 16]}}))
    assert main(["train", "--shards", *shards[:2], "--output", str(tmp_path / "bad"), "--settings", str(bad)]) == 2
    assert "init_body_from" in capsys.readouterr().err
    anomaly = root / "anomaly.json"
    anomaly.write_text(json.dumps({"objective": "autoencode", "epochs": 1, "device": "cpu", "progress": "never",
                                   "train_classes": [0], "model": {"name": "jet_image_autoencoder", "channels": [4, 8]}}))
    assert main(["train", "--shards", *shards[:2], "--output", str(tmp_path / "an"), "--settings", str(anomaly)]) == 0
    info = json.loads((tmp_path / "an" / "train_info.json").read_text())
    label = PreparedDataset(shards[:2], "train", ("label",)).numpy("label")
    assert info["n_train"] == int(np.sum(label == 0)) < len(label)
    assert "test_anomaly_auc" in info["metrics"]


def test_validation_subset_is_a_seeded_draw_of_its_size(trained):
    _, shards, _, _ = trained
    val = PreparedDataset(shards[:2], "validation", ("label",))

    def draw(size, seed):
        return select_validation_entries(val, TrainSettings(max_validation_entries=size, seed=seed))

    a, b = draw(20, 3), draw(20, 3)
    assert len(a) == 20 and np.array_equal(a.indices, b.indices)  # the same seed, the same jets
    assert len(np.unique(a.indices)) == 20 and a.indices.max() < len(val)
    assert not np.array_equal(draw(20, 4).indices, a.indices)
    assert draw(len(val) + 1, 3) is val  # the whole split when it is not larger
    assert select_validation_entries(val, TrainSettings()) is val


def test_label_efficiency_needs_jet_pt_to_reweight(trained, tmp_path, capsys):
    root, shards, _, out = trained
    no_pt = []
    for shard in shards[:2]:
        copy = tmp_path / os.path.basename(shard)
        shutil.copytree(shard, copy)
        os.remove(copy / "jet_pt.npy")
        meta = json.loads((copy / "meta.json").read_text())
        del meta["arrays"]["jet_pt"]
        (copy / "meta.json").write_text(json.dumps(meta))
        no_pt.append(str(copy))
    cnn = root / "le_cnn_reweight.json"
    cnn.write_text(json.dumps({"epochs": 1, "batch_size": 16, "device": "cpu", "progress": "never", "reweight": "pt",
                               "model": {"name": "jet_cnn", "channels": [4, 8]}}))
    assert main(["label-efficiency", "--shards", *no_pt, "--settings", str(cnn), "--ae-model", str(out / "model.pt"),
                 "--sizes", "20", "--output", str(tmp_path / "le")]) == 2
    assert "no 'jet_pt' array" in capsys.readouterr().err
    assert not (tmp_path / "le").exists()


def test_pca_projection_finds_the_main_direction():
    rng = np.random.default_rng(0)
    x = np.outer(rng.normal(size=500), [3.0, 4.0, 0.0]) + 0.01 * rng.normal(size=(500, 3))
    proj, ratio = pca_projection(x)
    assert proj.shape == (500, 2) and ratio[0] > 0.99
    np.testing.assert_allclose(np.abs(np.corrcoef(proj[:, 0], x[:, 0])[0, 1]), 1, atol=1e-3)


def test_label_efficiency_cli(trained, tmp_path):
    root, shards, _, out = trained
    cnn = root / "le_cnn.json"
    cnn.write_text(json.dumps({"epochs": 1, "batch_size": 16, "device": "cpu", "progress": "never", "log_epochs": False,
                               "pretrained_body_lr_factor": 0.1, "model": {"name": "jet_cnn", "channels": [4, 8]}}))
    assert main(["label-efficiency", "--shards", *shards[:2], "--settings", str(cnn), "--ae-model", str(out / "model.pt"),
                 "--sizes", "20", "all", "--min-steps", "4", "--repeats", "2", "--output", str(tmp_path / "le")]) == 0
    result = json.loads((tmp_path / "le" / "label_efficiency.json").read_text())
    n_all = len(PreparedDataset(shards[:2], "train", ("label",)))
    assert result["task"] == "jets" and result["model"] == "pretrained_cnn"
    assert result["n_train_sizes"] == [20, n_all]
    # each subset picks its best epoch on as many validation jets as it trained on
    assert result["n_validation"] == {"20": 20, str(n_all): len(PreparedDataset(shards[:2], "validation", ("label",)))}
    table = result["label_efficiency"]
    for init in ("random", "pretrained"):
        # two draws of the 20-jet subset, one run on the whole train split
        assert len(table[init]["20"]) == 2 and len(table[init][str(n_all)]) == 1
        for n in (20, n_all):
            assert 0 <= result[f"auc_{init}_{n}"] <= 1
            assert result[f"auc_{init}_{n}"] == pytest.approx(np.mean(table[init][str(n)]))
        assert result[f"auc_{init}_20_std"] == pytest.approx(np.std(table[init]["20"], ddof=1))
    gains = np.subtract(table["pretrained"]["20"], table["random"]["20"])
    assert result["auc_gain_at_smallest"] == pytest.approx(gains.mean())
    assert result["auc"] == result[f"auc_pretrained_{n_all}"]
    assert (tmp_path / "le" / "label_efficiency.png").stat().st_size > 1000
    assert main(["label-efficiency", "--shards", *shards[:2], "--settings", str(cnn), "--ae-model", str(out / "model.pt"),
                 "--sizes", "0", "--output", str(tmp_path / "le2")]) == 2
    assert main(["label-efficiency", "--shards", *shards[:2], "--settings", str(cnn), "--ae-model", str(out / "model.pt"),
                 "--sizes", "20", "--repeats", "0", "--output", str(tmp_path / "le3")]) == 2
    assert not (tmp_path / "le3").exists()


def test_small_training_sets_are_repeated_up_to_the_minimum_steps(trained):
    _, shards, _, _ = trained
    full = PreparedDataset(shards[:2], "train", ("label",))
    subset = select_training_entries(full, TrainSettings(max_train_entries=10, seed=3))
    repeated = repeat_to_steps(subset, batch_size=8, epochs=2, min_steps=6)
    # 6 steps of 8 over 2 epochs: at least 24 entries per epoch, the same 10 jets each 3 times
    assert len(repeated) == 30
    assert np.array_equal(np.unique(repeated.indices), subset.indices)
    assert np.all(np.bincount(repeated.indices)[subset.indices] == 3)
    assert repeat_to_steps(subset, batch_size=8, epochs=2, min_steps=2) is subset
    assert repeat_to_steps(full, batch_size=8, epochs=2, min_steps=1) is full
    whole = repeat_to_steps(full, batch_size=8, epochs=1, min_steps=len(full))  # a whole split is repeated too
    assert len(whole) == 8 * len(full) and np.all(np.bincount(whole.indices) == 8)
    # the setting does the same inside select_training_entries
    assert len(select_training_entries(full, TrainSettings(max_train_entries=10, seed=3, batch_size=8, epochs=2,
                                                            min_steps=6))) == 30


def test_pretrained_body_learns_at_its_own_rate():
    from hepdl.train.engine import build_optimizer

    model = JetCNN(in_channels=1, channels=[4, 8], head=[8])
    settings = TrainSettings(learning_rate=0.01, init_body_from="ae.pt", pretrained_body_lr_factor=0.1)
    groups = build_optimizer(model, settings).param_groups
    body = {id(p) for p in model.body.parameters()}
    for g in groups:
        in_body = {id(p) in body for p in g["params"]}
        assert len(in_body) == 1  # no group mixes body and head
        assert g["lr"] == pytest.approx(0.001 if in_body.pop() else 0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    # without a pre-trained body the factor does nothing
    plain = build_optimizer(model, TrainSettings(learning_rate=0.01, pretrained_body_lr_factor=0.1)).param_groups
    assert {g["lr"] for g in plain} == {0.01}
