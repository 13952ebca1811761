"""Weighted statistics of score samples, shared by training and evaluation.

ROC curve as signal efficiency vs background efficiency, its area (AUC), background
rejection 1/eps_B at a fixed signal efficiency, working-point cuts, and the weighted
two-sample distances (Kolmogorov-Smirnov, 1-D Wasserstein) of score distributions.
Every function takes optional per-entry weights; a cut ``score >= cut`` selects.

The ROC curve and its area come from scikit-learn (``roc_curve``, ``roc_auc_score`` with
``sample_weight``), the Wasserstein distance from scipy (``wasserstein_distance`` with weights);
tests/test_stats_libraries.py shows they equal the hand-written code they replaced to 1e-12.
Kept here: the weighted KS statistic (scipy's ``ks_2samp`` takes no weights), and the
rejection at a fixed efficiency, which interpolates along the ROC the way taggers are quoted
(the tightest cut reaching the efficiency), which no library offers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.stats
import sklearn.metrics

from hepdl.errors import InputError


class RocCurve(NamedTuple):
    """Efficiencies of the selection ``score >= threshold``, thresholds decreasing."""

    signal_efficiency: np.ndarray
    background_efficiency: np.ndarray
    thresholds: np.ndarray


# ---------------------------------------------------------------- input checks


def as_weights(weight: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if weight is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise InputError(f"{what}: {len(w)} weights for {n} entries")
    if not np.all(np.isfinite(w)):
        raise InputError(f"{what}: weights contain NaN or inf")
    return w


def check_scores(score: np.ndarray, what: str) -> np.ndarray:
    s = np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise InputError(f"{what}: {int(np.sum(~np.isfinite(s)))} scores are NaN or inf")
    return s


def binary_inputs(score, label, weight, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = check_scores(score, what).reshape(-1)
    y = np.asarray(label).reshape(-1)
    if len(y) != len(s):
        raise InputError(f"{what}: {len(s)} scores but {len(y)} labels")
    bad = ~np.isin(y, (0, 1))
    if np.any(bad):
        raise InputError(
            f"{what}: binary labels must be 0 (background) or 1 (signal); "
            f"found {sorted(set(np.unique(y[bad]).tolist()))[:5]}"
        )
    w = as_weights(weight, len(s), what)
    if np.sum(w[y == 1]) <= 0 or np.sum(w[y == 0]) <= 0:
        raise InputError(
            f"{what}: need signal (label 1) and background (label 0) with positive total weight"
        )
    return s, y.astype(bool), w


def roc_curve(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> RocCurve:
    """Weighted ROC: efficiencies of ``score >= t`` for every distinct score t of an entry with
    non-zero weight.

    Starts at (0, 0) with threshold +inf and ends at (1, 1). Tied scores form one
    point, so the curve does not depend on the order of equal-score events.
    """
    s, y, w = binary_inputs(score, label, weight, "roc_curve")
    # every distinct score is a point (no dropped collinear points): rejections interpolate on it
    eff_b, eff_s, thresholds = sklearn.metrics.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    return RocCurve(eff_s, eff_b, thresholds)


def auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Weighted area under the ROC curve (trapezoids; 0.5 = no separation)."""
    # trapezoids over scikit-learn's curve rather than roc_auc_score, which refuses the
    # non-monotonic curve of samples with negative weights (NLO generators): same value otherwise
    roc = roc_curve(score, label, weight)
    return float(np.trapezoid(roc.signal_efficiency, roc.background_efficiency))


def background_efficiency_at(roc: RocCurve, signal_efficiency: float) -> float:
    """eps_B at a signal efficiency, interpolated linearly along the ROC curve."""
    eff_s, eff_b = roc.signal_efficiency, roc.background_efficiency
    if not 0.0 <= signal_efficiency <= 1.0:
        raise InputError(f"signal efficiency must be in [0, 1], got {signal_efficiency}")
    # eps_S has plateaus (background-only steps); take the first point reaching the
    # target, i.e. the tightest cut, and interpolate from the point before it.
    # (np.interp would pick the end of a plateau: the loosest cut.)
    i = int(np.searchsorted(eff_s, signal_efficiency, side="left"))
    if eff_s[i] == signal_efficiency or i == 0:
        return float(eff_b[i])
    frac = (signal_efficiency - eff_s[i - 1]) / (eff_s[i] - eff_s[i - 1])
    return float(eff_b[i - 1] + frac * (eff_b[i] - eff_b[i - 1]))


def background_rejection(
    score: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray | None = None,
    signal_efficiency: float = 0.5,
) -> float:
    """Background rejection 1/eps_B at a fixed signal efficiency (interpolated).

    When no background passes, eps_B is floored at the smallest background-event
    weight fraction: the rejection is then the lower limit the sample can measure,
    not infinity (which JSON cannot hold and no sample of finite size supports).
    """
    s, y, w = binary_inputs(score, label, weight, "background_rejection")
    roc = roc_curve(s, y.astype(np.int64), w)
    eff_b = background_efficiency_at(roc, signal_efficiency)
    w_bkg = w[~y]
    floor = np.min(w_bkg[w_bkg > 0]) / np.sum(w_bkg)
    return float(1.0 / max(eff_b, floor))


def cut_for_efficiency(
    score: np.ndarray, efficiency: float, weight: np.ndarray | None = None
) -> float:
    """The cut c such that a (weighted) fraction ``efficiency`` of these scores has score >= c.

    Pass the signal scores to get the working point at a signal efficiency.
    With discrete scores the fraction passing is the smallest one >= ``efficiency``.
    """
    if not 0.0 < efficiency <= 1.0:
        raise InputError(f"cut_for_efficiency: efficiency must be in (0, 1], got {efficiency}")
    s = check_scores(score, "cut_for_efficiency").reshape(-1)
    if len(s) == 0:
        raise InputError("cut_for_efficiency: no scores")
    w = as_weights(weight, len(s), "cut_for_efficiency")
    order = np.argsort(-s, kind="stable")
    passed = np.cumsum(w[order]) / np.sum(w)
    # tolerance so that e.g. 5 of 10 events counts as reaching 0.5
    idx = int(np.searchsorted(passed, efficiency - 1e-12, side="left"))
    return float(s[order][min(idx, len(s) - 1)])


def efficiency_at_cut(score: np.ndarray, cut: float, weight: np.ndarray | None = None) -> float:
    """Weighted fraction of entries with score >= cut."""
    s = check_scores(score, "efficiency_at_cut").reshape(-1)
    w = as_weights(weight, len(s), "efficiency_at_cut")
    total = np.sum(w)
    if total <= 0:
        raise InputError("efficiency_at_cut: total weight is not positive")
    return float(np.sum(w[s >= cut]) / total)


# ours, for the weighted KS statistic: scipy's ks_2samp takes no weights
def _weighted_cdf(x: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cw = np.cumsum(w[order]) / np.sum(w)
    idx = np.searchsorted(xs, at, side="right")
    return np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0)


def ks_statistic(
    a: np.ndarray,
    b: np.ndarray,
    weight_a: np.ndarray | None = None,
    weight_b: np.ndarray | None = None,
) -> float:
    """Weighted two-sample Kolmogorov-Smirnov statistic: max |CDF_a - CDF_b|."""
    x = check_scores(a, "ks_statistic").reshape(-1)
    z = check_scores(b, "ks_statistic").reshape(-1)
    if len(x) == 0 or len(z) == 0:
        raise InputError("ks_statistic: both samples need entries")
    wa = as_weights(weight_a, len(x), "ks_statistic")
    wb = as_weights(weight_b, len(z), "ks_statistic")
    at = np.unique(np.concatenate([x, z]))
    return float(np.max(np.abs(_weighted_cdf(x, wa, at) - _weighted_cdf(z, wb, at))))


def wasserstein_distance(
    a: np.ndarray,
    b: np.ndarray,
    weight_a: np.ndarray | None = None,
    weight_b: np.ndarray | None = None,
) -> float:
    """Weighted 1-D Wasserstein (earth mover's) distance: integral of |CDF_a - CDF_b|."""
    x = check_scores(a, "wasserstein_distance").reshape(-1)
    z = check_scores(b, "wasserstein_distance").reshape(-1)
    if len(x) == 0 or len(z) == 0:
        raise InputError("wasserstein_distance: both samples need entries")
    wa = as_weights(weight_a, len(x), "wasserstein_distance")
    wb = as_weights(weight_b, len(z), "wasserstein_distance")
    if np.any(wa < 0) or np.any(wb < 0):
        raise InputError("wasserstein_distance: negative weights (a CDF must not decrease)")
    return float(scipy.stats.wasserstein_distance(x, z, wa, wb))


def labelled_auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """:func:`auc` over the entries labelled 0 or 1 only; NaN when either class has no weight.

    For monitoring during training, where a validation set may hold unlabelled entries
    (label -1, e.g. data) or, for a tiny run, a single class: a number or NaN, never an error.
    """
    y = np.asarray(label).reshape(-1)
    keep = (y == 0) | (y == 1)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if not (np.sum(w[keep & (y == 1)]) > 0 and np.sum(w[keep & (y == 0)]) > 0):
        return float("nan")
    return auc(np.asarray(score).reshape(-1)[keep], y[keep], w[keep])
