"""XGBoost classifiers on tabular features: the expert-variable baseline and the autoencoder-code BDT.

Binary tasks (jet tagging) use ``binary:logistic`` and give one score per entry;
multi-class tasks (neutrino flavour) use ``multi:softprob`` and give (N, K) class
probabilities. Training stops early on the validation split, and the returned
booster predicts with the best iteration only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import xgboost as xgb

from hepdl.atomic import atomic_path, atomic_write_text
from hepdl.errors import ConfigError, InputError

MODEL_FORMAT = "hepdl-bdt-v1"


@dataclass(frozen=True)
class BDTSettings:
    """Hyperparameters of the boosted decision trees (defaults fit a few 10k entries)."""

    n_estimators: int = 400
    max_depth: int = 4
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 1.0
    min_child_weight: float = 1.0
    early_stopping_rounds: int = 20


def select_features(
    features: np.ndarray, feature_names: Sequence[str], wanted: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """Columns ``wanted`` (by name, in that order) of an (N, F) array; None keeps all.

    A "mass+tau21" baseline is ``select_features(expert, names, ["mass", "tau21"])``.
    """
    x = np.asarray(features)
    names = list(feature_names)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise InputError(f"features have shape {x.shape} but {len(names)} feature names {names}")
    if wanted is None:
        return x, names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ConfigError(f"unknown feature(s) {unknown}; available: {names}")
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"feature list {list(wanted)} names a feature twice")
    idx = [names.index(w) for w in wanted]
    return x[:, idx], list(wanted)


def _dmatrix(x, y, w, names, what: str) -> xgb.DMatrix:
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        bad = sorted({names[j] for j in np.nonzero(~np.isfinite(x))[1]})
        raise InputError(f"{what}: features {bad} hold NaN or inf")
    return xgb.DMatrix(x, label=y, weight=w, feature_names=list(names))


def train_bdt(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    feature_names: Sequence[str],
    n_classes: int = 2,
    w_train: np.ndarray | None = None,
    w_val: np.ndarray | None = None,
    settings: BDTSettings = BDTSettings(),  # noqa: B008 - frozen dataclass, safe as a default
    seed: int = 0,
    threads: int = 1,
) -> xgb.Booster:
    """Train with early stopping on the validation split; deterministic for a given seed.

    Labels are class indices: 0/1 for binary (``n_classes=2``), 0..K-1 otherwise.
    """
    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
    for y, what in ((y_train, "training"), (y_val, "validation")):
        y = np.asarray(y)
        if len(y) == 0:
            raise InputError(f"{what} split is empty")
        if y.min() < 0 or y.max() >= n_classes:
            raise InputError(
                f"{what} labels span {y.min()}..{y.max()}, expected class indices 0..{n_classes - 1}"
                " (unlabelled input cannot train a classifier)"
            )
    if len(np.unique(y_train)) < 2:
        raise InputError(f"training split holds only class {np.unique(y_train).tolist()}")
    dtrain = _dmatrix(x_train, y_train, w_train, feature_names, "training split")
    dval = _dmatrix(x_val, y_val, w_val, feature_names, "validation split")
    params = {
        "max_depth": settings.max_depth,
        "eta": settings.learning_rate,
        "subsample": settings.subsample,
        "colsample_bytree": settings.colsample_bytree,
        "min_child_weight": settings.min_child_weight,
        "tree_method": "hist",
        "seed": seed,
        "nthread": threads,
    }
    if n_classes == 2:
        params |= {"objective": "binary:logistic", "eval_metric": "logloss"}
    else:
        params |= {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}
    return xgb.train(
        params,
        dtrain,
        num_boost_round=settings.n_estimators,
        evals=[(dtrain, "train"), (dval, "validation")],
        early_stopping_rounds=settings.early_stopping_rounds,
        verbose_eval=False,
    )


def predict_bdt(
    booster: xgb.Booster, features: np.ndarray, feature_names: Sequence[str]
) -> np.ndarray:
    """Scores from the best iteration: (N,) signal probability, or (N, K) class probabilities."""
    d = _dmatrix(features, None, None, feature_names, "prediction input")
    best = getattr(booster, "best_iteration", None)
    rng = (0, best + 1) if best is not None else (0, 0)
    return booster.predict(d, iteration_range=rng).astype(np.float32)


def save_bdt(booster: xgb.Booster, path: str | os.PathLike, info: dict) -> tuple[str, str]:
    """Write the booster as XGBoost JSON at ``path`` and ``info`` (+ feature names) beside it.

    The side file is ``<path without .json>.info.json``; both are written atomically.
    XGBoost picks its format from the file name, so the temporary name ends in .json too.
    """
    path = os.fspath(path)
    if not path.endswith(".json"):
        raise ConfigError(f"{path}: the BDT model file must end in .json (XGBoost JSON format)")
    info_path = path[: -len(".json")] + ".info.json"
    meta = {
        "format": MODEL_FORMAT,
        "feature_names": list(booster.feature_names or []),
        "best_iteration": int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1)),
        **info,
    }
    # the model file is renamed into place last: once it exists, its info file does too
    with atomic_path(path, ".json") as tmp_model:
        booster.save_model(tmp_model)
        atomic_write_text(info_path, json.dumps(meta, indent=2) + "\n")
    return path, info_path


def load_bdt(path: str | os.PathLike) -> tuple[xgb.Booster, dict]:
    """Read a model written by :func:`save_bdt`: (booster, info with ``feature_names``)."""
    path = os.fspath(path)
    info_path = path[: -len(".json")] + ".info.json"
    try:
        with open(info_path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{info_path}: BDT info file missing beside {path}") from None
    if info.get("format") != MODEL_FORMAT:
        raise InputError(f"{info_path}: not a hepdl BDT info file (format {info.get('format')!r})")
    booster = xgb.Booster()
    try:
        booster.load_model(path)
    except xgb.core.XGBoostError as err:
        raise InputError(
            f"{path}: cannot load XGBoost model ({str(err).splitlines()[0]})"
        ) from None
    booster.feature_names = info["feature_names"]
    # best_iteration is stored in the model JSON's attributes by xgb.train; keep ours authoritative
    booster.set_attr(best_iteration=str(info["best_iteration"]))
    return booster, info


def settings_dict(settings: BDTSettings) -> dict:
    """The settings as a plain dict, for provenance in the info file."""
    return asdict(settings)
