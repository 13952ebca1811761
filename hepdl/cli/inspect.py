"""``hepdl inspect FILE...``: list trees, entries and branches with their types; ``--check`` reads
every basket to find damage before a long job does."""

from __future__ import annotations

import argparse

from hepdl.io import describe_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="list the trees/RNTuples of ROOT files, their entries and branches; --check reads every basket",
        description="List what ROOT files hold, to write a field mapping for them. A file shorter than its "
        "header says (cut off in a copy) is an error. --check also reads every basket of the chosen "
        "branches and names the first one that fails to decompress or deserialise.",
    )
    p.add_argument("files", nargs="+", help="ROOT files (glob patterns allowed)")
    p.add_argument("--filter", dest="filter_name", help="show only branches whose name contains this")
    p.add_argument("--check", action="store_true",
                   help="read every basket of every branch (or of --branch), chunk by chunk")
    p.add_argument("--branch", dest="branches", action="append", metavar="NAME",
                   help="with --check: check this branch only (repeat for several); default: all")
    p.add_argument("--tree", help="with --check: check this tree/RNTuple only; default: all of each file")
    p.add_argument("--step-size", default="50 MB", help="with --check: entries or size per chunk (default: 50 MB)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hepdl.errors import ConfigError
    from hepdl.io import check_tree, expand_paths, tree_names

    if not args.check and (args.branches or args.tree):
        raise ConfigError("--branch and --tree choose what --check reads; add --check")
    step = int(args.step_size) if str(args.step_size).isdigit() else args.step_size
    for path in expand_paths(args.files):
        print(describe_file(path, filter_name=args.filter_name), flush=True)
        if args.check:
            for tree in [args.tree] if args.tree else tree_names(path):
                print(f"  {check_tree(path, tree, args.branches, step_size=step).summary()}", flush=True)
    return 0
