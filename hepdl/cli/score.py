"""``hepdl score``: apply a trained model to ROOT files and write the scores as friend trees.

One friend file per input file, ``OUT/<input stem>.scores.root`` with tree ``scores``
(``--friend-tree``), one entry per input entry in the same order, so in ROOT::

    events->AddFriend("scores", "OUT/ntuple.scores.root");
    events->Draw("jet_mass", "scores.score > 0.8");

Binary models write one branch ``score`` (P(signal)); multi-class models one branch per
class (``score_numu_cc``, ``score_nue_cc``, ...); ``--branch-prefix`` renames them.
Each output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score ROOT files with a trained model; one friend tree per input file",
        description="Rebuild the model's inputs from each ROOT file with the representation stored in the model "
        "file, score every entry, and write OUT/<input stem>.scores.root (entry-aligned friend tree).",
    )
    p.add_argument("model", help="model file (model.pt written by hepdl train)")
    p.add_argument("files", nargs="+", help="ROOT files (glob patterns allowed)")
    p.add_argument("-o", "--output", required=True, help="output directory for the friend files")
    p.add_argument("--tree", help="input tree name (default: the tree the model was trained on, else 'events')")
    p.add_argument("--fields", help='JSON {logical: branch} for files whose branch names differ, '
                                    'e.g. \'{"calo_e": "tower_e"}\' (or a path to a JSON file)')
    p.add_argument("--branch-prefix", default="score", help="score branch name (prefix_<class> if multi-class)")
    p.add_argument("--friend-tree", default="scores", help="tree name in the friend files (default: scores)")
    p.add_argument("--suffix", default=".scores.root", help="friend file name suffix (default: .scores.root)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--step-size", default="50 MB", help="entries or size per chunk read (default: 50 MB)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=run)


def parse_fields(text: str | None) -> dict[str, str] | None:
    """``--fields``: inline JSON or a JSON file, mapping logical names to branches."""
    from hepdl.errors import ConfigError

    if not text:
        return None
    source = "--fields"
    if os.path.isfile(text):
        source = text
        with open(text) as f:
            text = f.read()
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise ConfigError(f"{source}: must be a JSON object {{logical field: branch name}}")
    return fields


def parse_step_size(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


def run(args: argparse.Namespace) -> int:
    import torch

    from hepdl.errors import InputError
    from hepdl.io import expand_paths
    from hepdl.scoring import friend_path, load_model, score_file

    if args.threads:
        torch.set_num_threads(args.threads)
    fields = parse_fields(args.fields)
    files = expand_paths(args.files)
    outputs = [friend_path(f, args.output, args.suffix) for f in files]
    seen: dict[str, str] = {}
    for f, out in zip(files, outputs, strict=True):
        if out in seen:
            raise InputError(f"{f} and {seen[out]} would both be scored into {out}; score them into separate directories")
        if os.path.abspath(out) == os.path.abspath(f):
            raise InputError(f"{f}: the friend file would overwrite its input; choose another --output or --suffix")
        seen[out] = f
    model = load_model(args.model, device=args.device)
    progress = sys.stderr.isatty()
    for f, out in zip(files, outputs, strict=True):
        n = score_file(model, f, out, tree=args.tree, fields=fields, friend_tree=args.friend_tree,
                       branch_prefix=args.branch_prefix, step_size=parse_step_size(args.step_size),
                       batch_size=args.batch_size, progress=progress)
        print(f"hepdl score: {f}: {n} entries -> {out} (tree {args.friend_tree!r}, branches "
              f"{', '.join(model.branch_names(args.branch_prefix))})", file=sys.stderr)
    return 0
