"""Label-efficiency study: test AUC of a CNN versus the number of labelled training jets,
with the body initialised at random and from an autoencoder's encoder (unsupervised pre-training).

Every run goes through the one training engine in-process; the subsets are the
``max_train_entries`` seeded draws of :mod:`hepdl.train.selection`, so the random and the
pre-trained CNN of one size see exactly the same jets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hepdl.errors import ConfigError
from hepdl.train.settings import TrainSettings

if TYPE_CHECKING:
    from torch.utils.data import Dataset

#: mixed into a draw's seed for its validation subset: independent of the training subset's stream
_VALIDATION_STREAM = 0x7A11D


def repeat_to_steps(train_set: Dataset, batch_size: int, epochs: int, min_steps: int) -> Dataset:
    """``train_set`` (a subset view) repeated so that ``epochs`` epochs take at least ``min_steps`` steps.

    A 50-jet set gives one step per epoch: reaching the steps by more epochs would validate (and
    checkpoint) on the large validation split after every step; repeating the entries within an
    epoch gives the same optimisation at a tenth of the cost.
    """
    from hepdl.train.selection import SubsetDataset

    need = -(-min_steps * batch_size // epochs)
    if not isinstance(train_set, SubsetDataset) or len(train_set) >= need:
        return train_set
    return SubsetDataset(train_set.dataset, np.tile(train_set.indices, -(-need // len(train_set))))


def matched_validation(val_set: Dataset, size: int, seed: int) -> Dataset:
    """``size`` entries of the validation split, drawn with ``seed`` (all of it when smaller).

    A run on ``size`` labelled jets selects its best epoch on no more labelled jets than it
    trained on: an analysis with 50 labels has no other 1000 to validate with, and a large
    validation set flatters small-label results (Oliver et al. 2018, "Realistic evaluation of
    deep semi-supervised learning algorithms").
    """
    from hepdl.train.selection import SubsetDataset

    if size >= len(val_set):
        return val_set
    rng = np.random.default_rng([int(seed), _VALIDATION_STREAM])
    return SubsetDataset(val_set, np.sort(rng.choice(len(val_set), size=size, replace=False)))


def run_label_efficiency(
    shards: Sequence[str], settings: TrainSettings, autoencoder_path: str, sizes: Sequence[int | None],
    *, min_steps: int = 0, repeats: int = 1,
) -> tuple[dict[str, dict[int, list[float]]], dict[int, int]]:
    """``({"random": {n: [auc, ...]}, "pretrained": {n: [auc, ...]}}, {n: validation entries})`` for
    each training-set size (None: all).

    Each subset size is drawn ``repeats`` times (draw r: seed ``settings.seed + r`` for the subset
    and the initialisation): at 50 jets one draw's AUC varies by several hundredths. The whole
    training split is trained once. ``min_steps``: a small set is repeated within each epoch so
    that every run takes at least this many optimiser steps, otherwise the comparison would
    measure the step count rather than the initialisation. The pre-trained body learns at
    ``pretrained_body_lr_factor`` times the rate. Test AUCs are weighted to a flat background pT
    spectrum (the signal's) when the settings reweight pT in training, as the main CNN's are.
    Each subset's best epoch is chosen on a validation subset of its own size
    (:func:`matched_validation`); the whole training split validates on the whole validation split.
    """
    from hepdl.evaluate.metrics import binary_metrics
    from hepdl.models import build_model, complete_model_config, model_input_keys
    from hepdl.models.autoencoders import init_body_from
    from hepdl.represent.torch_dataset import PreparedDataset
    from hepdl.train import predict, train
    from hepdl.train.reweight import pt_flat_weights
    from hepdl.train.selection import select_training_entries

    if settings.objective != "classify":
        raise ConfigError(f"objective: the label-efficiency study trains classifiers, not {settings.objective!r}")
    if repeats < 1:
        raise ConfigError(f"repeats: must be a positive integer, not {repeats!r}")
    probe = PreparedDataset(list(shards), None, ("label",))
    keys = model_input_keys(build_model(complete_model_config(dict(settings.model), probe.meta, 2, shards[0])))
    arrays = [a for a in [*keys, "label", "weight", "jet_pt"] if a in probe.meta["arrays"]]
    full_train = PreparedDataset(list(shards), "train", arrays)
    val_set = PreparedDataset(list(shards), "validation", arrays)
    test_set = PreparedDataset(list(shards), "test", arrays)
    test_label = test_set.numpy("label")
    test_weight = test_set.numpy("weight") if "weight" in arrays else None
    if settings.reweight != "none":
        if "jet_pt" not in arrays:
            raise ConfigError("reweight: the shards have no 'jet_pt' array to weight the test AUCs with")
        test_weight = pt_flat_weights(test_set.numpy("jet_pt"), test_label, test_weight)
    results: dict[str, dict[int, list[float]]] = {"random": {}, "pretrained": {}}
    n_validation: dict[int, int] = {}
    for size in sizes:
        subset = size is not None and size < len(full_train)
        for draw in range(repeats if subset else 1):
            seed = settings.seed + draw
            config = complete_model_config({**settings.model, "seed": seed}, probe.meta, 2, shards[0])
            drawn = dataclasses.replace(settings, model=dict(config), seed=seed, max_train_entries=size)
            # Both initialisations of a draw see the same jets, for training and for validation.
            train_set = select_training_entries(full_train, drawn)
            n_labelled = len(train_set)
            val = matched_validation(val_set, n_labelled, seed) if subset else val_set
            n_validation[n_labelled] = len(val)
            repeated = repeat_to_steps(train_set, drawn.batch_size, drawn.epochs, min_steps)
            for init in ("random", "pretrained"):
                run = dataclasses.replace(drawn, init_body_from=autoencoder_path if init == "pretrained" else None)
                model = build_model(config)
                if run.init_body_from:
                    init_body_from(model, run.init_body_from)
                result = train(model, repeated, val, run)
                scores = predict(result.model, test_set, objective=result.objective, device=result.device,
                                 batch_size=run.eval_batch_size)["score"]
                auc = float(binary_metrics(scores, test_label, test_weight)["auc"])
                results[init].setdefault(n_labelled, []).append(auc)
    return results, n_validation


def summary_entry(results: dict[str, dict[int, list[float]]], name: str = "pretrained_cnn",
                  n_validation: dict[int, int] | None = None) -> dict:
    """A metrics JSON for ``hepdl summary``: ``jets.<name>.auc`` (pre-trained, largest size) and per-size AUCs.

    Per size: the mean over draws (``auc_<init>_<n>``), their standard deviation
    (``auc_<init>_<n>_std``), and the gain of pre-training at the smallest size with its
    standard error (draw by draw: both inits of one draw see the same jets).
    """
    largest = max(results["pretrained"])
    smallest = min(results["pretrained"])
    gains = np.subtract(results["pretrained"][smallest], results["random"][smallest])
    out = {"task": "jets", "model": name, "auc": float(np.mean(results["pretrained"][largest])),
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
