"""Gradient reversal, the DANN wrapper and its "adapt" objective, and the fine-tuning path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepdl.models import (
    DomainAdversarial,
    GradientReversal,
    build_model,
    load_model_file,
    reversal_schedule,
    save_model,
)
from hepdl.models.domain_adversarial import grad_reverse
from hepdl.train import ArrayDataset, TrainSettings, train
from hepdl.train.objectives import (
    NO_LABEL,
    Adapt,
    Decorrelate,
    DomainDataset,
    Finetune,
    load_for_finetuning,
)

torch.set_num_threads(1)

BASE = {"name": "jet_cnn", "in_channels": 1, "channels": [4, 8], "head": [8], "seed": 3}


def toy_images(n: int, shift: float, seed: int, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """8x8 one-channel images: signal has a brighter centre; ``shift`` brightens every centre (the 'data' effect)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n) if labels is None else labels
    x = rng.normal(0.0, 1.0, size=(n, 1, 8, 8)).astype(np.float32)
    x[:, :, 3:5, 3:5] += (1.5 * (y == 1) + shift)[:, None, None, None]
    return {"jet_images": x, "label": y.astype(np.int64), "weight": np.ones(n, np.float32)}


def settings(**kw) -> TrainSettings:
    base = dict(objective="adapt", epochs=3, batch_size=64, device="cpu", progress="never", log_epochs=False,
                seed=5, early_stopping_patience=None)
    base.update(kw)
    return TrainSettings(**base)


# ---------------------------------------------------------------- gradient reversal


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_identity_forward_and_flips_scaled_gradient(lam):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=gen, requires_grad=True)
    w = torch.randn(3, generator=gen)
    layer = GradientReversal(lam)
    y = layer(x)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    reference = x.detach().clone().requires_grad_(True)
    (reference * w).sum().backward()
    # exactly -lambda times the gradient that plain identity gives
    assert torch.equal(x.grad, -lam * reference.grad)


def test_gradient_reversal_inside_a_network_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    lin = torch.nn.Linear(4, 2)
    x = torch.randn(6, 4, generator=gen)
    lin.zero_grad()
    (grad_reverse(lin(x), 0.7) ** 2).sum().backward()
    reversed_grad = lin.weight.grad.clone()
    lin.zero_grad()
    (lin(x) ** 2).sum().backward()
    torch.testing.assert_close(reversed_grad, -0.7 * lin.weight.grad)


def test_reversal_schedule_values():
    assert reversal_schedule(0.0) == 0.0
    assert reversal_schedule(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert reversal_schedule(0.5, lambda_max=0.4) == pytest.approx(0.4 * (2 / (1 + math.exp(-5)) - 1))
    assert reversal_schedule(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    values = [reversal_schedule(p) for p in np.linspace(0, 1, 11)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert reversal_schedule(-1.0) == 0.0 and reversal_schedule(2.0) == reversal_schedule(1.0)


# ---------------------------------------------------------------- the wrapper


def test_domain_adversarial_forward_is_the_base_models():
    model = build_model({"name": "domain_adversarial", "base": BASE, "domain_hidden": 16})
    base = build_model(BASE)
    base.load_state_dict(model.base.state_dict())
    model.eval(), base.eval()
    x = torch.randn(7, 1, 8, 8)
    torch.testing.assert_close(model(x), base(x))
    logits, dom = model(x, domain_lambda=0.5)
    torch.testing.assert_close(logits, base(x))
    assert dom.shape == (7,)
    assert model.body is model.base.body and model.head is model.base.head
    assert model.input_key == "jet_images" and model.body_dim == 8
    assert model.config["base"]["name"] == "jet_cnn" and model.config["domain_hidden"] == 16  # as given


def test_domain_adversarial_refuses_a_model_without_body():
    from hepdl.errors import ConfigError

    with pytest.raises(ConfigError, match="base"):
        build_model({"name": "domain_adversarial", "base": {"name": "domain_adversarial", "base": BASE}})


def test_domain_adversarial_model_file_round_trip(tmp_path):
    model = build_model({"name": "domain_adversarial", "base": BASE})
    path = tmp_path / "dann.pt"
    save_model(path, model, architecture=model.config, representation={}, inputs=["jet_images"], task="jets",
               classes=["background", "signal"], provenance={})
    loaded, info = load_model_file(path)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert isinstance(loaded, DomainAdversarial)


def test_domain_dataset_hides_data_labels():
    sim = ArrayDataset(toy_images(10, 0.0, 0))
    data = ArrayDataset(toy_images(6, 1.0, 1, labels=np.full(6, 1)))
    ds = DomainDataset(sim, data)
    assert len(ds) == 16
    b = ds.batch([15, 0, 12, 3])
    assert b["domain"].tolist() == [1, 0, 1, 0]
    assert b["label"][[0, 2]].tolist() == [NO_LABEL, NO_LABEL]
    assert b["label"][[1, 3]].tolist() == sim.numpy("label")[[0, 3]].tolist()
    torch.testing.assert_close(b["jet_images"][0], data[5]["jet_images"])
    assert np.all(ds.numpy("label")[10:] == NO_LABEL)
    assert ds.numpy("domain").tolist() == [0] * 10 + [1] * 6


# ---------------------------------------------------------------- adapt training


def _adapt_run(data_labels: np.ndarray | None, seed: int = 5, **kw):
    sim = ArrayDataset(toy_images(384, 0.0, 10))
    data_arrays = toy_images(256, 1.2, 11)
    if data_labels is not None:  # the same images, other label values
        data_arrays["label"] = data_labels
    data = ArrayDataset(data_arrays)
    val = ArrayDataset(toy_images(128, 0.0, 12))
    model = build_model({"name": "domain_adversarial", "base": BASE, "domain_hidden": 8, "seed": 4})
    return train(model, DomainDataset(sim, data), val, settings(seed=seed, **kw))


def test_adapt_trains_and_the_domain_head_sees_data():
    result = _adapt_run(None, domain_lambda_max=1.0)
    assert isinstance(result.objective, Adapt)
    assert result.epochs_run == 3 and all(np.isfinite(r["train_loss"]) for r in result.history)
    assert result.objective.progress > 0.9  # the engine moved the ramp along
    assert result.objective.current_lambda == pytest.approx(reversal_schedule(result.objective.progress))
    # the domain head learnt to tell the shifted data apart from the simulation on this toy
    model = result.model.eval()
    sim = torch.as_tensor(toy_images(200, 0.0, 20)["jet_images"])
    data = torch.as_tensor(toy_images(200, 1.2, 21)["jet_images"])
    with torch.no_grad():
        d_sim = model(sim, domain_lambda=0.0)[1].mean()
        d_data = model(data, domain_lambda=0.0)[1].mean()
    assert d_data > d_sim


def test_domain_gradient_reaches_the_body_reversed():
    model = build_model({"name": "domain_adversarial", "base": BASE, "domain_hidden": 8})
    objective = Adapt("jet_images", lambda_max=1.0)
    objective.set_progress(1.0)
    d = toy_images(32, 0.0, 0)
    batch = {"jet_images": torch.as_tensor(d["jet_images"]), "label": torch.full((32,), NO_LABEL),
             "domain": torch.ones(32, dtype=torch.long)}  # only data: no label loss at all
    model.train()
    loss, logs = objective.loss(model, batch)
    assert float(logs["label_loss"]) == 0.0
    loss.backward()
    body_w = next(model.body.parameters())
    first = body_w.grad.clone()
    # the same loss without reversal gives the opposite body gradient (scaled by lambda)
    model.zero_grad()
    objective.lambda_max = 0.0
    model.reversal.lambda_ = 0.0
    feats = model.body(batch["jet_images"])
    from hepdl.train.objectives import balanced_domain_loss

    balanced_domain_loss(model.domain_head(feats).squeeze(-1), batch["domain"]).backward()
    lam = reversal_schedule(1.0)
    torch.testing.assert_close(first, -lam * body_w.grad, rtol=1e-4, atol=1e-7)
    assert model.head[-1].weight.grad is None or float(model.head[-1].weight.grad.abs().sum()) == 0.0


def test_data_labels_never_change_adapt_training():
    garbage = np.random.default_rng(3).integers(-5, 7, 256)
    a = _adapt_run(np.zeros(256, np.int64))
    b = _adapt_run(garbage)
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(va, vb), k
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


def test_adapt_objective_requires_a_domain_adversarial_model():
    from hepdl.train import make_objective

    with pytest.raises(ValueError, match="domain_adversarial"):
        make_objective("adapt", build_model(BASE))


def test_dann_with_two_view_cvn_trains_a_few_steps():
    base = {"name": "two_view_cvn", "n_outputs": 4, "seed": 1}
    try:
        model = build_model({"name": "domain_adversarial", "base": base, "domain_hidden": 8})
    except Exception as err:  # the CVN's defaults may need more than this test gives
        pytest.skip(f"two_view_cvn not buildable with defaults: {err}")
    rng = np.random.default_rng(0)
    n = 24
    maps = rng.exponential(1.0, size=(n, 2, 32, 24)).astype(np.float32)
    sim = ArrayDataset({"pixel_maps": maps[:16], "label": rng.integers(0, 4, 16), "weight": np.ones(16, np.float32)})
    data = ArrayDataset({"pixel_maps": maps[16:] * 1.3, "weight": np.ones(8, np.float32)})
    val = ArrayDataset({"pixel_maps": maps[:8], "label": rng.integers(0, 4, 8), "weight": np.ones(8, np.float32)})
    result = train(model, DomainDataset(sim, data), val, settings(epochs=1, batch_size=8))
    assert np.isfinite(result.history[0]["train_loss"])
    with torch.no_grad():
        assert result.model.eval()(torch.as_tensor(maps[:2])).shape == (2, 4)


# ---------------------------------------------------------------- fine-tuning


def test_finetune_freezes_body_then_unfreezes_with_lower_lr(tmp_path):
    pre = build_model(BASE)
    path = tmp_path / "pre.pt"
    save_model(path, pre, architecture=pre.config, representation={}, inputs=["jet_images"], task="jets",
               classes=["background", "signal"], provenance={})
    model, info = load_for_finetuning(path, seed=9)
    body0 = {k: v.clone() for k, v in model.body.state_dict().items()}
    head0 = {k: v.clone() for k, v in model.head.state_dict().items()}
    assert all(torch.equal(body0[k], v) for k, v in pre.body.state_dict().items())  # body: pre-trained
    assert not torch.equal(model.head[-1].weight, pre.head[-1].weight)  # head: fresh

    train_set = ArrayDataset(toy_images(256, 0.8, 30))
    val_set = ArrayDataset(toy_images(64, 0.8, 31))
    lrs = []
    snapshots = []

    def record(row):
        lrs.append(row["lr"])
        snapshots.append({k: v.clone() for k, v in model.body.state_dict().items()})

    s = settings(objective="finetune", epochs=3, freeze_body_epochs=2, finetune_lr_factor=0.1,
                 learning_rate=1e-2, schedule="none")
    result = train(model, train_set, val_set, s, on_epoch_end=record)
    assert isinstance(result.objective, Finetune)
    # epochs 1-2: body (weights and batch-norm statistics) untouched, head moved
    for snap in snapshots[:2]:
        assert all(torch.equal(snap[k], body0[k]) for k in body0)
    assert not all(torch.equal(v, head0[k]) for k, v in model.head.state_dict().items())
    # epoch 3: the body learns, at a tenth of the learning rate
    assert not all(torch.equal(snapshots[2][k], body0[k]) for k in body0)
    assert lrs[:2] == [1e-2, 1e-2] and lrs[2] == pytest.approx(1e-3)


# ---------------------------------------------------------------- hepdl train wiring


def _toy_shard(path, n: int, shift: float, seed: int, domain: str) -> None:
    import json
    import os

    d = toy_images(n, shift, seed)
    os.makedirs(path)
    split = np.array([0, 0, 0, 1, 2], np.uint8)[np.arange(n) % 5]
    arrays = {**d, "split": split}
    for name, a in arrays.items():
        np.save(os.path.join(path, f"{name}.npy"), a)
    meta = {"format": "hepdl-prepared-v1", "task": "jets", "n_entries": n,
            "arrays": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()},
            "feature_names": {}, "spec": {"channels": ["calo_et"]}, "fields": {},
            "source": {"path": f"{domain}.root", "tree": "events", "entries": n, "domain": domain},
            "split": {"seed": 1, "fractions": [0.6, 0.2, 0.2]}, "hepdl_version": "test"}
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f)


def test_train_cli_adapt_and_finetune(tmp_path):
    import json

    from hepdl.cli import main

    _toy_shard(tmp_path / "sim" / "s0", 300, 0.0, 40, "sim")
    _toy_shard(tmp_path / "data" / "d0", 200, 1.0, 41, "data")
    base = {"name": "jet_cnn", "channels": [4], "head": [4]}
    common = {"epochs": 2, "batch_size": 32, "progress": "never", "log_epochs": False}
    (tmp_path / "dann.json").write_text(json.dumps(
        {**common, "objective": "adapt", "model": {"name": "domain_adversarial", "base": base, "domain_hidden": 8}}))
    rc = main(["train", "--shards", str(tmp_path / "sim"), "--data-shards", str(tmp_path / "data"),
               "--output", str(tmp_path / "dann"), "--settings", str(tmp_path / "dann.json"), "--device", "cpu"])
    assert rc == 0
    model, info = load_model_file(tmp_path / "dann" / "model.pt")
    assert isinstance(model, DomainAdversarial) and info["architecture"]["base"]["in_channels"] == 1
    assert info["provenance"]["data_shards"][0].endswith("d0")
    train_info = json.loads((tmp_path / "dann" / "train_info.json").read_text())
    assert train_info["n_train"] == 180 + 120  # sim train split + data train split
    # a plain model config is wrapped; without --data-shards, adapt is refused
    (tmp_path / "plain.json").write_text(json.dumps({**common, "objective": "adapt", "model": base}))
    assert main(["train", "--shards", str(tmp_path / "sim"), "--output", str(tmp_path / "x"),
                 "--settings", str(tmp_path / "plain.json"), "--device", "cpu"]) == 2

    # fine-tune the adapted network on a small labelled control sample of the data
    (tmp_path / "ft.json").write_text(json.dumps(
        {**common, "epochs": 2, "objective": "finetune", "finetune_from": str(tmp_path / "dann" / "model.pt"),
         "freeze_body_epochs": 1, "max_train_entries": 50}))
    rc = main(["train", "--shards", str(tmp_path / "data"), "--output", str(tmp_path / "ft"),
               "--settings", str(tmp_path / "ft.json"), "--device", "cpu"])
    assert rc == 0
    ft_info = json.loads((tmp_path / "ft" / "train_info.json").read_text())
    assert ft_info["n_train"] == 50
    tuned, _ = load_model_file(tmp_path / "ft" / "model.pt")
    assert not torch.equal(tuned.head[-1].weight, model.head[-1].weight)


# ---------------------------------------------------------------- mass decorrelation (pivot)


def _mass_toy(n: int, seed: int) -> dict[str, np.ndarray]:
    """Signal has a bright centre; background's corner brightness grows with its mass, so a plain
    classifier's background score follows the mass."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    mass = rng.uniform(0.0, 1.0, n).astype(np.float32)
    x = rng.normal(0.0, 1.0, size=(n, 1, 8, 8)).astype(np.float32)
    x[:, :, 3:5, 3:5] += (0.7 * y)[:, None, None, None]
    x[:, :, :3, :3] += (1.5 * np.where(y == 1, 1.0, mass))[:, None, None, None]
    return {"jet_images": x, "label": y.astype(np.int64), "weight": np.ones(n, np.float32), "jet_mass": mass}


def _background_mass_correlation(model, d) -> float:
    with torch.no_grad():
        score = torch.sigmoid(model.eval()(torch.as_tensor(d["jet_images"]))).numpy()
    bkg = d["label"] == 0
    return abs(float(np.corrcoef(score[bkg], d["jet_mass"][bkg])[0, 1]))


def test_pivot_adversary_decorrelates_score_from_mass():
    from hepdl.models import PivotAdversarial

    train_set, val_set, test = (ArrayDataset(_mass_toy(640, 50)), ArrayDataset(_mass_toy(128, 51)),
                                _mass_toy(600, 52))
    plain = train(build_model(BASE), train_set, val_set, settings(objective="classify", epochs=8))
    pivot_model = build_model({"name": "pivot_adversarial", "base": BASE, "n_mass_bins": 5, "seed": 2})
    pivot = train(pivot_model, train_set, val_set, settings(objective="decorrelate", epochs=8, domain_lambda_max=10.0))
    assert isinstance(pivot.model, PivotAdversarial) and isinstance(pivot.objective, Decorrelate)
    bkg_mass = _mass_toy(640, 50)["jet_mass"][_mass_toy(640, 50)["label"] == 0]
    np.testing.assert_allclose(pivot.model.mass_edges.numpy(), np.quantile(bkg_mass, [0.2, 0.4, 0.6, 0.8]), rtol=1e-5)
    corr_plain = _background_mass_correlation(plain.model, test)
    corr_pivot = _background_mass_correlation(pivot.model, test)
    # the mechanism on a toy (strength 10 overrides the label loss here: no tuned working point)
    assert corr_plain > 0.2
    assert corr_pivot < 0.5 * corr_plain
    assert pivot.model.eval()(torch.as_tensor(test["jet_images"][:3])).shape == (3,)


def test_domain_lr_scale_moves_the_domain_head_faster():
    """The scaled head computes the same function and, under Adam, its effective weights take larger steps."""
    cfg = {"name": "domain_adversarial", "base": BASE, "domain_hidden": [8]}
    plain, scaled = build_model(cfg), build_model({**cfg, "domain_lr_scale": 10.0})
    scaled.base.load_state_dict(plain.base.state_dict())
    x = torch.as_tensor(toy_images(16, 0.0, 0)["jet_images"])
    domain = torch.arange(16) % 2
    torch.testing.assert_close(scaled(x, domain_lambda=1.0)[1], plain(x, domain_lambda=1.0)[1])
    steps = []
    for model in (plain, scaled):
        head = model.domain_head
        before = model(x, domain_lambda=1.0)[1].detach()
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        from hepdl.train.objectives import balanced_domain_loss

        balanced_domain_loss(model(x, domain_lambda=1.0)[1], domain).backward()
        opt.step()
        steps.append(float((model(x, domain_lambda=1.0)[1].detach() - before).abs().mean()))
    assert steps[1] > 5 * steps[0]
