"""The ``hepdl`` command: one subcommand per pipeline stage.

Each stage module under :mod:`hepdl.cli` exposes ``add_parser(subparsers)``, which
registers its subcommand with a ``func(args) -> int``. Stage modules are imported
only when listed here, so ``hepdl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from hepdl.errors import HepdlError

# Order is the order of the pipeline; ``hepdl --help`` lists them so.
STAGES = ("generate", "inspect", "jets_from_events", "prepare", "train", "features", "label_efficiency", "bdt", "evaluate", "summary", "score", "scores_to_events", "export")


def build_parser() -> argparse.ArgumentParser:
    from hepdl import __version__

    parser = argparse.ArgumentParser(
        prog="hepdl",
        description="Deep learning for particle-physics analyses. Each subcommand is one pipeline stage.",
    )
    parser.add_argument("--version", action="version", version=f"hepdl {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name in STAGES:
        importlib.import_module(f"hepdl.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; a :class:`~hepdl.errors.HepdlError` prints as one line, exit status 2."""
    args = build_parser().parse_args(argv)
    from hepdl.cli.allocator import keep_freed_memory

    keep_freed_memory()
    # SIGTERM (a workflow stopping its jobs, a batch system's kill) unwinds like Ctrl-C, so that
    # temporary files are removed; hepdl train checkpoints on either (hepdl.train.engine)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except HepdlError as err:
        print(f"hepdl {args.stage}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        # The writers name their outputs (OutputError); an OSError that still gets here is the
        # system's (a full disk, a file that vanished): one line with the file it names.
        from hepdl.atomic import os_error_cause

        where = f"{err.filename}: " if err.filename is not None else ""
        print(f"hepdl {args.stage}: error: {where}{os_error_cause(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hepdl {args.stage}: interrupted", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
