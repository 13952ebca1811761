"""Label-efficiency study: test AUC of a CNN versus the number of labelled training jets,
with the body initialised at random and from an autoencoder's encoder (unsupervised pre-training).

Every run is one :func:`hepdl.train_model` call; the subsets are the ``max_train_entries`` (and
``max_validation_entries``) seeded draws of :mod:`hepdl.train.selection`, so the random and the
pre-trained CNN of one size see exactly the same jets.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from hepdl.errors import ConfigError
from hepdl.train.settings import TrainSettings


def run_label_efficiency(
    shards: Sequence[str], settings: TrainSettings, autoencoder_path: str, sizes: Sequence[int | None],
    output: str, *, min_steps: int = 0, repeats: int = 1,
) -> tuple[dict[str, dict[int, list[float]]], dict[int, int]]:
    """``({"random": {n: [auc, ...]}, "pretrained": {n: [auc, ...]}}, {n: validation entries})`` for
    each training-set size (None: all).

    Every run is a :func:`hepdl.train_model` run in ``output/<init>_<n>_<draw>`` (its model file and
    scores stay there). Each subset size is drawn ``repeats`` times (draw r: seed
    ``settings.seed + r`` for the subset and the initialisation): at 50 jets one draw's AUC varies by
    several hundredths. The whole training split is trained once. ``min_steps``: a small set is
    repeated within each epoch so that every run takes at least this many optimiser steps, otherwise
    the comparison would measure the step count rather than the initialisation. The pre-trained body
    learns at ``pretrained_body_lr_factor`` times the rate. Test AUCs are weighted to a flat
    background pT spectrum (the signal's) when the settings reweight pT in training, as the main
    CNN's are. Each subset's best epoch is chosen on a validation subset of its own size
    (``max_validation_entries``); the whole training split validates on the whole validation split.
    """
    from hepdl.evaluate.metrics import binary_metrics
    from hepdl.represent.prepared import find_shards
    from hepdl.represent.torch_dataset import PreparedDataset
    from hepdl.train.reweight import pt_flat_weights
    from hepdl.train.training_run import train_model

    if settings.objective != "classify":
        raise ConfigError(f"objective: the label-efficiency study trains classifiers, not {settings.objective!r}")
    if repeats < 1:
        raise ConfigError(f"repeats: must be a positive integer, not {repeats!r}")
    shards = find_shards(shards)
    n_train, n_val = (len(PreparedDataset(shards, split, ("label",))) for split in ("train", "validation"))
    results: dict[str, dict[int, list[float]]] = {"random": {}, "pretrained": {}}
    n_validation: dict[int, int] = {}
    for size in sizes:
        subset = size is not None and size < n_train
        n_labelled = size if subset else n_train
        for draw in range(repeats if subset else 1):
            seed = settings.seed + draw
            # Both initialisations of a draw see the same jets, for training and for validation.
            drawn = dataclasses.replace(settings, model={**settings.model, "seed": seed}, seed=seed,
                                        max_train_entries=size, max_validation_entries=size if subset else None,
                                        min_steps=min_steps if subset else 0)
            for init in ("random", "pretrained"):
                run = dataclasses.replace(drawn, init_body_from=autoencoder_path if init == "pretrained" else None)
                trained = train_model(shards, run, os.path.join(output, f"{init}_{n_labelled}_{draw}"))
                test = trained.scores["test"]
                weight = test["weight"]
                if settings.reweight != "none":
                    weight = pt_flat_weights(test["jet_pt"], test["label"], weight)
                auc = float(binary_metrics(test["score"], test["label"], weight)["auc"])
                results[init].setdefault(n_labelled, []).append(auc)
            n_validation[n_labelled] = min(size, n_val) if subset else n_val
    return results, n_validation


def summary_entry(results: dict[str, dict[int, list[float]]], task: str, name: str = "pretrained_cnn",
                  n_validation: dict[int, int] | None = None) -> dict:
    """A metrics JSON for ``hepdl summary``: ``<task>.<name>.auc`` (pre-trained, largest size) and per-size AUCs.

    Per size: the mean over draws (``auc_<init>_<n>``), their standard deviation
    (``auc_<init>_<n>_std``), and the gain of pre-training at the smallest size with its
    standard error (draw by draw: both inits of one draw see the same jets).
    """
    largest = max(results["pretrained"])
    smallest = min(results["pretrained"])
    gains = np.subtract(results["pretrained"][smallest], results["random"][smallest])
    out = {"task": task, "model": name, "auc": float(np.mean(results["pretrained"][largest])),
           "auc_random_init": float(np.mean(results["random"][largest])),
           "auc_gain_at_smallest": float(np.mean(gains)),
           "auc_gain_at_smallest_err": float(np.std(gains, ddof=1) / np.sqrt(gains.size)) if gains.size > 1 else None}
    for init, points in results.items():
        for n, values in sorted(points.items()):
            out[f"auc_{init}_{n}"] = float(np.mean(values))
            out[f"auc_{init}_{n}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    out["n_train_sizes"] = [int(n) for n in sorted(results["pretrained"])]
    if n_validation is not None:
        out["n_validation"] = {str(n): int(k) for n, k in sorted(n_validation.items())}
    out["label_efficiency"] = {init: {str(n): [float(v) for v in values] for n, values in sorted(p.items())}
                               for init, p in results.items()}
    return out


def parse_sizes(values: Sequence[str]) -> list[int | None]:
    """``["200", "1000", "all"]`` -> ``[200, 1000, None]``."""
    out: list[int | None] = []
    for v in values:
        if str(v).lower() == "all":
            out.append(None)
            continue
        try:
            n = int(v)
        except ValueError:
            raise ConfigError(f"--sizes: {v!r} is not a positive integer or 'all'") from None
        if n < 1:
            raise ConfigError(f"--sizes: {v!r} is not a positive integer or 'all'")
        out.append(n)
    if not out:
        raise ConfigError("--sizes: give at least one size")
    return out
