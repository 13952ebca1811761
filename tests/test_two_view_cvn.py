"""Tests of the two-view CVN neutrino classifier: training on generated events, tower
weight sharing, inception blocks, view order, and the model file round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepdl.errors import ConfigError
from hepdl.generate import generate_neutrino
from hepdl.models import TwoViewCVN, build_model, load_model_file, save_model
from hepdl.models.two_view_cvn import InceptionBlock
from hepdl.represent.prepared import prepare_file
from hepdl.represent.torch_dataset import PreparedDataset
from hepdl.train import TrainSettings, predict, train

#: A CVN small enough to train in seconds on a CPU core.
TINY = {
    "name": "two_view_cvn",
    "stem_channels": 4,
    "channels": [8],
    "head": [16],
    "dropout": 0.0,
    "seed": 3,
}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """200 generated neutrino events (numu CC, nue CC, NC), prepared into one shard."""
    tmp = tmp_path_factory.mktemp("cvn")
    generate_neutrino(tmp / "nu.root", n_events=200, seed=5, progress=False)
    # a smaller window than the default 100 x 80 keeps the test fast; it still holds the events' cores
    prepare_file(
        "neutrino",
        str(tmp / "nu.root"),
        str(tmp / "shard"),
        seed=1,
        spec={"pixel_map": {"planes": 48, "cells": 32}},
    )
    return [str(tmp / "shard")]


def _maps(n: int = 6, planes: int = 20, cells: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    energy = torch.rand(n, 2, planes, cells, generator=gen) * 30
    hit = torch.rand(n, 2, planes, cells, generator=gen) < 0.1
    return energy * hit


def test_tiny_cvn_trains_through_the_engine(shards):
    torch.manual_seed(0)
    arrays = ("pixel_maps", "label", "weight")
    train_set = PreparedDataset(shards, "train", arrays)
    val_set = PreparedDataset(shards, "validation", arrays)
    model = build_model(TINY)
    settings = TrainSettings(
        model=TINY,
        epochs=6,
        batch_size=16,
        learning_rate=3e-3,
        schedule="none",
        early_stopping_patience=None,
        augment=True,
        augment_shift=1,
        augment_noise=0.05,
        progress="never",
        log_epochs=False,
        device="cpu",
    )
    result = train(model, train_set, val_set, settings)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 6
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.85 * losses[0], losses
    out = predict(result.model, val_set, device="cpu", keys=("label",))
    probs = out["score"]
    assert probs.shape == (len(val_set), 3)
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # better than always guessing the largest class of the three (balanced: ~1/3)
    counts = np.bincount(out["label"], minlength=3)
    assert np.mean(probs.argmax(1) == out["label"]) > counts.max() / counts.sum()


def _conv_bn(cin: int, cout: int, k: int) -> int:
    # conv without bias (batch norm follows), then the batch norm's scale and shift
    return cin * cout * k * k + 2 * cout


def test_shared_and_separate_towers_parameter_counts():
    cfg = {
        "name": "two_view_cvn",
        "stem_channels": 4,
        "stem_kernel": 5,
        "channels": [8, 12],
        "head": [10],
        "global_pool": "avg_max",
        "n_outputs": 3,
    }
    tower = _conv_bn(1, 4, 5) + _conv_bn(4, 8, 3) + _conv_bn(8, 12, 3)
    features = 2 * 12 * 2  # two views, avg and max pooling of 12 channels each
    head = features * 10 + 10 + 10 * 3 + 3
    separate = build_model(cfg)
    shared = build_model({**cfg, "shared_towers": True})
    assert sum(p.numel() for p in shared.parameters()) == tower + head
    assert sum(p.numel() for p in separate.parameters()) == 2 * tower + head
    assert len(separate.body.towers) == 2 and len(shared.body.towers) == 1
    assert separate.body_dim == shared.body_dim == features
    # the separate towers start from different weights (one seeded generator draws both)
    w0, w1 = (t[0][0].weight for t in separate.body.towers)
    assert not torch.equal(w0, w1)


def test_body_and_head_compose_the_forward():
    model = build_model({**TINY, "n_outputs": 4}).eval()
    x = _maps()
    features = model.body(x)
    assert features.shape == (len(x), model.body_dim)
    torch.testing.assert_close(model.head(features), model(x))
    assert model(x).shape == (len(x), 4)


def test_inception_option_builds_runs_and_learns():
    block = InceptionBlock(6, 18)
    y = block(torch.randn(2, 6, 9, 7))
    assert y.shape == (2, 18, 9, 7)  # "same" padding in every branch, widths summing to 18
    model = build_model({**TINY, "inception": True, "channels": [8, 12]})
    assert any(isinstance(m, InceptionBlock) for m in model.modules())
    x = _maps(n=8)
    label = torch.arange(8) % 3
    out = model(x)
    assert out.shape == (8, 3) and torch.isfinite(out).all()
    loss = torch.nn.functional.cross_entropy(out, label)
    loss.backward()
    grads = [p.grad for p in model.body.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_views_are_not_interchangeable_with_separate_towers():
    model = build_model(TINY).eval()
    x = _maps(n=5)
    swapped = x[:, [1, 0]]
    with torch.no_grad():
        assert not torch.allclose(model(x), model(swapped), atol=1e-4)
        # the towers themselves differ: view 0's features change when its tower is given view 1
        f = model.body(x)
        g = model.body(swapped)
    half = model.body_dim // 2
    assert not torch.allclose(f[:, :half], g[:, half:], atol=1e-4)
    # with shared towers the features just swap places
    shared = build_model({**TINY, "shared_towers": True}).eval()
    with torch.no_grad():
        f, g = shared.body(x), shared.body(swapped)
    torch.testing.assert_close(f[:, :half], g[:, half:])
    torch.testing.assert_close(f[:, half:], g[:, :half])


def test_model_file_round_trip_gives_identical_outputs(tmp_path):
    model = build_model({**TINY, "inception": True, "shared_towers": False})
    # move the batch-norm running statistics away from their initial values
    model.train()
    with torch.no_grad():
        model(_maps(n=16, seed=1))
    model.eval()
    x = _maps(n=7, seed=2)
    with torch.no_grad():
        expected = model(x)
    path = tmp_path / "cvn.pt"
    save_model(
        path,
        model,
        architecture=model.config,
        representation={"spec": {"task": "neutrino"}},
        inputs=["pixel_maps"],
        task="neutrino",
        classes=["numu_cc", "nue_cc", "nc"],
        provenance={"test": True},
    )
    loaded, info = load_model_file(path)
    assert isinstance(loaded, TwoViewCVN)
    assert info["architecture"] == model.config
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def test_bad_settings_and_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="global_pool"):
        build_model({"name": "two_view_cvn", "global_pool": "median"})
    with pytest.raises(ConfigError, match="input_transform"):
        build_model({"name": "two_view_cvn", "input_transform": "sqrt"})
    with pytest.raises(ConfigError, match="not a setting"):
        build_model({"name": "two_view_cvn", "towers": 2})
    model = build_model(TINY)
    with pytest.raises(ValueError, match=r"\(N, 2, planes, cells\)"):
        model(torch.zeros(3, 1, 20, 16))


def test_log1p_input_never_makes_nans_from_noisy_negative_pixels():
    model = build_model(TINY).eval()
    x = _maps()
    x[0, 0, 0, 0] = -5.0  # multiplicative augmentation noise can push a deposit below zero
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


def test_resume_repeats_the_uninterrupted_run(shards, tmp_path):
    arrays = ("pixel_maps", "label", "weight")
    train_set = PreparedDataset(shards, "train", arrays)
    val_set = PreparedDataset(shards, "validation", arrays)
    common = dict(
        model=TINY,
        batch_size=32,
        learning_rate=3e-3,
        schedule="none",  # a cosine schedule's length depends on `epochs`; stopping early would change it
        early_stopping_patience=None,
        augment=True,
        augment_shift=2,
        augment_noise=0.05,
        progress="never",
        log_epochs=False,
        device="cpu",
    )
    straight = train(build_model(TINY), train_set, val_set, TrainSettings(epochs=2, **common))
    train(
        build_model(TINY), train_set, val_set, TrainSettings(epochs=1, **common), out_dir=tmp_path
    )
    # resume the 1-epoch run's checkpoint for a second epoch
    resumed = train(
        build_model(TINY),
        train_set,
        val_set,
        TrainSettings(epochs=2, **common),
        out_dir=tmp_path,
        resume=True,
    )
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
