"""``hepdl inspect FILE...``: list trees, entries and branches with their types."""

from __future__ import annotations

import argparse

from hepdl.io import describe_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="list the trees/RNTuples of ROOT files, their entries and branches",
        description="List what ROOT files hold, to write a field mapping for them.",
    )
    p.add_argument("files", nargs="+", help="ROOT files (glob patterns allowed)")
    p.add_argument("--filter", dest="filter_name", help="show only branches whose name contains this")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hepdl.io import expand_paths

    for path in expand_paths(args.files):
        print(describe_file(path, filter_name=args.filter_name))
    return 0
