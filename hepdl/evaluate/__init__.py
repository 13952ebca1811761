"""Metrics and plots: ROC, background rejection, efficiency/purity, sim-vs-data agreement."""

from hepdl.evaluate.metrics import (
    RocCurve,
    auc,
    background_rejection,
    best_selection_cut,
    binary_metrics,
    confusion_matrix,
    cut_for_efficiency,
    domain_classifier_auc,
    efficiency_at_cut,
    ks_statistic,
    multiclass_metrics,
    roc_curve,
    score_agreement,
    selection_at_cut,
    wasserstein_distance,
    working_point_stability,
)

__all__ = [
    "RocCurve",
    "auc",
    "background_rejection",
    "best_selection_cut",
    "binary_metrics",
    "confusion_matrix",
    "cut_for_efficiency",
    "domain_classifier_auc",
    "efficiency_at_cut",
    "ks_statistic",
    "multiclass_metrics",
    "roc_curve",
    "score_agreement",
    "selection_at_cut",
    "wasserstein_distance",
    "working_point_stability",
]
