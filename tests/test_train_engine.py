"""The training engine on a learnable toy problem: 2-prong (signal) vs 1-prong (background) images."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from hepdl.errors import ConfigError
from hepdl.models import build_model, load_model_file
from hepdl.stats import auc
from hepdl.train import (
    ArrayDataset,
    EpochBatchSampler,
    TrainSettings,
    choose_device,
    jet_image_augment,
    pixel_map_augment,
    predict,
    reweight_background_to_signal,
    train,
)
from hepdl.train.augment import auto_reflections
from hepdl.train.settings import load_settings

torch.set_num_threads(1)


def toy_jets(n: int, seed: int, size: int = 16) -> dict[str, np.ndarray]:
    """One hard core (both classes) plus, for signal, a softer second prong 3-5 pixels below it."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    img = np.zeros((n, 1, size, size), np.float32)
    c, rows = size // 2, np.arange(n)
    jit = rng.integers(-1, 2, size=(n, 2))
    img[rows, 0, c + jit[:, 0], c + jit[:, 1]] += rng.uniform(0.5, 1.0, n).astype(np.float32)
    sig = label == 1
    d = rng.integers(3, 6, size=n)
    img[rows[sig], 0, (c + d)[sig] % size, c] += rng.uniform(0.2, 0.5, sig.sum()).astype(np.float32)
    img += (rng.exponential(0.02, img.shape) * (rng.random(img.shape) < 0.1)).astype(np.float32)
    pt = np.where(sig, rng.normal(500, 50, n), rng.exponential(100, n) + 350).astype(np.float32)
    return {
        "jet_images": img, "label": label, "weight": np.ones(n, np.float32), "jet_pt": pt,
        "jet_eta": rng.uniform(-2, 2, n).astype(np.float32), "jet_mass": rng.uniform(50, 150, n).astype(np.float32),
        "expert": np.stack([img.sum((1, 2, 3)), img[:, 0, c + 2 :, :].sum((1, 2)), pt / 100], 1).astype(np.float32),
    }


SMALL_CNN = {"name": "jet_cnn", "in_channels": 1, "channels": [8, 16], "head": [16], "dropout": 0.1}


def settings(**kw) -> TrainSettings:
    base = {"model": SMALL_CNN, "epochs": 3, "batch_size": 64, "progress": "never", "log_epochs": False}
    return TrainSettings(**{**base, **kw})


def test_loss_decreases_and_learns_toy_problem(tmp_path):
    tr, va, te = ArrayDataset(toy_jets(1500, 0)), ArrayDataset(toy_jets(400, 1)), ArrayDataset(toy_jets(400, 2))
    s = settings(epochs=4)
    result = train(build_model(s.model), tr, va, s, out_dir=tmp_path)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] - 0.02
    out = predict(result.model, te, keys=("label",))
    assert auc(out["score"], out["label"]) > 0.8
    rows = list(csv.DictReader((tmp_path / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert {"train_loss", "val_loss", "val_auc", "lr", "seconds"} <= set(rows[0])
    assert (tmp_path / "training_curve.png").stat().st_size > 1000
    assert (tmp_path / "checkpoint.pt").exists()
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_same_seed_same_weights_and_other_seed_differs():
    tr, va = ArrayDataset(toy_jets(300, 0)), ArrayDataset(toy_jets(100, 1))
    s = settings(epochs=1, augment=True, augment_shift=1, augment_noise=0.05)
    a = train(build_model(s.model), tr, va, s).model.state_dict()
    b = train(build_model(s.model), tr, va, s).model.state_dict()
    s2 = settings(epochs=1, seed=1, augment=True, augment_shift=1, augment_noise=0.05)
    c = train(build_model(s2.model), tr, va, s2).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_mlp_standardisation_and_multiclass():
    data = toy_jets(600, 3)
    data["label"] = (data["jet_pt"] > 450).astype(np.int64) + (data["label"] == 1)  # 3 classes
    tr, va = ArrayDataset(data), ArrayDataset(toy_jets(200, 4))
    s = settings(model={"name": "jet_mlp", "n_features": 3, "n_outputs": 3, "hidden": [16]}, epochs=2)
    result = train(build_model(s.model), tr, va, s)
    std = result.model.standardise
    np.testing.assert_allclose(std.mean.numpy(), data["expert"].mean(0), rtol=1e-4)
    assert "val_accuracy" in result.history[-1]
    out = predict(result.model, va)
    assert out["score"].shape == (200, 3)
    np.testing.assert_allclose(out["score"].sum(1), 1, rtol=1e-5)


def test_l1_penalty_shrinks_weights():
    tr, va = ArrayDataset(toy_jets(300, 0)), ArrayDataset(toy_jets(100, 1))
    plain = train(build_model(SMALL_CNN), tr, va, settings(epochs=2, learning_rate=0.02)).model
    sparse = train(build_model(SMALL_CNN), tr, va, settings(epochs=2, learning_rate=0.02, l1=1e-2)).model

    def l1(m):
        return sum(p.abs().sum().item() for p in m.parameters() if p.dim() >= 2)

    assert l1(sparse) < 0.8 * l1(plain)


def test_early_stopping_and_schedules():
    tr, va = ArrayDataset(toy_jets(200, 0)), ArrayDataset(toy_jets(100, 1))
    # lr 0 and no batch norm: the validation loss never improves after epoch 1, so patience 1 stops after epoch 2
    frozen = {**SMALL_CNN, "norm": "none"}
    r = train(build_model(frozen), tr, va, settings(model=frozen, epochs=6, learning_rate=0.0, early_stopping_patience=1))
    assert r.stopped_early and r.epochs_run == 2 and r.best_epoch == 1
    r = train(build_model(SMALL_CNN), tr, va, settings(epochs=3, schedule="step", step_size=1, gamma=0.5,
                                                        optimizer="sgd"))
    assert [row["lr"] for row in r.history] == pytest.approx([1e-3, 5e-4, 2.5e-4])


def test_pt_reweighting_flattens_background_to_signal_ratio():
    rng = np.random.default_rng(5)
    n = 40000
    label = (rng.random(n) < 0.5).astype(np.int64)
    pt = np.where(label == 1, rng.normal(600, 80, n), rng.exponential(150, n) + 300)
    eta = np.where(label == 1, rng.normal(0, 0.8, n), rng.uniform(-2.5, 2.5, n))
    w = reweight_background_to_signal(pt, eta, label, pt_bins=20, eta_bins=8)
    assert w.shape == (n,) and np.all(w[label == 1] == 1)
    edges = np.quantile(pt, np.linspace(0.05, 0.95, 8))
    sig, _ = np.histogram(pt[label == 1], edges, density=True)
    before, _ = np.histogram(pt[label == 0], edges, density=True)
    after, _ = np.histogram(pt[label == 0], edges, weights=w[label == 0], density=True)
    assert np.max(np.abs(before / sig - 1)) > 0.5  # the spectra differ to start with
    assert np.max(np.abs(after / sig - 1)) < 0.15
    # eta is flattened too in pt_eta mode
    eta_edges = np.linspace(-1.5, 1.5, 5)
    s_eta, _ = np.histogram(eta[label == 1], eta_edges, density=True)
    b_eta, _ = np.histogram(eta[label == 0], eta_edges, weights=w[label == 0], density=True)
    assert np.max(np.abs(b_eta / s_eta - 1)) < 0.2


def test_small_samples_get_fewer_reweighting_bins():
    from hepdl.train.reweight import MIN_PER_BIN, SpectrumReweighter

    rng = np.random.default_rng(8)
    for n, expected_bins in ((20, 1), (50, 2), (200, 10), (4000, 20)):
        label = np.arange(n) % 2
        pt = np.where(label == 1, rng.normal(600, 100, n), rng.normal(550, 100, n))  # overlapping spectra
        rw = SpectrumReweighter.fit(pt, None, label, pt_bins=20)
        assert len(rw.pt_edges) - 1 == expected_bins
        assert expected_bins == 1 or (n // 2) / expected_bins >= MIN_PER_BIN
        w = rw.weights(pt, None, label)
        # 20 fixed bins over 50 jets left most background jets alone in a bin without signal: weight 0
        assert np.mean(w[label == 0] > 0) > 0.85
        # the same jets repeated (label-efficiency epochs) are still a small sample
        repeated = SpectrumReweighter.fit(np.tile(pt, 21), None, np.tile(label, 21), pt_bins=20)
        assert len(repeated.pt_edges) == len(rw.pt_edges)
    # (pT, eta): pT bins take the cells first
    label = np.arange(200) % 2
    rw = SpectrumReweighter.fit(rng.normal(500, 50, 200), rng.normal(0, 1, 200), label, pt_bins=20, eta_bins=4)
    assert (len(rw.pt_edges) - 1, len(rw.eta_edges) - 1) == (10, 1)


def test_reweighting_in_engine_uses_training_split():
    tr, va = ArrayDataset(toy_jets(400, 0)), ArrayDataset(toy_jets(100, 1))
    r = train(build_model(SMALL_CNN), tr, va, settings(epochs=1, reweight="pt_eta"))
    assert np.isfinite(r.history[0]["val_loss"])


def test_augmentation_reflections_and_sums():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 2, 8, 8)
    aug = jet_image_augment(["rows"], max_shift=0, noise=0.0)
    y = aug(x, gen)
    flipped = (y != x).flatten(1).any(1)
    assert 10 < flipped.sum() < 54  # about half
    torch.testing.assert_close(y[flipped], x[flipped].flip(-2))
    torch.testing.assert_close(y[~flipped], x[~flipped])
    y = jet_image_augment(["columns"], 0, 0.0)(x, gen)
    changed = (y != x).flatten(1).any(1)
    torch.testing.assert_close(y[changed], x[changed].flip(-1))
    # rolls keep every image's content (sum and sorted values)
    y = jet_image_augment([], max_shift=1, noise=0.0)(x, gen)
    torch.testing.assert_close(y.sum((1, 2, 3)), x.sum((1, 2, 3)))
    torch.testing.assert_close(y.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    assert (y != x).flatten(1).any(1).float().mean() > 0.5
    # noise: zeros stay zero, sums change little
    sparse = x * (x > 0.7)
    y = pixel_map_augment(max_shift=0, noise=0.1)(sparse, gen)
    assert torch.equal(y == 0, sparse == 0)
    assert torch.allclose(y.sum((1, 2, 3)), sparse.sum((1, 2, 3)), rtol=0.15)
    # seeded
    a = jet_image_augment(["rows"], 1, 0.1)(x, torch.Generator().manual_seed(3))
    b = jet_image_augment(["rows"], 1, 0.1)(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert auto_reflections({"rotate": True, "flip": True}) == ("rows",)
    assert auto_reflections({"rotate": False, "flip": False}) == ("rows", "columns")
    assert pixel_map_augment(1, 0.0).reflect_dims == ()


def test_sampler_deterministic_and_disjoint_across_ranks():
    s = EpochBatchSampler(103, 10, seed=4)
    s.set_epoch(2)
    full = [i for b in s for i in b]
    assert sorted(full) == list(range(103))
    s.set_epoch(2, start_batch=3)
    assert [i for b in s for i in b] == full[30:]
    s.set_epoch(3)
    assert [i for b in s for i in b] != full
    ranks = [EpochBatchSampler(103, 10, seed=4, rank=r, world_size=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(2)
    parts = [[i for b in r for i in b] for r in ranks]
    assert len(parts[0]) == len(parts[1]) == 52
    assert set(parts[0]) | set(parts[1]) == set(range(103))


def test_settings_reject_unknown_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="learning_rat"):
        TrainSettings.from_dict({"learning_rat": 0.1})
    with pytest.raises(ConfigError, match="optimizer"):
        TrainSettings(optimizer="lbfgs")
    path = tmp_path / "s.yaml"
    path.write_text("epochs: 2\nmodel: {name: jet_mlp}\nschedule: plateau\n")
    s = load_settings(path)
    assert s.epochs == 2 and s.model == {"name": "jet_mlp"} and s.schedule == "plateau"
    path.write_text(json.dumps({"epochs": 2, "bogus": 1}))
    with pytest.raises(ConfigError, match="bogus"):
        load_settings(path)


def _write_shard(directory, arrays: dict[str, np.ndarray], seed: int) -> None:
    """A prepared shard per the dataset contract (meta.json + .npy files)."""
    os.makedirs(directory)
    n = len(arrays["label"])
    split = np.random.default_rng([seed, 99]).choice(3, size=n, p=[0.6, 0.2, 0.2]).astype(np.uint8)
    arrays = {**arrays, "split": split}
    for name, a in arrays.items():
        np.save(os.path.join(directory, f"{name}.npy"), a)
    meta = {
        "format": "hepdl-prepared-v1", "task": "jets", "n_entries": n,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "feature_names": {"expert": ["sum", "lower", "pt"]}, "spec": {"task": "jets", "image": {"size": [16, 16]}},
        "fields": {}, "source": {"path": "toy.root", "tree": "events", "entries": n},
        "split": {"seed": seed, "fractions": [0.6, 0.2, 0.2]},
    }
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f)


def test_cli_train_writes_all_outputs(tmp_path):
    _write_shard(tmp_path / "shards" / "a", toy_jets(700, 0), 0)
    _write_shard(tmp_path / "shards" / "b", toy_jets(500, 1), 1)
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"model": {"name": "jet_cnn", "channels": [8, 16], "head": [16]}, "epochs": 2,
                               "batch_size": 64, "progress": "never"}))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hepdl.cli", "train", "--shards", str(tmp_path / "shards"), "--output", str(out),
           "--settings", str(cfg), "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {"model.pt", "checkpoint.pt", "metrics.csv", "training_curve.png", "test_scores.npz", "val_scores.npz",
            "train_info.json"} <= set(os.listdir(out))
    scores = np.load(out / "test_scores.npz")
    assert {"score", "label", "weight", "jet_pt", "jet_mass"} <= set(scores.files)
    assert scores["score"].shape == scores["label"].shape
    info = json.loads((out / "train_info.json").read_text())
    assert info["epochs_run"] == 2 and info["settings"]["model"]["in_channels"] == 1
    model, meta = load_model_file(out / "model.pt")
    assert meta["inputs"] == ["jet_images"] and meta["classes"] == ["background", "signal"]
    assert "test_auc" in meta["metrics"]
    # --resume of a finished run rewrites the same outputs without training again
    before = (out / "metrics.csv").read_text()
    proc = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (out / "metrics.csv").read_text() == before and "epoch 1/2" not in proc.stderr
    # an unknown settings key fails with one line naming it, exit status 2
    cfg.write_text(json.dumps({"epochz": 2}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "epochz" in proc.stderr and "Traceback" not in proc.stderr


def test_resume_without_checkpoint_starts_fresh_and_refuses_other_settings(tmp_path):
    tr, va = ArrayDataset(toy_jets(200, 0)), ArrayDataset(toy_jets(100, 1))
    s = settings(epochs=1)
    r = train(build_model(s.model), tr, va, s, out_dir=tmp_path, resume=True)
    assert r.epochs_run == 1
    more = settings(epochs=2)  # more epochs may be asked for on resumption
    r = train(build_model(s.model), tr, va, more, out_dir=tmp_path, resume=True)
    assert [row["epoch"] for row in r.history] == [1, 2]
    with pytest.raises(ConfigError, match="learning_rate"):
        train(build_model(s.model), tr, va, settings(epochs=3, learning_rate=0.1), out_dir=tmp_path, resume=True)


def test_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    tr, va = ArrayDataset(toy_jets(300, 0)), ArrayDataset(toy_jets(100, 1))

    def run(epochs, out, resume=False):
        # min_delta 1: no epoch after the first improves on it, so patience 2 stops after epoch 3
        s = settings(epochs=epochs, augment=True, augment_shift=1, augment_noise=0.05, schedule="step", step_size=1,
                     early_stopping_patience=2, min_delta=1.0)
        return train(build_model(s.model), tr, va, s, out_dir=out, resume=resume)

    straight = run(6, tmp_path / "straight")
    assert straight.stopped_early and straight.epochs_run == 3 and straight.best_epoch == 1
    assert not run(2, tmp_path / "parts").stopped_early
    resumed = run(6, tmp_path / "parts", resume=True)  # the patience count carries over the resumption

    def timeless(history):
        return [{k: v for k, v in row.items() if k not in ("seconds", "samples_per_s")} for row in history]

    assert timeless(resumed.history) == timeless(straight.history)
    assert (resumed.stopped_early, resumed.best_epoch, resumed.best_val_loss) == (True, 1, straight.best_val_loss)
    expected = straight.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in resumed.model.state_dict().items())


def test_class_and_event_weights_enter_the_loss_weights():
    from hepdl.train.engine import class_weights, sample_weights

    data = toy_jets(300, 0)
    data["label"][:] = 0
    data["label"][:100] = 1
    data["weight"][:50] = 3.0
    ds = ArrayDataset(data)
    s = settings(class_weights="balanced")
    cw = class_weights(s, data["label"], 2)
    np.testing.assert_allclose(cw, [300 / (2 * 200), 300 / (2 * 100)])
    w = sample_weights(ds, s, 2, None, cw).numpy()
    assert w.mean() == pytest.approx(1.0)
    # balanced: both classes carry the same total weight once event weights are divided out
    unweighted = w / data["weight"]
    assert unweighted[data["label"] == 1].sum() == pytest.approx(unweighted[data["label"] == 0].sum(), rel=1e-5)
    assert w[0] / w[60] == pytest.approx(3.0)
    w_off = sample_weights(ds, settings(use_event_weights=False), 2, None, None).numpy()
    np.testing.assert_allclose(w_off, 1.0)
    with pytest.raises(ConfigError, match="class_weights"):
        class_weights(settings(class_weights=[1.0, 2.0, 3.0]), data["label"], 2)


def test_device_choice():
    from hepdl.train.device import choose_precision

    assert choose_device("auto").type in ("cuda", "mps", "cpu")
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            choose_device("cuda")
    assert choose_precision("auto", torch.device("cpu")) is None
    assert choose_precision("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ConfigError, match="fp16"):
        choose_precision("fp16", torch.device("cpu"))
