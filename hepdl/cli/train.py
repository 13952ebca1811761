"""``hepdl train``: train a classifier on prepared shards with the hepdl training engine.

Outputs in ``--output`` (each written atomically): ``model.pt`` (the model file: best
epoch's weights, architecture, representation spec, provenance), ``checkpoint.pt``
(every epoch; ``--resume`` continues from it), ``metrics.csv``, ``training_curve.png``,
``test_scores.npz`` and ``val_scores.npz`` (probabilities, label, weight, jet_pt/jet_mass/
nu_energy where present, in dataset order), and ``train_info.json``.

Exit status: 0 done; 2 bad input or settings; 75 (EX_TEMPFAIL) stopped by SIGTERM after
writing a checkpoint — rerun with ``--resume``. Multi-GPU: ``torchrun --nproc_per_node=N
-m hepdl.cli train ...`` (only rank 0 writes).
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
from typing import Any

TRAIN_ARRAYS = ("label", "weight")
PASSTHROUGH = ("jet_pt", "jet_mass", "nu_energy")
CLASSES = {
    "jets": ["background", "signal"],
    "neutrino": ["numu_cc", "nue_cc", "nc", "nutau_cc"],
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a CNN/MLP classifier on prepared shards (checkpoint, resume, multi-GPU via torchrun)",
        description="Train on the train split with early stopping on the validation split; score the "
        "validation and test splits. Exit status 75 after SIGTERM (checkpoint written; rerun with --resume).",
    )
    p.add_argument("--shards", nargs="+", required=True,
                   help="prepared shard directories (or directories holding shard directories)")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--settings", help="training settings (keys of hepdl.train.TrainSettings): a JSON/YAML file, or inline JSON")
    p.add_argument("--model", help="model name (jet_cnn, jet_mlp, ...), overriding settings' model.name")
    p.add_argument("--seed", type=int, help="overrides settings' seed")
    p.add_argument("--epochs", type=int, help="overrides settings' epochs")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps (overrides settings' device)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--data-shards", nargs="+", help="objective adapt: prepared shards of the data sample "
                   "(its train split joins training unlabelled: its labels are never read)")
    p.set_defaults(func=run)


def shard_dirs(paths: list[str]) -> list[str]:
    """Shard directories in the given order; a directory without meta.json contributes its sub-shards."""
    from hepdl.errors import InputError

    out: list[str] = []
    for path in paths:
        if os.path.isfile(os.path.join(path, "meta.json")):
            out.append(path)
            continue
        subs = sorted(os.path.dirname(m) for m in glob.glob(os.path.join(path, "*", "meta.json")))
        if not subs:
            raise InputError(f"{path}: not a prepared shard directory (no meta.json) and holds none")
        out += subs
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from hepdl import __version__
    from hepdl.errors import HepdlError
    from hepdl.evaluate.results import save_scores, write_json
    from hepdl.models import model_input_keys, save_model
    from hepdl.represent.torch_dataset import PreparedDataset
    from hepdl.train import PREEMPTED_EXIT_CODE, TrainSettings, load_settings, predict, train
    from hepdl.train.distributed import world
    from hepdl.train.objectives import objective_class

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    for key in ("seed", "epochs", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    settings = load_settings(args.settings, overrides) if args.settings else TrainSettings.from_dict(overrides)
    if args.model:
        settings.model = {**settings.model, "name": args.model} if settings.model.get("name") == args.model else {"name": args.model}

    shards = shard_dirs(args.shards)
    probe = PreparedDataset(shards, split=None, arrays=("label",))
    meta = probe.meta
    task = meta.get("task", "jets")
    classes = list(meta.get("spec", {}).get("classes") or CLASSES.get(task, ["background", "signal"]))
    if task == "neutrino":  # nu_tau CC is optional: as many outputs as the labels have classes
        labels = probe.numpy("label")
        classes = classes[: max(3, int(labels.max()) + 1)]
    objective = objective_class(settings.objective)
    model = objective.build_model(settings, meta, len(classes), shards[0])
    model_config = model.config
    settings.model = model_config
    if settings.init_body_from:  # unsupervised pre-training: the CNN body starts from an autoencoder's encoder
        from hepdl.models.autoencoders import init_body_from

        init_body_from(model, settings.init_body_from)
    input_keys = model_input_keys(model)
    wanted = [*input_keys, *TRAIN_ARRAYS]
    if settings.reweight != "none":
        wanted += ["jet_pt", "jet_eta"]
    wanted += objective.extra_arrays  # e.g. decorrelate's adversary predicts the background jet mass
    have = set(meta["arrays"])
    missing = [a for a in wanted if a not in have and a != "weight"]
    if missing:
        raise HepdlError(f"{shards[0]}: prepared dataset has no {missing[0]!r} array (has {sorted(have)})")
    wanted = [a for a in dict.fromkeys(wanted) if a in have]
    from hepdl.train.selection import select_training_entries

    train_set = select_training_entries(PreparedDataset(shards, "train", wanted), settings)
    data_shards = shard_dirs(args.data_shards) if args.data_shards else None
    train_set = objective.training_set(train_set, data_shards, wanted)  # adapt: plus the data's train split
    val_set = PreparedDataset(shards, "validation", wanted)
    if len(train_set) == 0 or len(val_set) == 0:
        raise HepdlError(f"{shards[0]}: the train or validation split is empty ({len(train_set)}, {len(val_set)} entries)")

    result = train(model, train_set, val_set, settings, out_dir=args.output, resume=args.resume)
    if result.preempted:
        return PREEMPTED_EXIT_CODE
    if world()[0] != 0 or int(os.environ.get("RANK", 0)) != 0:
        return 0  # under torchrun only rank 0 scores and writes

    score_arrays = [*input_keys, *TRAIN_ARRAYS, *PASSTHROUGH]
    score_arrays = [a for a in dict.fromkeys(score_arrays) if a in have]
    scores: dict[str, dict[str, np.ndarray]] = {}
    for split, fname in (("validation", "val_scores.npz"), ("test", "test_scores.npz")):
        data = PreparedDataset(shards, split, score_arrays)
        out = predict(result.model, data, objective=result.objective, device=result.device,
                      batch_size=settings.eval_batch_size, keys=[a for a in score_arrays if a not in input_keys])
        if "weight" not in out:
            out["weight"] = np.ones(len(out["score"]), np.float32)
        scores[split] = out
        save_scores(os.path.join(args.output, fname), out)

    test_metrics = result.objective.metrics(scores["test"], scores["test"]) if len(scores["test"]["score"]) else {}
    best_row = next((r for r in result.history if r["epoch"] == result.best_epoch), {})
    metrics = {**{k: v for k, v in best_row.items() if k.startswith("val_")},
               **{f"test_{k}": v for k, v in test_metrics.items()}}
    provenance = {
        "settings": settings.to_dict(), "seed": settings.seed, "shards": [os.path.abspath(s) for s in shards],
        "sources": [PreparedDataset([s], None, ("label",)).meta.get("source", {}) for s in shards],
        "split": meta.get("split"), "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "hepdl_version": __version__, "torch_version": torch.__version__, "device": result.device,
    }
    if args.data_shards:
        provenance["data_shards"] = [os.path.abspath(s) for s in shard_dirs(args.data_shards)]
    save_model(os.path.join(args.output, "model.pt"), result.model, architecture=model_config,
               representation={"spec": meta.get("spec", {}), "fields": meta.get("fields", {}),
                               "feature_names": meta.get("feature_names", {})},
               inputs=input_keys, task=task, classes=classes, provenance=provenance, metrics=metrics)
    info = {
        "settings": settings.to_dict(), "seed": settings.seed, "device": result.device, "precision": result.precision,
        "world_size": result.info.get("world_size", 1), "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss, "stopped_early": result.stopped_early,
        "samples_per_second": result.samples_per_second, "wall_seconds": result.wall_seconds,
        "n_train": len(train_set), "n_validation": len(val_set), "n_test": len(scores["test"]["score"]),
        "metrics": metrics, "host": platform.node(), "python": sys.version.split()[0],
        "torch_version": torch.__version__, "hepdl_version": __version__,
    }
    write_json(os.path.join(args.output, "train_info.json"), info)
    summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    print(f"hepdl train: best epoch {result.best_epoch}/{result.epochs_run}: {summary}; "
          f"{result.samples_per_second:.0f} samples/s; wrote {args.output}/model.pt", file=sys.stderr)
    return 0
