"""``hepdl evaluate binary|multiclass`` and ``hepdl summary`` on synthetic score files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hepdl.cli import main
from hepdl.evaluate import metrics
from hepdl.result_files import save_scores

CLASSES = ["numu_cc", "nue_cc", "nc"]


def _binary_scores(path, seed, shift, n=800, labelled=True):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + shift * (2 * label - 1))))
    weight = rng.uniform(0.5, 1.5, n).astype(np.float32)
    if not labelled:
        label = np.full(n, -1)
    save_scores(
        path,
        {
            "score": score.astype(np.float32),
            "label": label,
            "weight": weight,
            "jet_pt": np.full(n, 300.0, np.float32),
        },
    )
    return score.astype(np.float32), label, weight


def _multi_scores(path, seed, n=600):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[label]
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    save_scores(path, {"score": probs, "label": label, "weight": np.ones(n, np.float32)})
    return probs, label


def test_evaluate_binary_and_summary(tmp_path):
    a = _binary_scores(tmp_path / "a.npz", 0, 1.0)
    _binary_scores(tmp_path / "b.npz", 1, 0.4)
    _binary_scores(tmp_path / "data_a.npz", 2, 0.8)
    _binary_scores(tmp_path / "data_b.npz", 3, 0.4, labelled=False)
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "binary",
                "--task",
                "jets",
                "--scores",
                str(tmp_path / "a.npz"),
                str(tmp_path / "b.npz"),
                "--names",
                "cnn",
                "expert_bdt",
                "--output",
                str(out),
                "--data-scores",
                str(tmp_path / "data_a.npz"),
                str(tmp_path / "data_b.npz"),
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == [
        "cnn.json",
        "expert_bdt.json",
        "roc.png",
        "scores_cnn.png",
        "scores_expert_bdt.png",
    ]
    cnn = json.loads((out / "cnn.json").read_text())
    assert cnn["task"] == "jets" and cnn["model"] == "cnn"
    assert cnn["auc"] == pytest.approx(metrics.auc(*a))
    assert cnn["rejection_at_50"] == pytest.approx(metrics.background_rejection(*a, 0.5))
    assert 0 < cnn["ks_sim_data"] < 1 and cnn["wasserstein_sim_data"] > 0 and "data_auc" in cnn
    bdt = json.loads((out / "expert_bdt.json").read_text())
    assert "data_auc" not in bdt and bdt["auc"] < cnn["auc"]

    _multi_scores(tmp_path / "m.npz", 4)
    _multi_scores(tmp_path / "mv.npz", 5)
    assert (
        main(
            [
                "evaluate",
                "multiclass",
                "--task",
                "neutrino",
                "--scores",
                str(tmp_path / "m.npz"),
                "--names",
                "cvn",
                "--classes",
                *CLASSES,
                "--val-scores",
                str(tmp_path / "mv.npz"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    cvn = json.loads((out / "cvn.json").read_text())
    assert cvn["task"] == "neutrino" and cvn["nue_cc_cut_from"] == "validation"
    assert 0 < cvn["nue_cc_purity"] <= 1 and "efficiency_nc" in cvn
    assert (out / "confusion_cvn.png").exists()

    summary = tmp_path / "results" / "summary.json"
    jsons = [str(out / f) for f in ("cnn.json", "expert_bdt.json", "cvn.json")]
    assert main(["summary", *jsons, "-o", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert s["jets"]["cnn"]["auc"] == cnn["auc"]
    assert s["jets"]["expert_bdt"]["rejection_at_50"] == bdt["rejection_at_50"]
    assert s["neutrino"]["cvn"]["nue_cc_purity"] == cvn["nue_cc_purity"]
    assert "task" not in s["jets"]["cnn"]


def test_summary_refuses_duplicates_and_missing_keys(tmp_path, capsys):
    for i in range(2):
        (tmp_path / f"r{i}.json").write_text(
            json.dumps({"task": "jets", "model": "cnn", "auc": 0.9})
        )
    (tmp_path / "bad.json").write_text(json.dumps({"auc": 0.9}))
    out = tmp_path / "summary.json"
    assert (
        main(["summary", str(tmp_path / "r0.json"), str(tmp_path / "r1.json"), "-o", str(out)]) == 2
    )
    assert "jets.cnn already given" in capsys.readouterr().err
    assert main(["summary", str(tmp_path / "bad.json"), "-o", str(out)]) == 2
    assert "'task'" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_errors(tmp_path, capsys):
    _binary_scores(tmp_path / "a.npz", 0, 1.0)
    assert (
        main(
            [
                "evaluate",
                "binary",
                "--task",
                "jets",
                "--scores",
                str(tmp_path / "a.npz"),
                "--names",
                "x",
                "y",
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "--names" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "binary",
                "--task",
                "jets",
                "--scores",
                str(tmp_path / "nope.npz"),
                "--names",
                "x",
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "nope.npz" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "multiclass",
                "--task",
                "neutrino",
                "--scores",
                str(tmp_path / "a.npz"),
                "--names",
                "x",
                "--classes",
                *CLASSES,
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "expected (N, 3)" in capsys.readouterr().err


def _write_shard(directory, arrays, task, spec):
    os.makedirs(directory)
    for k, v in arrays.items():
        np.save(os.path.join(directory, f"{k}.npy"), v)
    n = len(arrays["label"])
    meta = {
        "format": "hepdl-prepared-v1",
        "task": task,
        "n_entries": n,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "feature_names": {},
        "spec": spec,
    }
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f)


def test_evaluate_images_display_curves(tmp_path, monkeypatch):
    from hepdl.evaluate import plots, task_plots

    rng = np.random.default_rng(0)
    n = 50
    label = np.arange(n) % 2
    split = (np.arange(n) % 3 == 0).astype(np.uint8) * 2
    images = rng.random((n, 2, 8, 8)).astype(np.float32)
    spec = {"image": {"channels": ["calo_et", "trk_pt"], "half_width": 0.8, "normalise": "sum"}}
    _write_shard(
        tmp_path / "jets", {"jet_images": images, "label": label, "split": split}, "jets", spec
    )
    seen = {}
    real = plots.plot_mean_images

    def spy(sums, counts, *a, **kw):
        seen["means"] = sums / counts[:, None, None]
        seen["extent"] = kw["extent"]
        return real(sums, counts, *a, **kw)

    monkeypatch.setattr(plots, "plot_mean_images", spy)
    monkeypatch.setattr(task_plots, "_IMAGE_CHUNK", 7)  # several chunks must add up
    out = tmp_path / "o"
    assert (
        main(
            [
                "evaluate",
                "images",
                "--shards",
                str(tmp_path / "jets"),
                "--channel",
                "trk_pt",
                "--classes",
                "QCD",
                "W",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "average_images_trk_pt.png").exists()
    test = split == 2
    np.testing.assert_allclose(seen["means"][1], images[test & (label == 1), 1].mean(0), rtol=1e-5)
    assert seen["extent"] == (-0.8, 0.8, -0.8, 0.8)

    maps = rng.random((n, 2, 10, 6)).astype(np.float32)
    nlabel = np.arange(n) % 3
    _write_shard(
        tmp_path / "nu", {"pixel_maps": maps, "label": nlabel, "split": split}, "neutrino", {}
    )
    probs = rng.dirichlet(np.ones(3), test.sum()).astype(np.float32)
    save_scores(
        tmp_path / "nu.npz", {"score": probs, "label": nlabel[test], "weight": np.ones(test.sum())}
    )
    assert (
        main(
            [
                "evaluate",
                "display",
                "--shards",
                str(tmp_path / "nu"),
                "--scores",
                str(tmp_path / "nu.npz"),
                "--classes",
                *CLASSES,
                "--n-events",
                "3",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "event_display.png").exists()
    save_scores(
        tmp_path / "bad.npz",
        {"score": probs[:-1], "label": nlabel[test][:-1], "weight": np.ones(test.sum() - 1)},
    )
    assert (
        main(
            [
                "evaluate",
                "display",
                "--shards",
                str(tmp_path / "nu"),
                "--scores",
                str(tmp_path / "bad.npz"),
                "--classes",
                *CLASSES,
                "--output",
                str(out),
            ]
        )
        == 2
    )

    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,val_loss,val_auc,lr\n1,0.7,0.72,0.8,0.001\n2,0.5,0.55,0.85,0.001\n"
    )
    assert (
        main(
            [
                "evaluate",
                "curves",
                "--metrics",
                str(tmp_path / "metrics.csv"),
                "--output",
                str(out / "curves.png"),
            ]
        )
        == 0
    )
    assert (out / "curves.png").exists()


def test_evaluate_domain(tmp_path):
    rng = np.random.default_rng(3)
    n = 900
    split = np.full(n, 2, np.uint8)
    spec = {"image": {}}
    sim = rng.normal(size=(n, 2)).astype(np.float32)
    shifted = (rng.normal(size=(n, 2)) + [1.0, 0.0]).astype(np.float32)
    for name, x in (
        ("sim", sim),
        ("same", rng.normal(size=(n, 2)).astype(np.float32)),
        ("shifted", shifted),
    ):
        _write_shard(
            tmp_path / name,
            {"expert": x, "label": np.zeros(n, np.int64), "split": split},
            "jets",
            spec,
        )
        meta = json.loads((tmp_path / name / "meta.json").read_text())
        meta["feature_names"] = {"expert": ["mass", "tau21"]}
        (tmp_path / name / "meta.json").write_text(json.dumps(meta))
    out = tmp_path / "o"
    for data, name in (("same", "alike"), ("shifted", "apart")):
        assert (
            main(
                [
                    "evaluate",
                    "domain",
                    "--array",
                    "expert",
                    "--sim-shards",
                    str(tmp_path / "sim"),
                    "--data-shards",
                    str(tmp_path / data),
                    "--seed",
                    "1",
                    "--name",
                    name,
                    "--output",
                    str(out),
                ]
            )
            == 0
        )
    alike = json.loads((out / "alike.json").read_text())
    apart = json.loads((out / "apart.json").read_text())
    assert abs(alike["expert_domain_auc"] - 0.5) < 0.06
    assert apart["expert_domain_auc"] > 0.7 and apart["model"] == "apart" and apart["n_data"] == n
    # the shift is in mass only: tau21 alone cannot see it
    assert (
        main(
            [
                "evaluate",
                "domain",
                "--array",
                "expert",
                "--sim-shards",
                str(tmp_path / "sim"),
                "--data-shards",
                str(tmp_path / "shifted"),
                "--features",
                "tau21",
                "--seed",
                "1",
                "--name",
                "t",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert abs(json.loads((out / "t.json").read_text())["expert_domain_auc"] - 0.5) < 0.06


def test_evaluate_binary_reweight_pt_removes_the_pt_difference(tmp_path, capsys):
    # A "tagger" that is the jet pT itself: it separates signal from background only because
    # the two spectra differ; with the background weighted to the signal's pT it is a coin toss.
    rng = np.random.default_rng(5)
    n = 4000
    label = (rng.random(n) < 0.5).astype(np.int64)
    pt = np.where(label == 1, rng.normal(320, 20, n), 250 + rng.exponential(40, n)).astype(np.float32)
    save_scores(tmp_path / "pt.npz", {"score": pt / 1000, "label": label, "weight": np.ones(n, np.float32),
                                      "jet_pt": pt})
    out = tmp_path / "eval"
    argv = ["evaluate", "binary", "--task", "jets", "--scores", str(tmp_path / "pt.npz"), "--names", "pt", "--output", str(out)]
    assert main([*argv, "--reweight", "pt"]) == 0
    result = json.loads((out / "pt.json").read_text())
    assert result["auc_unweighted"] > 0.8
    assert abs(result["auc"] - 0.5) < 0.03
    assert main(argv) == 0  # without reweighting: the plain AUC, no auc_unweighted entry
    plain = json.loads((out / "pt.json").read_text())
    assert plain["auc"] == pytest.approx(result["auc_unweighted"]) and "auc_unweighted" not in plain
    save_scores(tmp_path / "no_pt.npz", {"score": pt, "label": label, "weight": np.ones(n, np.float32)})
    assert main(["evaluate", "binary", "--task", "jets", "--scores", str(tmp_path / "no_pt.npz"), "--names", "x", "--output",
                 str(out), "--reweight", "pt"]) != 0
    assert "no_pt.npz: --reweight pt needs the jet_pt array" in capsys.readouterr().err
