"""hepdl.stats and hepdl.evaluate.metrics against sklearn/scipy and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from hepdl import stats as ws
from hepdl.errors import InputError
from hepdl.evaluate import metrics as m


def _sample(n=4000, seed=1, shift=1.0, discrete=False):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.4).astype(np.int64)
    score = rng.normal(size=n) + shift * label
    if discrete:
        score = np.round(score, 1)
    weight = rng.uniform(0.2, 2.0, size=n)
    return score, label, weight


@pytest.mark.parametrize("discrete", [False, True])
def test_auc_matches_sklearn_weighted(discrete):
    score, label, weight = _sample(discrete=discrete)
    assert ws.auc(score, label) == pytest.approx(roc_auc_score(label, score), abs=1e-12)
    assert ws.auc(score, label, weight) == pytest.approx(
        roc_auc_score(label, score, sample_weight=weight), abs=1e-12
    )


def test_roc_curve_matches_sklearn():
    score, label, weight = _sample(n=500, discrete=True)
    roc = ws.roc_curve(score, label, weight)
    fpr, tpr, thr = sk_roc_curve(label, score, sample_weight=weight, drop_intermediate=False)
    np.testing.assert_allclose(roc.signal_efficiency, tpr, atol=1e-12)
    np.testing.assert_allclose(roc.background_efficiency, fpr, atol=1e-12)
    np.testing.assert_allclose(roc.thresholds[1:], thr[1:])
    assert roc.thresholds[0] == np.inf


def test_perfect_and_inverted_classifier():
    label = np.array([0, 0, 1, 1])
    assert ws.auc(np.array([0.1, 0.2, 0.8, 0.9]), label) == 1.0
    assert ws.auc(np.array([0.9, 0.8, 0.2, 0.1]), label) == 0.0
    assert ws.auc(np.full(4, 0.5), label) == 0.5


def test_rejection_hand_computed():
    # 10 signal at scores 1..10, 10 background at 0.5..9.5; eps_S = 0.5 -> cut at 6 -> bkg 6.5..9.5 pass
    sig = np.arange(1, 11, dtype=float)
    bkg = sig - 0.5
    score = np.r_[sig, bkg]
    label = np.r_[np.ones(10), np.zeros(10)].astype(int)
    assert ws.background_rejection(score, label, signal_efficiency=0.5) == pytest.approx(10 / 4)
    # the tightest cut reaching the target, not the end of the eps_S plateau
    roc = ws.roc_curve(score, label)
    assert ws.background_efficiency_at(roc, 0.5) == pytest.approx(0.4)
    assert ws.background_efficiency_at(roc, 0.3) == pytest.approx(0.2)


def test_rejection_interpolates_and_weights_matter():
    score, label, weight = _sample(n=20000)
    r50 = ws.background_rejection(score, label, signal_efficiency=0.5)
    # Gaussians separated by 1 sigma: cut at mu_s median = 1.0 -> eps_B = 1 - Phi(1) = 0.1587
    assert r50 == pytest.approx(1 / 0.1587, rel=0.05)
    r30 = ws.background_rejection(score, label, signal_efficiency=0.3)
    assert r30 > r50
    # doubling the weight of high-score background halves nothing but must change the answer
    w2 = np.where((label == 0) & (score > 1), 3.0, 1.0)
    assert ws.background_rejection(score, label, w2, 0.5) < r50


def test_rejection_finite_when_no_background_passes():
    score = np.array([0.0, 0.1, 0.9, 1.0])
    label = np.array([0, 0, 1, 1])
    assert ws.background_rejection(score, label, signal_efficiency=0.5) == pytest.approx(2.0)


def test_binary_metrics_keys_and_values():
    score, label, weight = _sample()
    out = m.binary_metrics(score, label, weight)
    assert set(out) == {"auc", "rejection_at_30", "rejection_at_50", "n_test"}
    assert out["n_test"] == len(score)
    assert out["auc"] == pytest.approx(roc_auc_score(label, score, sample_weight=weight))


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="labels"):
        m.binary_metrics(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(InputError, match="NaN"):
        m.binary_metrics(np.array([np.nan, 0.2]), np.array([0, 1]))
    with pytest.raises(InputError, match="signal"):
        m.binary_metrics(np.array([0.1, 0.2]), np.array([0, 0]))
    with pytest.raises(InputError, match="weights"):
        ws.auc(np.array([0.1, 0.2]), np.array([0, 1]), np.array([1.0]))


def test_working_point_cut_and_stability():
    rng = np.random.default_rng(3)
    sig = rng.normal(1.0, 1.0, 10000)
    cut = ws.cut_for_efficiency(sig, 0.5)
    assert ws.efficiency_at_cut(sig, cut) == pytest.approx(0.5, abs=1e-3)
    assert cut == pytest.approx(1.0, abs=0.05)
    w = np.where(sig > 1.0, 3.0, 1.0)  # weights pull the cut up
    assert ws.cut_for_efficiency(sig, 0.5, w) > cut
    score = np.r_[sig, rng.normal(0, 1, 10000)]
    label = np.r_[np.ones(10000), np.zeros(10000)].astype(int)
    same = m.working_point_stability(score, label, rng.normal(1.0, 1.0, 10000))
    shifted = m.working_point_stability(score, label, rng.normal(1.5, 1.0, 10000))
    assert same["efficiency_shift"] < 0.02
    assert shifted["efficiency"] == pytest.approx(stats.norm.sf(-0.5), abs=0.02)
    assert shifted["efficiency_shift"] == pytest.approx(abs(shifted["efficiency"] - 0.5))


def test_confusion_matrix_efficiency_purity():
    label = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 0])
    probs = np.eye(3)[pred] * 0.8 + 0.2 / 3
    cm = m.confusion_matrix(probs, label)
    np.testing.assert_array_equal(cm["counts"], [[2, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_allclose(np.diag(cm["efficiency"]), [2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(np.diag(cm["purity"]), [2 / 3, 2 / 3, 0.0])
    w = np.array([1, 1, 1, 1, 1, 10.0])
    cmw = m.confusion_matrix(probs, label, w)
    assert cmw["purity"][0, 0] == pytest.approx(2 / 12)


def _neutrino_sample(n=3000, seed=5):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[label]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, label


def test_nue_selection_maximises_fom():
    probs, label = _neutrino_sample()
    best = m.best_selection_cut(probs, label, class_index=1)
    # brute force over a grid of cuts
    grid = np.quantile(probs[:, 1], np.linspace(0, 1, 400))
    foms = []
    for c in grid:
        s = m.selection_at_cut(probs, label, c, class_index=1)
        foms.append(s["efficiency"] * s["purity"])
    assert best["efficiency"] * best["purity"] >= max(foms) - 1e-12
    again = m.selection_at_cut(probs, label, best["cut"], class_index=1)
    assert again["efficiency"] == pytest.approx(best["efficiency"])
    assert again["purity"] == pytest.approx(best["purity"])


def test_multiclass_metrics_and_validation_cut():
    probs, label = _neutrino_sample()
    classes = ["numu_cc", "nue_cc", "nc"]
    out = m.multiclass_metrics(probs, label, classes)
    assert out["accuracy"] == pytest.approx(np.mean(np.argmax(probs, 1) == label))
    for i, c in enumerate(classes):
        assert out[f"efficiency_{c}"] == pytest.approx(
            np.mean(np.argmax(probs[label == i], 1) == i)
        )
    val_probs, val_label = _neutrino_sample(seed=9)
    cut = m.best_selection_cut(val_probs, val_label)["cut"]
    applied = m.multiclass_metrics(probs, label, classes, signal_cut=cut)
    assert applied["nue_cc_cut"] == cut
    assert applied["nue_cc_efficiency"] * applied["nue_cc_purity"] <= (
        out["nue_cc_efficiency"] * out["nue_cc_purity"] + 1e-12
    )
    with pytest.raises(InputError, match="class names"):
        m.multiclass_metrics(probs, label, classes[:2])


def test_ks_and_wasserstein_match_scipy():
    rng = np.random.default_rng(7)
    a = rng.normal(0, 1, 700)
    b = rng.normal(0.3, 1.2, 500)
    assert ws.ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    wa, wb = rng.uniform(0.1, 2, 700), rng.uniform(0.1, 2, 500)
    assert ws.wasserstein_distance(a, b, wa, wb) == pytest.approx(
        stats.wasserstein_distance(a, b, wa, wb), rel=1e-9
    )
    # weighted KS: duplicating entries == integer weights
    wi = rng.integers(1, 4, 700)
    assert ws.ks_statistic(a, b, wi) == pytest.approx(
        stats.ks_2samp(np.repeat(a, wi), b).statistic, abs=1e-12
    )
    agree = m.score_agreement(a, a)
    assert agree == {"ks": 0.0, "wasserstein": 0.0}


def test_domain_classifier_auc():
    rng = np.random.default_rng(11)
    sim = rng.normal(size=(2000, 3))
    same = rng.normal(size=(2000, 3))
    shifted = same + np.array([0.8, 0.0, 0.0])
    a_same = m.domain_classifier_auc(sim, same, seed=1)
    a_shift = m.domain_classifier_auc(sim, shifted, seed=1)
    assert abs(a_same - 0.5) < 0.05
    # one-feature shift of 0.8 sigma: AUC = Phi(0.8 / sqrt 2)
    assert a_shift == pytest.approx(stats.norm.cdf(0.8 / np.sqrt(2)), abs=0.03)
    assert m.domain_classifier_auc(sim, shifted, seed=1) == a_shift  # deterministic
    # width difference is invisible to a linear model, visible to boosting
    wide = rng.normal(scale=2.0, size=(2000, 3))
    assert m.domain_classifier_auc(sim, wide, seed=1, model="gbdt") > 0.7
    with pytest.raises(InputError, match="features"):
        m.domain_classifier_auc(sim, wide[:, :2])


def test_labelled_auc_ignores_unlabelled_entries_and_is_nan_without_a_class():
    score, label, weight = _sample()
    mixed = np.r_[label, np.full(50, -1)]
    assert ws.labelled_auc(np.r_[score, np.zeros(50)], mixed, np.r_[weight, np.ones(50)]) == pytest.approx(
        ws.auc(score, label, weight))
    assert np.isnan(ws.labelled_auc(score[label == 0], label[label == 0]))

