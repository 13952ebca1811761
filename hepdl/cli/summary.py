"""``hepdl summary RESULT_JSON... -o results/summary.json``: collect metrics as {task: {model: {metric: value}}}."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="collect per-model metrics JSONs into one {task: {model: {metric: value}}} file",
    )
    p.add_argument("results", nargs="+", help="metrics JSONs, each with 'task' and 'model' keys")
    p.add_argument("-o", "--output", required=True, help="summary JSON to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hepdl.evaluate.results import gather_summary
    from hepdl.result_files import read_json, write_json

    summary = gather_summary((path, read_json(path)) for path in args.results)
    write_json(args.output, summary)
    n = sum(len(models) for models in summary.values())
    print(f"hepdl summary: {n} models in {len(summary)} tasks -> {args.output}")
    return 0
