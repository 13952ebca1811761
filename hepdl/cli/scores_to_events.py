"""``hepdl scores-to-events``: per-jet scores back to the events, a friend tree aligned with the collection.

    hepdl score model.pt fatjets.root -o scores/           # per-jet friend of the jets file
    hepdl scores-to-events --jets-file fatjets.root --scores scores/fatjets.scores.root \\
        --events nano.root --tree Events --collection FatJet --output nano.scores.root

The output has one entry per event of ``--events`` and a jagged branch per score,
``FatJet_score``, one value per jet of the collection (``--default`` for jets not selected).
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scores-to-events",
        help="per-jet scores back to the event tree: a friend tree with one value per jet of the collection",
        description="Align the scores of a jets-from-events file with the jet collection of one of its inputs.",
    )
    p.add_argument("--jets-file", required=True, help="the jets-from-events output")
    p.add_argument("--scores", required=True, help="per-jet score friend of the jets file (hepdl score)")
    p.add_argument("--events", required=True, help="the event-level input file")
    p.add_argument("--file-index", type=int, default=0,
                   help="its position among the inputs of jets-from-events (default 0)")
    p.add_argument("--tree", default="Events", help="event tree (default: Events)")
    p.add_argument("--collection", required=True, help="the jet collection, e.g. FatJet")
    p.add_argument("--jets-tree", default="events", help="tree of the jets file (default: events)")
    p.add_argument("--scores-tree", default="scores", help="tree of the scores file (default: scores)")
    p.add_argument("--branches", nargs="+", help="score branches (default: all)")
    p.add_argument("--default", type=float, default=-1.0, help="value for jets without a score (default -1)")
    p.add_argument("--output", required=True, help="friend file to write (tree --output-tree)")
    p.add_argument("--output-tree", default="scores", help="tree name (default: scores)")
    p.add_argument("--step-size", default="50 MB", help="entries or size per chunk read (default: 50 MB)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hepdl.io.event_scores import scores_to_events

    summary = scores_to_events(
        args.jets_file, args.scores, args.events, args.output,
        collection=args.collection, tree=args.tree, jets_tree=args.jets_tree, scores_tree=args.scores_tree,
        file_index=args.file_index, branches=args.branches, default=args.default,
        output_tree=args.output_tree,
        step_size=int(args.step_size) if str(args.step_size).isdigit() else args.step_size,
    )
    print(json.dumps(summary, indent=1))
    return 0
