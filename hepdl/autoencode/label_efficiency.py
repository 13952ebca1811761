"""Label-efficiency study: test AUC of a CNN versus the number of labelled training jets,
with the body initialised at random and from an autoencoder's encoder (unsupervised pre-training).

Every run goes through the one training engine in-process; the subsets are the
``max_train_entries`` seeded draws of :mod:`hepdl.train.selection`, so the random and the
pre-trained CNN of one size see exactly the same jets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hepdl.errors import ConfigError
from hepdl.train.settings import TrainSettings


def run_label_efficiency(
    shards: Sequence[str], settings: TrainSettings, autoencoder_path: str, sizes: Sequence[int | None],
    *, min_steps: int = 0,
) -> dict[str, dict[int, float]]:
    """``{"random": {n: auc}, "pretrained": {n: auc}}`` for each training-set size (None: all entries).

    ``min_steps``: a small training set gets more epochs, so that every run takes at least this many
    optimiser steps (early stopping still applies); otherwise a 200-jet run would stop after a few
    dozen steps, and the comparison would measure the step count rather than the initialisation.
    """
    from hepdl.cli.train import complete_model_config, model_input_keys
    from hepdl.evaluate.metrics import binary_metrics
    from hepdl.models import build_model
    from hepdl.models.autoencoders import init_body_from
    from hepdl.represent.torch_dataset import PreparedDataset
    from hepdl.train import predict, train
    from hepdl.train.selection import select_training_entries

    if settings.objective != "classify":
        raise ConfigError(f"objective: the label-efficiency study trains classifiers, not {settings.objective!r}")
    probe = PreparedDataset(list(shards), None, ("label",))
    config = complete_model_config({**settings.model, "seed": settings.model.get("seed", settings.seed)},
                                   probe.meta, 2, shards[0])
    keys = model_input_keys(build_model(config))
    arrays = [*keys, "label", "weight"]
    arrays = [a for a in arrays if a in probe.meta["arrays"]]
    full_train = PreparedDataset(list(shards), "train", arrays)
    val_set = PreparedDataset(list(shards), "validation", arrays)
    test_set = PreparedDataset(list(shards), "test", arrays)
    test_label = test_set.numpy("label")
    test_weight = test_set.numpy("weight") if "weight" in arrays else None
    results: dict[str, dict[int, float]] = {"random": {}, "pretrained": {}}
    for size in sizes:
        for init in ("random", "pretrained"):
            run = dataclasses.replace(settings, model=dict(config), max_train_entries=size,
                                      init_body_from=autoencoder_path if init == "pretrained" else None)
            model = build_model(config)
            if run.init_body_from:
                init_body_from(model, run.init_body_from)
            train_set = select_training_entries(full_train, run)
            steps_per_epoch = max(len(train_set) // run.batch_size, 1)
            if run.epochs * steps_per_epoch < min_steps:
                run = dataclasses.replace(run, epochs=-(-min_steps // steps_per_epoch))
            result = train(model, train_set, val_set, run)
            scores = predict(result.model, test_set, objective=result.objective, device=result.device,
                             batch_size=run.eval_batch_size)["score"]
            results[init][len(train_set)] = float(binary_metrics(scores, test_label, test_weight)["auc"])
    return results


def summary_entry(results: dict[str, dict[int, float]], name: str = "pretrained_cnn") -> dict:
    """A metrics JSON for ``hepdl summary``: ``jets.<name>.auc`` (pre-trained, largest size) and per-size AUCs."""
    largest = max(results["pretrained"])
    smallest = min(results["pretrained"])
    out = {"task": "jets", "model": name, "auc": results["pretrained"][largest],
           "auc_random_init": results["random"][largest],
           "auc_gain_at_smallest": results["pretrained"][smallest] - results["random"][smallest]}
    for init, points in results.items():
        for n, value in sorted(points.items()):
            out[f"auc_{init}_{n}"] = value
    out["n_train_sizes"] = [int(n) for n in sorted(results["pretrained"])]
    out["label_efficiency"] = {init: {str(n): v for n, v in sorted(p.items())} for init, p in results.items()}
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
