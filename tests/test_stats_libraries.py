"""hepdl.stats through scikit-learn / scipy gives the values of the hand-written code it replaced.

The reference functions below are the algorithms hepdl.stats used before it called the
libraries (kept here verbatim as the yardstick); every metric that moved to a library must
equal them to ~1e-12 on weighted samples with ties and zero weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp_stats
from sklearn import metrics as sk_metrics

from hepdl import stats
from hepdl.errors import InputError
from hepdl.evaluate import metrics


def reference_roc(score, label, weight):
    s, y, w = np.asarray(score, float), np.asarray(label).astype(bool), np.asarray(weight, float)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    w_sig = np.cumsum(np.where(y[order], w[order], 0.0))
    w_bkg = np.cumsum(np.where(y[order], 0.0, w[order]))
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]
    eff_s = np.r_[0.0, w_sig[last] / w_sig[-1]]
    eff_b = np.r_[0.0, w_bkg[last] / w_bkg[-1]]
    return eff_s, eff_b, np.r_[np.inf, s_sorted[last]]


def reference_auc(score, label, weight):
    eff_s, eff_b, _ = reference_roc(score, label, weight)
    return float(np.trapezoid(eff_s, eff_b))


def _reference_cdf(x, w, at):
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cw = np.cumsum(w[order]) / np.sum(w)
    idx = np.searchsorted(xs, at, side="right")
    return np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0)


def reference_wasserstein(a, b, wa, wb):
    at = np.unique(np.concatenate([a, b]))
    diff = np.abs(_reference_cdf(a, wa, at) - _reference_cdf(b, wb, at))
    return float(np.sum(diff[:-1] * np.diff(at)))


def _weighted_sample(seed, n, *, ties, zero_weights):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.4).astype(np.int64)
    score = rng.normal(size=n) + 0.8 * label
    if ties:
        score = np.round(score, 1)  # many events share a score: the curve must not split them
    weight = rng.uniform(0.05, 3.0, n)
    if zero_weights:
        weight[rng.random(n) < 0.1] = 0.0
    return score, label, weight


CASES = [
    pytest.param(seed, n, ties, zero, id=f"n{n}-{'ties' if ties else 'distinct'}{'-zeros' if zero else ''}")
    for seed, n, ties, zero in [(1, 40, False, False), (2, 3000, False, False), (3, 3000, True, False),
                                (4, 3000, True, True), (5, 500, False, True), (6, 25, True, True)]
]


def _distinct_points(eff_s, eff_b):
    """The curve without repeated points (a zero-weight entry's own score adds one)."""
    keep = np.r_[True, (np.diff(eff_s) != 0) | (np.diff(eff_b) != 0)]
    return eff_s[keep], eff_b[keep]


@pytest.mark.parametrize(("seed", "n", "ties", "zero"), CASES)
def test_roc_and_auc_equal_the_hand_written_ones(seed, n, ties, zero):
    score, label, weight = _weighted_sample(seed, n, ties=ties, zero_weights=zero)
    ref_s, ref_b, ref_t = reference_roc(score, label, weight)
    assert stats.auc(score, label, weight) == pytest.approx(reference_auc(score, label, weight), abs=1e-12)
    assert stats.auc(score, label, weight) == pytest.approx(
        sk_metrics.roc_auc_score(label, score, sample_weight=weight), abs=1e-12)
    roc = stats.roc_curve(score, label, weight)
    if not zero:  # the same points, thresholds included
        np.testing.assert_allclose(roc.signal_efficiency, ref_s, rtol=0, atol=1e-12)
        np.testing.assert_allclose(roc.background_efficiency, ref_b, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(roc.thresholds, ref_t)
    got = _distinct_points(roc.signal_efficiency, roc.background_efficiency)
    want = _distinct_points(ref_s, ref_b)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)
    # the numbers quoted from the curve: rejections, the nu_e-style selection cut
    for eff in (0.3, 0.5, 0.8):
        ref_rej = _reference_rejection(ref_s, ref_b, weight[label == 0], eff)
        assert stats.background_rejection(score, label, weight, eff) == pytest.approx(ref_rej, rel=1e-12)


def _reference_rejection(eff_s, eff_b, w_bkg, target):
    i = int(np.searchsorted(eff_s, target, side="left"))
    if eff_s[i] == target or i == 0:
        e = eff_b[i]
    else:
        e = eff_b[i - 1] + (target - eff_s[i - 1]) / (eff_s[i] - eff_s[i - 1]) * (eff_b[i] - eff_b[i - 1])
    return 1.0 / max(e, np.min(w_bkg[w_bkg > 0]) / np.sum(w_bkg))


def test_unweighted_and_perfect_cases_equal_the_hand_written_ones():
    score, label, _ = _weighted_sample(7, 800, ties=True, zero_weights=False)
    assert stats.auc(score, label) == pytest.approx(reference_auc(score, label, np.ones(800)), abs=1e-12)
    assert stats.auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert stats.auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert stats.auc(np.full(4, 0.5), [0, 0, 1, 1]) == 0.5


@pytest.mark.parametrize(("seed", "n", "ties", "zero"), CASES)
def test_wasserstein_equals_the_hand_written_one(seed, n, ties, zero):
    score, label, weight = _weighted_sample(seed, n, ties=ties, zero_weights=zero)
    a, b = score[label == 1], score[label == 0] * 1.1
    wa, wb = weight[label == 1], weight[label == 0]
    ref = reference_wasserstein(a, b, wa, wb)
    assert stats.wasserstein_distance(a, b, wa, wb) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert stats.wasserstein_distance(a, b) == pytest.approx(
        reference_wasserstein(a, b, np.ones(len(a)), np.ones(len(b))), rel=1e-12)
    assert sp_stats.wasserstein_distance(a, b, wa, wb) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert metrics.score_agreement(a, b, wa, wb)["wasserstein"] == pytest.approx(ref, rel=1e-12, abs=1e-12)



def test_wasserstein_refuses_negative_weights_with_a_clear_error():
    a, b = np.linspace(0, 1, 10), np.linspace(0.2, 1.2, 10)
    w = np.ones(10)
    w[3] = -0.5
    with pytest.raises(InputError, match="wasserstein_distance: .*negative"):
        stats.wasserstein_distance(a, b, w, None)


def test_auc_with_negative_weights_equals_the_hand_written_one():
    # NLO generators give negative weights: the ROC may then not be monotonic, which
    # roc_auc_score refuses; hepdl integrates scikit-learn's curve itself
    rng = np.random.default_rng(8)
    score, label, weight = rng.random(1000), rng.random(1000) < 0.5, rng.normal(1.0, 0.5, 1000)
    assert stats.auc(score, label, weight) == pytest.approx(reference_auc(score, label, weight), abs=1e-12)
