"""``hepdl train``: one :func:`hepdl.train_model` run on prepared shards.

Outputs in ``--output`` (each written atomically): ``model.pt`` (the model file: best
epoch's weights, architecture, representation spec, provenance), ``checkpoint.pt``
(every epoch; ``--resume`` continues from it), ``metrics.csv``, ``training_curve.png``,
``test_scores.npz`` and ``val_scores.npz`` (probabilities, label, weight and the task's
score columns, in dataset order), and ``train_info.json``.

Exit status: 0 done; 2 bad input or settings; 75 (EX_TEMPFAIL) stopped by SIGTERM or Ctrl-C
after writing a checkpoint — rerun with ``--resume`` (or ``--resume-if-unchanged``, which the
workflow uses: it continues only a checkpoint of the same settings and inputs). ``--log-file FILE``
sends everything to FILE and keeps one line per epoch, named by ``--name``, on stderr. Multi-GPU: ``torchrun --nproc_per_node=N
-m hepdl.cli train ...`` (only rank 0 writes).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, TextIO

#: the lines a workflow's console shows of a training (the rest goes to the log file only)
CONSOLE_LINES = re.compile(r"^(epoch \d+/\d+:|hepdl train:)")


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
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    resume.add_argument("--resume-if-unchanged", action="store_true",
                        help="continue from OUTPUT/checkpoint.pt if it belongs to a run with the same settings "
                        "and input files, else start from scratch (the workflow's training jobs)")
    p.add_argument("--log-file", dest="log", help="write everything the run prints to this file; stderr then gets only one line "
                   "per epoch and hepdl's own messages, prefixed with --name (the workflow's console)")
    p.add_argument("--name", default="train", help="the run's name on stderr with --log-file (default: train)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--data-shards", nargs="+", help="objective adapt: prepared shards of the data sample "
                   "(its train split joins training unlabelled: its labels are never read)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from hepdl.train import PREEMPTED_EXIT_CODE, TrainSettings, load_settings
    from hepdl.train.training_run import train_model

    if args.log:
        console_progress(args.log, args.name)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {key: getattr(args, key) for key in ("seed", "epochs", "device")
                                 if getattr(args, key) is not None}
    settings = load_settings(args.settings, overrides) if args.settings else TrainSettings.from_dict(overrides)
    if args.model:
        settings.model = {**settings.model, "name": args.model} if settings.model.get("name") == args.model else {"name": args.model}
    resume = "if_unchanged" if args.resume_if_unchanged else args.resume
    run = train_model(args.shards, settings, args.output, data_shards=args.data_shards, resume=resume)
    if run.result.preempted:
        return PREEMPTED_EXIT_CODE
    if run.model_file is not None:
        result = run.result
        summary = ", ".join(f"{k} {v:.4f}" for k, v in run.metrics.items() if isinstance(v, float))
        print(f"hepdl train: best epoch {result.best_epoch}/{result.epochs_run}: {summary}; "
              f"{result.samples_per_second:.0f} samples/s; wrote {run.model_file}", file=sys.stderr)
    return 0


class _ConsoleTee:
    """stderr of a run with ``--log-file``: everything to the log; the epoch lines and hepdl's own
    messages also to the console, prefixed with the run's name."""

    def __init__(self, log: TextIO, console: TextIO, name: str) -> None:
        self.log, self.console, self.name, self.pending = log, console, name, ""

    def write(self, text: str) -> int:
        self.log.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if CONSOLE_LINES.match(line):
                self.console.write(f"[{self.name}] {line}\n")
                self.console.flush()
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.log.fileno()


def console_progress(log_path: str, name: str) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so that C libraries' output
    and tracebacks land there too) to ``log_path``, and mirror the lines a console shows."""
    console = os.fdopen(os.dup(2), "w", buffering=1)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    log = os.fdopen(os.dup(2), "w", buffering=1)
    sys.stderr = _ConsoleTee(log, console, name)
