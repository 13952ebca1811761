"""hepdl.bdt and ``hepdl bdt`` on synthetic tabular data and synthetic prepared shards."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hepdl.bdt import BDTSettings, load_bdt, predict_bdt, save_bdt, select_features, train_bdt
from hepdl.cli import main
from hepdl.errors import ConfigError, InputError
from hepdl.evaluate.metrics import auc
from hepdl.result_files import load_scores

NAMES = ["mass", "tau21", "noise"]
FAST = BDTSettings(n_estimators=60, max_depth=3, early_stopping_rounds=5)


def _jets(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    mass = np.where(label == 1, rng.normal(80, 10, n), rng.exponential(50, n))
    tau21 = np.where(label == 1, rng.normal(0.35, 0.1, n), rng.normal(0.6, 0.15, n))
    x = np.stack([mass, tau21, rng.normal(size=n)], axis=1).astype(np.float32)
    return x, label


def test_select_features():
    x, _ = _jets(10)
    sub, names = select_features(x, NAMES, ["tau21", "mass"])
    np.testing.assert_array_equal(sub, x[:, [1, 0]])
    assert names == ["tau21", "mass"]
    assert select_features(x, NAMES, None)[1] == NAMES
    with pytest.raises(ConfigError, match="unknown feature"):
        select_features(x, NAMES, ["pt"])


def test_binary_bdt_learns_and_is_deterministic(tmp_path):
    x, y = _jets()
    xt, yt = _jets(seed=1)
    kw = dict(feature_names=NAMES, settings=FAST, seed=3, threads=1)
    b = train_bdt(x[:1000], y[:1000], x[1000:], y[1000:], **kw)
    s = predict_bdt(b, xt, NAMES)
    assert s.shape == (len(xt),) and s.dtype == np.float32
    assert auc(s, yt) > 0.9
    # mass alone is a weaker baseline than mass + tau21
    xm, nm = select_features(x, NAMES, ["mass"])
    bm = train_bdt(xm[:1000], y[:1000], xm[1000:], y[1000:], **(kw | {"feature_names": nm}))
    assert auc(predict_bdt(bm, select_features(xt, NAMES, ["mass"])[0], nm), yt) < auc(s, yt)
    b2 = train_bdt(x[:1000], y[:1000], x[1000:], y[1000:], **kw)
    np.testing.assert_array_equal(predict_bdt(b2, xt, NAMES), s)
    model, info = save_bdt(b, tmp_path / "m" / "bdt.json", {"task": "jets"})
    assert sorted(os.listdir(tmp_path / "m")) == ["bdt.info.json", "bdt.json"]
    with open(model) as f:
        json.load(f)  # real XGBoost JSON
    loaded, meta = load_bdt(model)
    assert meta["feature_names"] == NAMES and meta["task"] == "jets"
    np.testing.assert_array_equal(predict_bdt(loaded, xt, NAMES), s)


def test_multiclass_softprob():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 1200)
    x = (rng.normal(size=(1200, 4)) + np.eye(4)[y] * 2.0).astype(np.float32)
    names = ["a", "b", "c", "d"]
    b = train_bdt(
        x[:800], y[:800], x[800:], y[800:], feature_names=names, n_classes=3, settings=FAST
    )
    p = predict_bdt(b, x[800:], names)
    assert p.shape == (400, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(np.argmax(p, 1) == y[800:]) > 0.7


def test_bad_inputs():
    x, y = _jets(100)
    with pytest.raises(InputError, match="labels"):
        train_bdt(x, np.full(100, -1), x, y, feature_names=NAMES, settings=FAST)
    x[3, 1] = np.nan
    with pytest.raises(InputError, match="tau21"):
        train_bdt(x, y, x, y, feature_names=NAMES, settings=FAST)


def _write_shard(directory, n, seed, task="jets", labelled=True):
    x, y = _jets(n, seed)
    os.makedirs(directory)
    arrays = {
        "expert": x,
        "label": y,
        "weight": np.ones(n, np.float32),
        "split": (np.arange(n) % 5 == 4).astype(np.uint8) * 2
        + (np.arange(n) % 5 == 3).astype(np.uint8),
        "jet_pt": np.full(n, 300.0, np.float32),
        "jet_mass": x[:, 0],
    }
    if not labelled:
        del arrays["label"]
    for k, v in arrays.items():
        np.save(os.path.join(directory, f"{k}.npy"), v)
    meta = {
        "format": "hepdl-prepared-v1",
        "task": task,
        "n_entries": n,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "feature_names": {"expert": NAMES},
        "spec": {},
    }
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f)
    return arrays


def test_cli_bdt_writes_model_and_scores(tmp_path):
    a = _write_shard(tmp_path / "s0", 800, 0)
    b = _write_shard(tmp_path / "s1", 700, 1)
    out = tmp_path / "out"
    data = _write_shard(tmp_path / "d0", 500, 7, labelled=False)
    argv = [
        "bdt",
        "--shards",
        str(tmp_path / "s0"),
        str(tmp_path / "s1"),
        "--data-shards",
        str(tmp_path / "d0"),
        "--features",
        "mass",
        "tau21",
        "--output",
        str(out),
        "--seed",
        "1",
        "--n-estimators",
        "40",
    ]
    assert main(argv) == 0
    assert sorted(os.listdir(out)) == [
        "bdt.info.json",
        "bdt.json",
        "data_scores.npz",
        "test_scores.npz",
        "val_scores.npz",
    ]
    on_data = load_scores(out / "data_scores.npz")
    assert len(on_data["score"]) == int(np.sum(data["split"] == 2))
    assert np.all(on_data["label"] == -1)
    scores = load_scores(out / "test_scores.npz")
    test = np.r_[a["split"], b["split"]] == 2
    np.testing.assert_array_equal(scores["label"], np.r_[a["label"], b["label"]][test])
    np.testing.assert_array_equal(scores["jet_mass"], np.r_[a["jet_mass"], b["jet_mass"]][test])
    assert scores["score"].shape == (test.sum(),)
    assert auc(scores["score"], scores["label"]) > 0.9
    info = json.loads((out / "bdt.info.json").read_text())
    assert (
        info["feature_names"] == ["mass", "tau21"]
        and info["n_test"] == int(test.sum())
        and info["n_train"] == 900
    )
    # same seed, same model
    first = (out / "bdt.json").read_bytes()
    assert main(argv) == 0
    assert (out / "bdt.json").read_bytes() == first


def test_cli_bdt_errors(tmp_path, capsys):
    _write_shard(tmp_path / "s0", 100, 0)
    argv = [
        "bdt",
        "--shards",
        str(tmp_path / "s0"),
        "--features",
        "pt",
        "--output",
        str(tmp_path / "o"),
        "--seed",
        "1",
    ]
    assert main(argv) == 2
    assert "unknown feature" in capsys.readouterr().err
    assert (
        main(["bdt", "--shards", str(tmp_path / "o"), "--output", str(tmp_path / "o"), "--seed", "1"])
        == 2
    )
    assert "meta.json" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


def test_cli_bdt_reweight_pt_stops_the_trees_using_pt(tmp_path):
    # The only feature is the jet pT, whose spectrum differs between the classes: trained with the
    # background weighted to the signal's pT, the trees cannot separate them (weighted AUC ~0.5).
    rng = np.random.default_rng(3)
    n = 3000
    label = (rng.random(n) < 0.5).astype(np.int64)
    pt = np.where(label == 1, rng.normal(320, 20, n), 250 + rng.exponential(40, n)).astype(np.float32)
    os.makedirs(tmp_path / "s0")
    arrays = {"expert": pt[:, None], "label": label, "weight": np.ones(n, np.float32), "jet_pt": pt,
              "split": (np.arange(n) % 5 == 4).astype(np.uint8) * 2 + (np.arange(n) % 5 == 3).astype(np.uint8)}
    for k, v in arrays.items():
        np.save(tmp_path / "s0" / f"{k}.npy", v)
    meta = {"format": "hepdl-prepared-v1", "task": "jets", "n_entries": n, "spec": {},
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "feature_names": {"expert": ["pt"]}}
    (tmp_path / "s0" / "meta.json").write_text(json.dumps(meta))
    aucs = {}
    for mode in ("none", "pt"):
        out = tmp_path / mode
        assert main(["bdt", "--shards", str(tmp_path / "s0"), "--output", str(out), "--seed", "1",
                     "--n-estimators", "30", "--reweight", mode]) == 0
        s = load_scores(out / "test_scores.npz")
        # the score's ranking inside each pT bin is all that is left; judge it with pT-flat weights
        from hepdl.train.reweight import reweight_background_to_signal

        w = reweight_background_to_signal(s["jet_pt"], None, s["label"])
        aucs[mode] = (auc(s["score"], s["label"]), auc(s["score"], s["label"], w))
        assert json.loads((out / "bdt.info.json").read_text())["reweight"] == mode
    assert aucs["none"][0] > 0.8 and aucs["pt"][0] < aucs["none"][0] - 0.1
    assert abs(aucs["pt"][1] - 0.5) < 0.08


def test_cli_bdt_reweight_needs_jet_pt(tmp_path, capsys):
    _write_shard(tmp_path / "s0", 300, 0)
    meta = json.loads((tmp_path / "s0" / "meta.json").read_text())
    del meta["arrays"]["jet_pt"]
    (tmp_path / "s0" / "meta.json").write_text(json.dumps(meta))
    os.remove(tmp_path / "s0" / "jet_pt.npy")
    assert main(["bdt", "--shards", str(tmp_path / "s0"), "--output", str(tmp_path / "out"), "--seed", "1",
                 "--reweight", "pt"]) != 0
    assert "--reweight pt needs the 'jet_pt' array" in capsys.readouterr().err
    assert not (tmp_path / "out" / "bdt.json").exists()
