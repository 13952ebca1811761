"""Autoencoders: every variant learns, sparsity shrinks the code, denoising corrupts only in training,
pre-training copies the encoder into the CNN body, anomaly mode trains on background only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepdl.errors import ConfigError, HepdlError
from hepdl.models import JetCNN, build_model, save_model
from hepdl.models.autoencoders import (
    DenseAutoencoder,
    JetImageAutoencoder,
    copy_encoder_into_cnn,
    init_body_from,
)
from hepdl.train import ArrayDataset, TrainSettings, train
from hepdl.train.objectives import Autoencode, make_objective
from hepdl.train.selection import SubsetDataset, select_training_entries

torch.set_num_threads(1)

SMALL = {"channels": [4, 8], "latent_dim": 4, "image_size": [12, 12], "in_channels": 2}


def blob_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Jet-image-like pictures: one or two Gaussian blobs (label 1 has a second prong), non-negative."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:12, 0:12].astype(np.float32)
    label = rng.integers(0, 2, n)
    img = np.zeros((n, 2, 12, 12), np.float32)
    cy, cx = 6 + rng.normal(0, 0.5, n), 6 + rng.normal(0, 0.5, n)
    img[:, 0] = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 2.0)
    second = np.exp(-((yy - 3) ** 2 + (xx - 9 + rng.normal(0, 0.5, n)[:, None, None]) ** 2) / 2.0)
    img[:, 0] += 0.6 * label[:, None, None] * second
    img[:, 1] = 0.5 * img[:, 0] ** 2
    return img * 1e-2, label  # small absolute scale, as sum-normalised images have


def datasets(n: int = 192, label_value: int | None = None):
    img, label = blob_images(n)
    if label_value is not None:
        label = np.full(n, label_value)
    arrays = {"jet_images": img, "label": label, "weight": np.ones(n, np.float32)}
    half = n * 3 // 4
    return (ArrayDataset({k: v[:half] for k, v in arrays.items()}),
            ArrayDataset({k: v[half:] for k, v in arrays.items()}))


def settings(model: dict, epochs: int = 4, **kw) -> TrainSettings:
    return TrainSettings(model=model, objective="autoencode", epochs=epochs, batch_size=32, learning_rate=3e-3,
                         device="cpu", progress="never", log_epochs=False, early_stopping_patience=None,
                         schedule="none", **kw)


@torch.no_grad()
def mean_mse(model, ds) -> float:
    model.eval()
    x = torch.as_tensor(ds.numpy("jet_images")) if "jet_images" in ds.arrays else torch.as_tensor(ds.numpy("expert"))
    recon, _ = model(x)
    return float(((recon - model.target(x)) ** 2).mean())


@pytest.mark.parametrize("variant", [{}, {"sparsity": 0.05}, {"noise_std": 0.3}, {"input_dropout": 0.2}])
def test_image_autoencoder_variants_learn(variant):
    config = {"name": "jet_image_autoencoder", **SMALL, **variant}
    model = build_model(config)
    train_set, val_set = datasets()
    model.fit_standardisation(train_set.numpy("jet_images"))
    before = mean_mse(model, val_set)
    result = train(model, train_set, val_set, settings(config))
    after = mean_mse(result.model, val_set)
    assert after < 0.7 * before, (variant, before, after)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_dense_autoencoder_learns_and_labels_minus_one_are_fine():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(256, 2))
    x = np.concatenate([z, z @ rng.normal(size=(2, 5)) + 0.05 * rng.normal(size=(256, 5))], 1).astype(np.float32) * 40
    arrays = {"expert": x, "label": np.full(256, -1), "weight": np.ones(256, np.float32)}  # unlabelled data
    train_set = ArrayDataset({k: v[:192] for k, v in arrays.items()})
    val_set = ArrayDataset({k: v[192:] for k, v in arrays.items()})
    config = {"name": "dense_autoencoder", "n_features": 7, "hidden": [16], "latent_dim": 2, "noise_std": 0.05}
    model = build_model(config)
    model.fit_standardisation(train_set.numpy("expert"))
    before = mean_mse(model, val_set)
    result = train(model, train_set, val_set, settings(config, epochs=6))
    assert mean_mse(result.model, val_set) < 0.5 * before
    assert "anomaly_auc" not in result.history[-1] and "val_mse" in result.history[-1]


def test_sparsity_reduces_code_l1():
    l1 = {}
    for sparsity in (0.0, 1.0):
        config = {"name": "jet_image_autoencoder", **SMALL, "sparsity": sparsity, "seed": 3}
        train_set, val_set = datasets()
        result = train(build_model(config), train_set, val_set, settings(config))
        l1[sparsity] = result.history[-1]["val_code_l1"]
    assert l1[1.0] < 0.5 * l1[0.0], l1


def test_autoencode_objective_reads_sparsity_and_pixel_weight():
    model = build_model({"name": "jet_image_autoencoder", **SMALL, "sparsity": 0.25})
    obj = make_objective("autoencode", model)
    assert isinstance(obj, Autoencode) and obj.sparsity == 0.25 and obj.input_keys == ("jet_images",)
    x = torch.as_tensor(blob_images(8)[0])
    model.eval()
    plain_loss, logs = Autoencode("jet_images").loss(model, {"jet_images": x})
    sparse_loss, _ = obj.loss(model, {"jet_images": x})
    assert torch.isclose(sparse_loss, plain_loss + 0.25 * logs["code_l1"])
    # weighting only the core pixels changes the loss; uniform weights do not
    w = torch.zeros(2, 12, 12)
    w[:, 4:8, 4:8] = 1
    assert not torch.isclose(Autoencode("jet_images", pixel_weight=w).loss(model, {"jet_images": x})[0], plain_loss)
    assert torch.isclose(Autoencode("jet_images", pixel_weight=torch.ones(2, 12, 12)).loss(model, {"jet_images": x})[0], plain_loss)
    with pytest.raises(ValueError, match="autoencoder"):
        make_objective("autoencode", JetCNN(in_channels=2, channels=[4, 8]))


def test_denoising_corrupts_only_in_training_mode():
    x = torch.as_tensor(blob_images(16)[0])
    for kw in ({"noise_std": 0.5}, {"input_dropout": 0.3}):
        model = JetImageAutoencoder(**SMALL, **kw, norm="none")
        model.train()
        a, _ = model(x)
        b, _ = model(x)
        assert not torch.allclose(a, b)
        model.eval()
        c, code = model(x)
        d, _ = model(x)
        assert torch.equal(c, d) and torch.equal(code, model.encode(x))
    plain = JetImageAutoencoder(**SMALL, norm="none").train()
    assert torch.equal(plain.corrupt(x), x)
    dense = DenseAutoencoder(n_features=3, noise_std=0.5).train()
    f = torch.ones(4, 3)
    assert not torch.equal(dense.corrupt(f), f)
    assert torch.equal(dense.eval().corrupt(f), f)


@pytest.mark.parametrize("norm", ["batch", "weight", "none"])
def test_pretraining_copies_encoder_into_cnn_body(norm):
    ae = JetImageAutoencoder(**SMALL, norm=norm, seed=5)
    img = blob_images(64)[0]
    ae.fit_standardisation(img)
    assert torch.all(ae.standardise.std != 1)  # a real scale to fold into the first convolution
    cnn = JetCNN(in_channels=2, channels=[4, 8], norm=norm, seed=9)
    before = {k: v.clone() for k, v in cnn.body.state_dict().items()}
    copy_encoder_into_cnn(ae, cnn)
    after = cnn.body.state_dict()
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert changed, "no body parameter was copied"
    # every encoder parameter but the first convolution's weight (which absorbs the scale) is copied verbatim
    for k, v in ae.encoder_body.state_dict().items():
        if not k.startswith("0.0."):
            assert torch.equal(after[k], v), k
    ae.eval()
    cnn.eval()
    x = torch.as_tensor(img[:8])
    n_blocks = len(ae.encoder_body)
    torch.testing.assert_close(cnn.body[:n_blocks](x), ae.encoder_body(ae.target(x)), rtol=1e-4, atol=1e-5)


def test_pretraining_from_model_file_and_mismatch_errors(tmp_path):
    ae = JetImageAutoencoder(**SMALL)
    ae.fit_standardisation(blob_images(32)[0])
    path = tmp_path / "ae.pt"
    save_model(path, ae, architecture=ae.config, representation={}, inputs=["jet_images"], task="jets",
               classes=["background", "signal"], provenance={})
    cnn = build_model({"name": "jet_cnn", "in_channels": 2, "channels": [4, 8]})
    init_body_from(cnn, path)
    torch.testing.assert_close(cnn.body[1][0].weight, ae.encoder_body[1][0].weight)
    with pytest.raises(ConfigError, match=r"init_body_from.*channels"):
        init_body_from(build_model({"name": "jet_cnn", "in_channels": 2, "channels": [4, 16]}), path)
    with pytest.raises(ConfigError, match=r"init_body_from.*kernel_size"):
        init_body_from(build_model({"name": "jet_cnn", "in_channels": 2, "channels": [4, 8], "kernel_size": 5}), path)
    with pytest.raises(ConfigError, match="init_body_from"):
        init_body_from(cnn, tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="only a jet_cnn"):
        copy_encoder_into_cnn(ae, build_model({"name": "jet_mlp", "n_features": 3}))


def test_anomaly_mode_trains_on_background_only():
    train_set, val_set = datasets(256)
    label = train_set.numpy("label")
    s = settings({"name": "jet_image_autoencoder", **SMALL}, train_classes=[0])
    chosen = select_training_entries(train_set, s)
    assert isinstance(chosen, SubsetDataset)
    assert len(chosen) == int(np.sum(label == 0)) < len(train_set)
    assert np.all(chosen.numpy("label") == 0)
    assert np.all(chosen.batch(list(range(len(chosen))))["label"].numpy() == 0)
    # the engine sees only those entries: record every batch's labels
    seen = []
    model = build_model(s.model)
    original = model.forward

    def spy(x):
        if model.training:  # training batches only, not validation
            seen.append(x.shape[0])
        return original(x)

    model.forward = spy
    train(model, chosen, val_set, TrainSettings(**{**s.to_dict(), "epochs": 1}))
    # one epoch of training batches covers the background entries (less a dropped short last batch)
    assert len(chosen) - s.batch_size < sum(seen) <= len(chosen) < len(train_set)
    with pytest.raises(HepdlError, match="train_classes"):
        select_training_entries(train_set, settings(s.model, train_classes=[7]))


def test_max_train_entries_is_a_seeded_subset():
    train_set, _ = datasets(256)
    s = settings({"name": "jet_image_autoencoder"}, max_train_entries=50, seed=4)
    a = select_training_entries(train_set, s)
    b = select_training_entries(train_set, s)
    c = select_training_entries(train_set, settings({"name": "jet_image_autoencoder"}, max_train_entries=50, seed=5))
    assert len(a) == 50 and np.array_equal(a.indices, b.indices) and not np.array_equal(a.indices, c.indices)
    both = select_training_entries(train_set, settings({"name": "x"}, max_train_entries=20, train_classes=[1]))
    assert len(both) == 20 and np.all(both.numpy("label") == 1)
    with pytest.raises(ConfigError, match="max_train_entries"):
        settings({"name": "x"}, max_train_entries=0)
    with pytest.raises(ConfigError, match="train_classes"):
        settings({"name": "x"}, train_classes=[])


def test_relu_output_reconstructs_non_negative_images():
    x = torch.as_tensor(blob_images(8)[0])
    model = JetImageAutoencoder(**SMALL, output="relu").eval()
    recon, _ = model(x)
    assert recon.min() >= 0
    linear = JetImageAutoencoder(**SMALL, output="linear").eval()
    assert linear(x)[0].min() < 0  # a linear output layer does reach below zero at initialisation
    with pytest.raises(ValueError, match="output"):
        JetImageAutoencoder(**SMALL, output="sigmoid")
