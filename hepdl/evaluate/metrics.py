"""Classifier metrics as physicists quote them, on plain numpy arrays.

Binary (jet tagging): AUC, background rejection 1/eps_B at fixed signal efficiency
(from :mod:`hepdl.stats`), working-point stability on another sample. Multi-class
(neutrino identification): confusion matrix as efficiency (row-normalised) and purity
(column-normalised), the signal-class selection (nu_e CC) at the cut on P(signal) that
maximises efficiency x purity.
Sim-vs-data agreement: weighted KS statistic and 1-D Wasserstein distance of score
distributions, and the AUC of a small classifier trained to tell sim from data.

Every function takes optional per-event weights; a cut ``score >= cut`` selects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepdl.errors import InputError
from hepdl.stats import (
    as_weights,
    auc,
    background_rejection,
    binary_inputs,
    check_scores,
    cut_for_efficiency,
    efficiency_at_cut,
    ks_statistic,
    roc_curve,
    wasserstein_distance,
)

# ---------------------------------------------------------------- binary


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
    s, y, w = binary_inputs(score, label, weight, "working_point_stability")
    cut = cut_for_efficiency(s[y], signal_efficiency, w[y])
    eff = efficiency_at_cut(other_score, cut, other_weight)
    return {"cut": cut, "efficiency": eff, "efficiency_shift": abs(eff - signal_efficiency)}


def binary_metrics(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> dict:
    """The metrics every binary stage reports: AUC, rejection at 30 % and 50 % signal efficiency."""
    s, y, w = binary_inputs(score, label, weight, "binary_metrics")
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
    p = check_scores(probs, what)
    if p.ndim != 2:
        raise InputError(f"{what}: class probabilities must be (N, K), got shape {p.shape}")
    y = np.asarray(label).reshape(-1)
    if len(y) != len(p):
        raise InputError(f"{what}: {len(p)} probability rows but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise InputError(
            f"{what}: labels must be class indices 0..{p.shape[1] - 1}, found {y.min()}..{y.max()}"
        )
    return p, y.astype(np.int64), as_weights(weight, len(y), what)


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
    signal_index: int = 1,
    *,
    signal_cut: float | None = None,
) -> dict:
    """Accuracy, per-class efficiency/purity and the selection of the signal class (e.g. nu_e CC).

    The selection keys are named after the signal class: ``<signal>_cut``, ``<signal>_efficiency``,
    ``<signal>_purity``. The cut on P(signal) is the one maximising efficiency x purity on these
    events, unless ``signal_cut`` is given (chosen on a validation sample with
    :func:`best_selection_cut`), which avoids tuning the cut on the test sample itself.
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
    if signal_cut is None:
        sel = best_selection_cut(p, y, class_index=signal_index, weight=w)
    else:
        sel = selection_at_cut(p, y, signal_cut, class_index=signal_index, weight=w)
    signal = classes[signal_index]
    out[f"{signal}_cut"] = sel["cut"]
    out[f"{signal}_efficiency"] = sel["efficiency"]
    out[f"{signal}_purity"] = sel["purity"]
    return out


# ---------------------------------------------------------------- sim vs data


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

    xs = check_scores(sim_features, "domain_classifier_auc (sim features)")
    xd = check_scores(data_features, "domain_classifier_auc (data features)")
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
