"""Models: registry, initialisation, body/head split, and the model file (safe loading)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch

from hepdl.errors import ConfigError, HepdlError
from hepdl.models import MODEL_REGISTRY, ExpertMLP, JetCNN, build_model, load_model_file, save_model

torch.set_num_threads(1)


def test_registry_builds_from_config_and_rejects_unknown():
    assert {"jet_cnn", "jet_mlp"} <= set(MODEL_REGISTRY)
    model = build_model({"name": "jet_cnn", "in_channels": 2, "channels": [4, 8, 8], "pool": "mean"})
    assert isinstance(model, JetCNN)
    assert build_model(model.config).config == model.config  # config is complete and JSON-able
    with pytest.raises(ConfigError, match="kernel_sise"):
        build_model({"name": "jet_cnn", "kernel_sise": 3})
    with pytest.raises(ConfigError, match="resnet"):
        build_model({"name": "resnet"})
    with pytest.raises(ConfigError, match="norm"):
        build_model({"name": "jet_cnn", "norm": "layer"})


@pytest.mark.parametrize("norm", ["batch", "weight", "none"])
@pytest.mark.parametrize("pool", ["max", "mean"])
def test_jet_cnn_shapes_and_body_head(norm, pool):
    model = JetCNN(in_channels=3, channels=[4, 8], kernel_size=5, pool=pool, norm=norm, head=[8], n_outputs=1).eval()
    x = torch.rand(5, 3, 32, 32)
    assert model(x).shape == (5,)
    features = model.body(x)
    assert features.shape == (5, model.body_dim)
    torch.testing.assert_close(model.head(features).squeeze(-1), model(x))
    multi = JetCNN(in_channels=3, channels=[4], n_outputs=4)
    assert multi(x).shape == (5, 4)


def test_initialisation_seeded_nonzero_and_scaled():
    a, b, c = (JetCNN(in_channels=3, channels=[16, 32], seed=s) for s in (1, 1, 2))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["body.0.0.weight"], sc["body.0.0.weight"])
    w = a.body[1][0].weight  # conv 16 -> 32, 3x3: Kaiming std = sqrt(2 / fan_in)
    assert w.abs().min() >= 0 and (w != 0).float().mean() > 0.99
    assert w.std().item() == pytest.approx((2 / (16 * 9)) ** 0.5, rel=0.15)
    out = a.head[-1].weight  # Xavier for the output layer
    bound = (6 / (out.shape[0] + out.shape[1])) ** 0.5
    assert out.abs().max() <= bound and (out != 0).all()
    wn = JetCNN(in_channels=3, channels=[8], norm="weight", seed=0)
    x = torch.rand(4, 3, 16, 16)
    assert torch.isfinite(wn(x)).all()


def test_mlp_standardisation_buffers():
    x = np.random.default_rng(0).normal([5.0, -2.0, 100.0], [1.0, 3.0, 0.0], size=(500, 3)).astype(np.float32)
    model = ExpertMLP(n_features=3, hidden=[8])
    model.fit_standardisation(x)
    z = model.standardise(torch.from_numpy(x))
    np.testing.assert_allclose(z.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0).numpy()[:2], 1, rtol=1e-2)
    assert "standardise.mean" in model.state_dict()  # saved with the weights
    with pytest.raises(ValueError, match="shape"):
        model.fit_standardisation(x[:, :2])


def _save(path, model):
    save_model(
        path, model, architecture=model.config, representation={"spec": {"image": {"size": [16, 16]}}},
        inputs=["jet_images"], task="jets", classes=["background", "signal"],
        provenance={"seed": 3, "torch": torch.__version__}, metrics={"auc": np.float64(0.9)},
    )


def test_model_file_round_trip_in_fresh_process(tmp_path):
    model = JetCNN(in_channels=2, channels=[4, 8], norm="batch", head=[8], seed=3)
    # non-trivial batch-norm statistics, so the buffers must travel too
    model.train()(torch.rand(32, 2, 16, 16) * 3)
    model.eval()
    x = torch.rand(6, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    torch.save(model(x).detach(), tmp_path / "expected.pt")
    _save(tmp_path / "model.pt", model)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    script = textwrap.dedent(f"""
        import torch
        from hepdl.models import load_model_file
        model, info = load_model_file({str(tmp_path / "model.pt")!r})
        x = torch.load({str(tmp_path / "x.pt")!r}, weights_only=True)
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        assert torch.equal(model(x), expected), (model(x) - expected).abs().max()
        assert info["classes"] == ["background", "signal"] and info["metrics"]["auc"] == 0.9
        assert info["architecture"]["name"] == "jet_cnn" and "state_dict" not in info
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_model_file_refuses_code_corruption_and_mismatch(tmp_path):
    model = ExpertMLP(n_features=4, hidden=[8])
    path = tmp_path / "model.pt"
    _save(path, model)
    model_back, info = load_model_file(path)
    assert info["task"] == "jets"

    # a pickle that would run code on load (os.system via __reduce__) is refused
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.pt"
    content = torch.load(path, weights_only=True)
    content["provenance"] = Exploit()
    torch.save(content, evil)
    with pytest.raises(HepdlError, match="evil.pt"):
        load_model_file(evil)
    assert not (tmp_path / "pwned").exists()

    # truncated / flipped bytes
    raw = path.read_bytes()
    (tmp_path / "short.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(HepdlError, match="short.pt"):
        load_model_file(tmp_path / "short.pt")
    with zipfile.ZipFile(path) as zf:  # rewrite one stored tensor's bytes: CRC no longer matches
        names = [n for n in zf.namelist() if "/data/" in n]
    assert names
    damaged = bytearray(raw)
    offset = raw.find(b"data.pkl") + 200
    damaged[offset : offset + 16] = b"\xff" * 16
    (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
    with pytest.raises(HepdlError, match="damaged.pt"):
        load_model_file(tmp_path / "damaged.pt")

    # architecture that does not fit the weights
    content = torch.load(path, weights_only=True)
    content["architecture"]["hidden"] = [16]
    torch.save(content, tmp_path / "mismatch.pt")
    with pytest.raises(HepdlError, match="mismatch.pt"):
        load_model_file(tmp_path / "mismatch.pt")
    # not a model file at all
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(HepdlError, match="not a hepdl model file"):
        load_model_file(tmp_path / "other.pt")
    with pytest.raises(HepdlError, match="does not exist"):
        load_model_file(tmp_path / "missing.pt")


def test_save_model_refuses_non_plain_values(tmp_path):
    model = ExpertMLP(n_features=2, hidden=[4])
    with pytest.raises(TypeError, match="provenance.when"):
        save_model(tmp_path / "m.pt", model, architecture=model.config, representation={}, inputs=["expert"],
                   task="jets", classes=["b", "s"], provenance={"when": object()}, metrics=None)
    assert not (tmp_path / "m.pt").exists()
