"""``hepdl train``: one :func:`hepdl.train_model` run on prepared shards.

Outputs in ``--output`` (each written atomically): ``model.pt`` (the model file: best
epoch's weights, architecture, representation spec, provenance), ``checkpoint.pt``
(every epoch; ``--resume`` continues from it), ``metrics.csv``, ``training_curve.png``,
``test_scores.npz`` and ``val_scores.npz`` (probabilities, label, weight and the task's
score columns, in dataset order), and ``train_info.json``.

Exit status: 0 done; 2 bad input or settings; 75 (EX_TEMPFAIL) stopped by SIGTERM after
writing a checkpoint — rerun with ``--resume``. Multi-GPU: ``torchrun --nproc_per_node=N
-m hepdl.cli train ...`` (only rank 0 writes).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


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


def run(args: argparse.Namespace) -> int:
    import torch

    from hepdl.train import PREEMPTED_EXIT_CODE, TrainSettings, load_settings
    from hepdl.train.training_run import train_model

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {key: getattr(args, key) for key in ("seed", "epochs", "device")
                                 if getattr(args, key) is not None}
    settings = load_settings(args.settings, overrides) if args.settings else TrainSettings.from_dict(overrides)
    if args.model:
        settings.model = {**settings.model, "name": args.model} if settings.model.get("name") == args.model else {"name": args.model}
    run = train_model(args.shards, settings, args.output, data_shards=args.data_shards, resume=args.resume)
    if run.result.preempted:
        return PREEMPTED_EXIT_CODE
    if run.model_file is not None:
        result = run.result
        summary = ", ".join(f"{k} {v:.4f}" for k, v in run.metrics.items() if isinstance(v, float))
        print(f"hepdl train: best epoch {result.best_epoch}/{result.epochs_run}: {summary}; "
              f"{result.samples_per_second:.0f} samples/s; wrote {run.model_file}", file=sys.stderr)
    return 0
