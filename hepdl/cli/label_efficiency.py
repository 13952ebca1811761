"""``hepdl label-efficiency``: test AUC vs labelled training jets, CNN body random vs pre-trained.

Writes ``OUTPUT/label_efficiency.json`` (the shards' task, model ``<name>`` (its summary key):
``auc`` of the pre-trained CNN on the largest size, ``auc_random_init``, ``auc_<init>_<n>`` per size,
the whole table), ``OUTPUT/label_efficiency.png``, and each training run in ``RUNS/<init>_<n>_<draw>/``
(``--runs``, default ``OUTPUT/runs``).
"""

from __future__ import annotations

import argparse
import os
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label-efficiency",
        help="CNN test AUC vs number of labelled jets, with and without autoencoder pre-training",
        description="Trains the CNN of --settings on seeded subsets of the train split (max_train_entries), "
        "once from random weights and once with the body initialised from --ae-model's encoder.",
    )
    p.add_argument("--shards", nargs="+", required=True, help="prepared shard directories")
    p.add_argument("--settings", required=True, help="training settings of the CNN (objective classify)")
    p.add_argument("--ae-model", required=True, help="jet_image_autoencoder model file (its encoder matches the CNN body)")
    p.add_argument("--sizes", nargs="+", default=["200", "1000", "all"], help="training-set sizes, or 'all'")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--name", default="pretrained_cnn", help="model name in the metrics JSON (summary entry)")
    p.add_argument("--runs", help="directory of the training runs (default: OUTPUT/runs)")
    p.add_argument("--min-steps", type=int, default=0,
                   help="repeat a subset within each epoch until the run takes this many optimiser steps (default 0: off)")
    p.add_argument("--repeats", type=int, default=1,
                   help="draws of each subset size (seeds seed, seed + 1, ...); the whole train split once (default 1)")
    p.add_argument("--seed", type=int, help="overrides settings' seed")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from hepdl.autoencode.label_efficiency import parse_sizes, run_label_efficiency, summary_entry
    from hepdl.evaluate.autoencoder_plots import plot_label_efficiency
    from hepdl.represent.prepared import find_shards, load_meta
    from hepdl.result_files import write_json
    from hepdl.train import load_settings

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = load_settings(args.settings, {"seed": args.seed} if args.seed is not None else None)
    sizes = parse_sizes(args.sizes)
    runs = args.runs or os.path.join(args.output, "runs")
    results, n_validation = run_label_efficiency(args.shards, settings, args.ae_model, sizes, runs,
                                                 min_steps=args.min_steps, repeats=args.repeats)
    os.makedirs(args.output, exist_ok=True)
    task = load_meta(find_shards(args.shards)[0])["task"]
    entry = summary_entry(results, task, args.name, n_validation)
    write_json(os.path.join(args.output, "label_efficiency.json"), entry)
    plot_label_efficiency(results, path=os.path.join(args.output, "label_efficiency.png"))
    for init, points in results.items():
        table = ", ".join(f"{n}: {sum(v) / len(v):.4f}" for n, v in sorted(points.items()))
        print(f"hepdl label-efficiency: {init} init: mean test AUC by training jets {{{table}}}", file=sys.stderr)
    return 0
