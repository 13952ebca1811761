"""Classifier metrics as physicists quote them, on plain numpy arrays.

Binary (jet tagging): ROC as signal efficiency vs background efficiency, AUC,
background rejection 1/eps_B at fixed signal efficiency, working-point cuts and
their stability on another sample. Multi-class (neutrino identification):
confusion matrix as efficiency (row-normalised) and purity (column-normalised),
nu_e CC selection at the cut on P(nu_e) that maximises efficiency x purity.
Sim-vs-data agreement: weighted KS statistic and 1-D Wasserstein distance of score
distributions, and the AUC of a small classifier trained to tell sim from data.

Every function takes optional per-event weights; a cut ``score >= cut`` selects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hepdl.errors import InputError


class RocCurve(NamedTuple):
    """Efficiencies of the selection ``score >= threshold``, thresholds decreasing."""

    signal_efficiency: np.ndarray
    background_efficiency: np.ndarray
    thresholds: np.ndarray


# ---------------------------------------------------------------- input checks


def _as_weights(weight: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if weight is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise InputError(f"{what}: {len(w)} weights for {n} entries")
    if not np.all(np.isfinite(w)):
        raise InputError(f"{what}: weights contain NaN or inf")
    return w


def _check_scores(score: np.ndarray, what: str) -> np.ndarray:
    s = np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise InputError(f"{what}: {int(np.sum(~np.isfinite(s)))} scores are NaN or inf")
    return s


def _binary_inputs(score, label, weight, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = _check_scores(score, what).reshape(-1)
    y = np.asarray(label).reshape(-1)
    if len(y) != len(s):
        raise InputError(f"{what}: {len(s)} scores but {len(y)} labels")
    bad = ~np.isin(y, (0, 1))
    if np.any(bad):
        raise InputError(
            f"{what}: binary labels must be 0 (background) or 1 (signal); "
            f"found {sorted(set(np.unique(y[bad]).tolist()))[:5]}"
        )
    w = _as_weights(weight, len(s), what)
    if np.sum(w[y == 1]) <= 0 or np.sum(w[y == 0]) <= 0:
        raise InputError(
            f"{what}: need signal (label 1) and background (label 0) with positive total weight"
        )
    return s, y.astype(bool), w


# ---------------------------------------------------------------- binary


def roc_curve(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> RocCurve:
    """Weighted ROC: efficiencies of ``score >= t`` for every distinct score t.

    Starts at (0, 0) with threshold +inf and ends at (1, 1). Tied scores form one
    point, so the curve does not depend on the order of equal-score events.
    """
    s, y, w = _binary_inputs(score, label, weight, "roc_curve")
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    w_sig = np.cumsum(np.where(y[order], w[order], 0.0))
    w_bkg = np.cumsum(np.where(y[order], 0.0, w[order]))
    # last index of each run of equal scores: the selection boundary cannot split ties
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]
    eff_s = np.r_[0.0, w_sig[last] / w_sig[-1]]
    eff_b = np.r_[0.0, w_bkg[last] / w_bkg[-1]]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return RocCurve(eff_s, eff_b, thresholds)


def auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Weighted area under the ROC curve (trapezoids; 0.5 = no separation)."""
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
    s, y, w = _binary_inputs(score, label, weight, "background_rejection")
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
    s = _check_scores(score, "cut_for_efficiency").reshape(-1)
    if len(s) == 0:
        raise InputError("cut_for_efficiency: no scores")
    w = _as_weights(weight, len(s), "cut_for_efficiency")
    order = np.argsort(-s, kind="stable")
    passed = np.cumsum(w[order]) / np.sum(w)
    # tolerance so that e.g. 5 of 10 events counts as reaching 0.5
    idx = int(np.searchsorted(passed, efficiency - 1e-12, side="left"))
    return float(s[order][min(idx, len(s) - 1)])


def efficiency_at_cut(score: np.ndarray, cut: float, weight: np.ndarray | None = None) -> float:
    """Weighted fraction of entries with score >= cut."""
    s = _check_scores(score, "efficiency_at_cut").reshape(-1)
    w = _as_weights(weight, len(s), "efficiency_at_cut")
    total = np.sum(w)
    if total <= 0:
        raise InputError("efficiency_at_cut: total weight is not positive")
    return float(np.sum(w[s >= cut]) / total)


def working_point_stability(
    score: np.ndarray,
    label: np.ndarray,
    other_score: np.ndarray,
    *,
    signal_efficiency: float = 0.5,
    weight: np.ndarray | None = None,
    other_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Cut at ``signal_efficiency`` on the signal of one sample (sim), efficiency on another (data).

    ``other_score`` holds the other sample's entries to measure on (e.g. its signal-like
    part, or all of it when it has no labels). Returns the cut, the other sample's
    efficiency and its shift ``|eff_other - signal_efficiency|`` (0 = stable).
    """
    s, y, w = _binary_inputs(score, label, weight, "working_point_stability")
    cut = cut_for_efficiency(s[y], signal_efficiency, w[y])
    eff = efficiency_at_cut(other_score, cut, other_weight)
    return {"cut": cut, "efficiency": eff, "efficiency_shift": abs(eff - signal_efficiency)}


def binary_metrics(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> dict:
    """The metrics every binary stage reports: AUC, rejection at 30 % and 50 % signal efficiency."""
    s, y, w = _binary_inputs(score, label, weight, "binary_metrics")
    yi = y.astype(np.int64)
    return {
        "auc": auc(s, yi, w),
        "rejection_at_30": background_rejection(s, yi, w, 0.3),
        "rejection_at_50": background_rejection(s, yi, w, 0.5),
        "n_test": int(len(s)),
    }


# ---------------------------------------------------------------- multi-class


def _multiclass_inputs(
    probs, label, weight, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _check_scores(probs, what)
    if p.ndim != 2:
        raise InputError(f"{what}: class probabilities must be (N, K), got shape {p.shape}")
    y = np.asarray(label).reshape(-1)
    if len(y) != len(p):
        raise InputError(f"{what}: {len(p)} probability rows but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise InputError(
            f"{what}: labels must be class indices 0..{p.shape[1] - 1}, found {y.min()}..{y.max()}"
        )
    return p, y.astype(np.int64), _as_weights(weight, len(y), what)


def confusion_matrix(
    probs: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Weighted confusion matrix of argmax classification.

    ``counts[i, j]`` is the weight of true class i classified as j; ``efficiency`` is
    row-normalised (fraction of class i found as j), ``purity`` column-normalised
    (fraction of entries classified as j that are truly i). Empty rows/columns give 0.
    """
    p, y, w = _multiclass_inputs(probs, label, weight, "confusion_matrix")
    k = p.shape[1]
    pred = np.argmax(p, axis=1)
    counts = np.bincount(y * k + pred, weights=w, minlength=k * k).reshape(k, k)
    rows = counts.sum(axis=1, keepdims=True)
    cols = counts.sum(axis=0, keepdims=True)
    eff = np.divide(counts, rows, out=np.zeros_like(counts), where=rows != 0)
    pur = np.divide(counts, cols, out=np.zeros_like(counts), where=cols != 0)
    return {"counts": counts, "efficiency": eff, "purity": pur}


def selection_at_cut(
    probs: np.ndarray,
    label: np.ndarray,
    cut: float,
    *,
    class_index: int = 1,
    weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Efficiency and purity for class ``class_index`` of the selection ``P(class) >= cut``."""
    p, y, w = _multiclass_inputs(probs, label, weight, "selection_at_cut")
    sel = p[:, class_index] >= cut
    is_cls = y == class_index
    total = np.sum(w[is_cls])
    selected = np.sum(w[sel])
    good = np.sum(w[sel & is_cls])
    return {
        "cut": float(cut),
        "efficiency": float(good / total) if total > 0 else 0.0,
        "purity": float(good / selected) if selected > 0 else 0.0,
    }


def best_selection_cut(
    probs: np.ndarray, label: np.ndarray, *, class_index: int = 1, weight: np.ndarray | None = None
) -> dict[str, float]:
    """The cut on P(class) maximising efficiency x purity (the NOvA-style FOM), with both values."""
    p, y, w = _multiclass_inputs(probs, label, weight, "best_selection_cut")
    is_cls = (y == class_index).astype(np.int64)
    if not is_cls.any() or is_cls.all():
        raise InputError(
            f"best_selection_cut: class {class_index} must be present alongside other classes"
        )
    roc = roc_curve(p[:, class_index], is_cls, w)
    s_tot, b_tot = np.sum(w[is_cls == 1]), np.sum(w[is_cls == 0])
    sig = roc.signal_efficiency[1:] * s_tot
    bkg = roc.background_efficiency[1:] * b_tot
    purity = np.divide(sig, sig + bkg, out=np.zeros_like(sig), where=(sig + bkg) > 0)
    fom = roc.signal_efficiency[1:] * purity
    i = int(np.argmax(fom))
    return {
        "cut": float(roc.thresholds[1:][i]),
        "efficiency": float(roc.signal_efficiency[1:][i]),
        "purity": float(purity[i]),
    }


def multiclass_metrics(
    probs: np.ndarray,
    label: np.ndarray,
    classes: Sequence[str],
    weight: np.ndarray | None = None,
    nue_index: int = 1,
    *,
    nue_cut: float | None = None,
) -> dict:
    """Accuracy, per-class efficiency/purity and the nu_e CC selection.

    The nu_e CC cut is the one maximising efficiency x purity on these events, unless
    ``nue_cut`` is given (chosen on a validation sample with :func:`best_selection_cut`),
    which avoids tuning the cut on the test sample itself.
    """
    p, y, w = _multiclass_inputs(probs, label, weight, "multiclass_metrics")
    if len(classes) != p.shape[1]:
        raise InputError(
            f"multiclass_metrics: {len(classes)} class names {list(classes)} for {p.shape[1]} columns"
        )
    cm = confusion_matrix(p, y, w)
    out: dict = {
        "accuracy": float(np.trace(cm["counts"]) / np.sum(cm["counts"])),
        "n_test": int(len(y)),
    }
    for i, name in enumerate(classes):
        out[f"efficiency_{name}"] = float(cm["efficiency"][i, i])
        out[f"purity_{name}"] = float(cm["purity"][i, i])
    if nue_cut is None:
        sel = best_selection_cut(p, y, class_index=nue_index, weight=w)
    else:
        sel = selection_at_cut(p, y, nue_cut, class_index=nue_index, weight=w)
    out["nue_cc_cut"] = sel["cut"]
    out["nue_cc_efficiency"] = sel["efficiency"]
    out["nue_cc_purity"] = sel["purity"]
    return out


# ---------------------------------------------------------------- sim vs data


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
    x = _check_scores(a, "ks_statistic").reshape(-1)
    z = _check_scores(b, "ks_statistic").reshape(-1)
    if len(x) == 0 or len(z) == 0:
        raise InputError("ks_statistic: both samples need entries")
    wa = _as_weights(weight_a, len(x), "ks_statistic")
    wb = _as_weights(weight_b, len(z), "ks_statistic")
    at = np.unique(np.concatenate([x, z]))
    return float(np.max(np.abs(_weighted_cdf(x, wa, at) - _weighted_cdf(z, wb, at))))


def wasserstein_distance(
    a: np.ndarray,
    b: np.ndarray,
    weight_a: np.ndarray | None = None,
    weight_b: np.ndarray | None = None,
) -> float:
    """Weighted 1-D Wasserstein (earth mover's) distance: integral of |CDF_a - CDF_b|."""
    x = _check_scores(a, "wasserstein_distance").reshape(-1)
    z = _check_scores(b, "wasserstein_distance").reshape(-1)
    if len(x) == 0 or len(z) == 0:
        raise InputError("wasserstein_distance: both samples need entries")
    wa = _as_weights(weight_a, len(x), "wasserstein_distance")
    wb = _as_weights(weight_b, len(z), "wasserstein_distance")
    at = np.unique(np.concatenate([x, z]))
    diff = np.abs(_weighted_cdf(x, wa, at) - _weighted_cdf(z, wb, at))
    # both CDFs are steps constant on [at[i], at[i+1])
    return float(np.sum(diff[:-1] * np.diff(at)))


def score_agreement(
    sim_score: np.ndarray,
    data_score: np.ndarray,
    sim_weight: np.ndarray | None = None,
    data_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """KS statistic and Wasserstein distance between sim and data score distributions."""
    return {
        "ks": ks_statistic(sim_score, data_score, sim_weight, data_weight),
        "wasserstein": wasserstein_distance(sim_score, data_score, sim_weight, data_weight),
    }


def domain_classifier_auc(
    sim_features: np.ndarray,
    data_features: np.ndarray,
    *,
    seed: int = 0,
    model: str = "logistic",
    max_per_domain: int | None = 20000,
) -> float:
    """AUC of a small classifier trained to tell sim from data (0.5 = indistinguishable).

    Each domain is shuffled with ``seed`` and cut in halves: the classifier trains on
    the first halves and is scored on the held-out halves, so overfitting cannot fake
    a difference. The AUC is not folded to >= 0.5: a value below 0.5 is statistical
    noise of the held-out halves and is reported as such.
    ``model`` is "logistic" (standardised logistic regression) or "gbdt"
    (sklearn's histogram gradient boosting, for non-linear differences).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs = _check_scores(sim_features, "domain_classifier_auc (sim features)")
    xd = _check_scores(data_features, "domain_classifier_auc (data features)")
    xs = xs.reshape(len(xs), -1)
    xd = xd.reshape(len(xd), -1)
    if xs.shape[1] != xd.shape[1]:
        raise InputError(
            f"domain_classifier_auc: sim has {xs.shape[1]} features, data {xd.shape[1]}"
        )
    if len(xs) < 4 or len(xd) < 4:
        raise InputError("domain_classifier_auc: need at least 4 entries per domain")
    rng = np.random.default_rng(seed)
    halves = []
    for x in (xs, xd):
        idx = rng.permutation(len(x))
        if max_per_domain is not None:
            idx = idx[: 2 * max_per_domain]
        half = len(idx) // 2
        halves.append((x[idx[:half]], x[idx[half:]]))
    (s_tr, s_te), (d_tr, d_te) = halves
    x_tr = np.concatenate([s_tr, d_tr])
    y_tr = np.r_[np.zeros(len(s_tr)), np.ones(len(d_tr))].astype(np.int64)
    x_te = np.concatenate([s_te, d_te])
    y_te = np.r_[np.zeros(len(s_te)), np.ones(len(d_te))].astype(np.int64)
    # balance the domains so the classifier does not just learn the prior
    w_tr = np.where(y_tr == 1, len(y_tr) / (2.0 * len(d_tr)), len(y_tr) / (2.0 * len(s_tr)))
    if model == "logistic":
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(x_tr, y_tr, logisticregression__sample_weight=w_tr)
    elif model == "gbdt":
        clf = HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=seed)
        clf.fit(x_tr, y_tr, sample_weight=w_tr)
    else:
        raise InputError(
            f"domain_classifier_auc: model must be 'logistic' or 'gbdt', got {model!r}"
        )
    return auc(clf.predict_proba(x_te)[:, 1], y_te)
