"""Metrics and plots: ROC, background rejection, efficiency/purity, sim-vs-data agreement."""

from hepdl.evaluate.metrics import (
    best_selection_cut,
    binary_metrics,
    confusion_matrix,
    domain_classifier_auc,
    multiclass_metrics,
    score_agreement,
    selection_at_cut,
    working_point_stability,
)
from hepdl.stats import (
    RocCurve,
    auc,
    background_rejection,
    cut_for_efficiency,
    efficiency_at_cut,
    ks_statistic,
    roc_curve,
    wasserstein_distance,
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
