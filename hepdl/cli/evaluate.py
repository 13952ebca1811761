"""``hepdl evaluate binary|multiclass``: metrics JSONs and plots from classifiers' test scores.

binary writes ``OUTDIR/<name>.json`` per model (auc, rejection_at_30, rejection_at_50,
n_test; with ``--data-scores`` also the sim-vs-data agreement), ``OUTDIR/roc.png``
(all models) and ``OUTDIR/scores_<name>.png``.
multiclass writes ``OUTDIR/<name>.json`` (accuracy, per-class efficiency/purity,
nu_e CC efficiency/purity) and ``OUTDIR/confusion_<name>.png``.
Every metrics JSON carries "task" and "model", which ``hepdl summary`` collects.
"""

from __future__ import annotations

import argparse
import os
import re

import numpy as np

from hepdl.errors import ConfigError, InputError

_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics JSONs and plots from test scores")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    b = kinds.add_parser("binary", help="signal vs background (jet tagging)")
    _common(b, default_task="jets")
    b.add_argument(
        "--data-scores",
        nargs="+",
        default=None,
        help="each model's scores on the data sample (same order as --scores), for sim-vs-data agreement",
    )
    b.set_defaults(func=run_binary)

    m = kinds.add_parser("multiclass", help="several classes (neutrino flavour)")
    _common(m, default_task="neutrino")
    m.add_argument("--classes", nargs="+", required=True, help="class names in label order")
    m.add_argument(
        "--val-scores",
        nargs="+",
        default=None,
        help="each model's validation scores: the nu_e CC cut is chosen there and applied to test",
    )
    m.add_argument(
        "--nue-class", default="nue_cc", help="class whose selection is reported (default nue_cc)"
    )
    m.set_defaults(func=run_multiclass)


def _common(p: argparse.ArgumentParser, default_task: str) -> None:
    p.add_argument("--scores", nargs="+", required=True, help="test_scores.npz of each model")
    p.add_argument("--names", nargs="+", required=True, help="model names, one per scores file")
    p.add_argument(
        "--task", default=default_task, help=f"task name in the results (default {default_task})"
    )
    p.add_argument("--output", required=True, help="output directory")


def _check_names(args: argparse.Namespace, *others: str) -> None:
    if len(args.names) != len(args.scores):
        raise ConfigError(
            f"--names gives {len(args.names)} names for {len(args.scores)} --scores files"
        )
    if len(set(args.names)) != len(args.names):
        raise ConfigError(f"--names repeats a model name: {args.names}")
    for n in args.names:
        if not _NAME.match(n):
            raise ConfigError(f"--names: {n!r} must be letters, digits, _ . + - (it names files)")
    for opt in others:
        files = getattr(args, opt)
        if files is not None and len(files) != len(args.scores):
            raise ConfigError(
                f"--{opt.replace('_', '-')} gives {len(files)} files for {len(args.scores)} --scores"
            )


def _binary_score(arrays: dict, path: str) -> np.ndarray:
    s = np.asarray(arrays["score"])
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]  # two-class softmax: the signal column
    if s.ndim != 1:
        raise InputError(f"{path}: binary evaluation needs score of shape (N,), got {s.shape}")
    return s


def run_binary(args: argparse.Namespace) -> int:
    from hepdl.evaluate import metrics, plots
    from hepdl.evaluate.results import load_scores, write_json

    _check_names(args, "data_scores")
    os.makedirs(args.output, exist_ok=True)
    curves = {}
    for i, (name, path) in enumerate(zip(args.names, args.scores, strict=True)):
        arrays = load_scores(path)
        score, label, weight = _binary_score(arrays, path), arrays["label"], arrays["weight"]
        try:
            result = metrics.binary_metrics(score, label, weight)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
        data = None
        if args.data_scores is not None:
            dpath = args.data_scores[i]
            data = load_scores(dpath)
            result |= _sim_vs_data(metrics, score, label, weight, data, dpath)
        write_json(
            os.path.join(args.output, f"{name}.json"), {"task": args.task, "model": name, **result}
        )
        curves[name] = (score, label, weight)
        plots.plot_scores(
            score,
            label,
            weight,
            name=name,
            data_score=None if data is None else _binary_score(data, args.data_scores[i]),
            data_weight=None if data is None else data["weight"],
            path=os.path.join(args.output, f"scores_{name}.png"),
        )
        print(
            f"hepdl evaluate: {args.task}.{name}: AUC {result['auc']:.4f}, "
            f"rejection at 50% {result['rejection_at_50']:.1f}"
        )
    plots.plot_roc(curves, title=args.task, path=os.path.join(args.output, "roc.png"))
    return 0


def _sim_vs_data(metrics, score, label, weight, data: dict, path: str) -> dict:
    """Agreement of the score on sim and on data; data labels, when present, give a data AUC too."""
    d_score, d_label, d_weight = _binary_score(data, path), data["label"], data["weight"]
    out = {
        f"{k}_sim_data": v
        for k, v in metrics.score_agreement(score, d_score, weight, d_weight).items()
    }
    labelled = np.isin(d_label, (0, 1)).all() and len(np.unique(d_label)) == 2
    # cut at 50 % signal efficiency on sim; measured on data signal when data is labelled
    # (a tag-and-probe-like check), otherwise on the whole data sample against the whole sim one
    if labelled:
        wp = metrics.working_point_stability(
            score, label, d_score[d_label == 1], other_weight=d_weight[d_label == 1]
        )
        out["data_auc"] = metrics.auc(d_score, d_label, d_weight)
        out["wp50_data_efficiency"] = wp["efficiency"]
        out["wp50_efficiency_shift"] = wp["efficiency_shift"]
    else:
        wp = metrics.working_point_stability(score, label, d_score, other_weight=d_weight)
        sim_all = metrics.efficiency_at_cut(score, wp["cut"], weight)
        out["wp50_data_efficiency"] = wp["efficiency"]
        out["wp50_efficiency_shift"] = abs(wp["efficiency"] - sim_all)
    return out


def run_multiclass(args: argparse.Namespace) -> int:
    from hepdl.evaluate import metrics, plots
    from hepdl.evaluate.results import load_scores, write_json

    _check_names(args, "val_scores")
    if args.nue_class not in args.classes:
        raise ConfigError(f"--nue-class {args.nue_class!r} is not among --classes {args.classes}")
    nue = args.classes.index(args.nue_class)
    os.makedirs(args.output, exist_ok=True)
    for i, (name, path) in enumerate(zip(args.names, args.scores, strict=True)):
        arrays = load_scores(path)
        probs, label, weight = arrays["score"], arrays["label"], arrays["weight"]
        if probs.ndim != 2 or probs.shape[1] != len(args.classes):
            raise InputError(
                f"{path}: score has shape {probs.shape}; expected (N, {len(args.classes)}) for "
                f"classes {args.classes}"
            )
        cut = None
        if args.val_scores is not None:
            val = load_scores(args.val_scores[i])
            try:
                cut = metrics.best_selection_cut(
                    val["score"], val["label"], class_index=nue, weight=val["weight"]
                )["cut"]
            except InputError as err:
                raise InputError(f"{args.val_scores[i]}: {err}") from None
        try:
            result = metrics.multiclass_metrics(
                probs, label, args.classes, weight, nue, nue_cut=cut
            )
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
        result["nue_cc_cut_from"] = "validation" if cut is not None else "test"
        write_json(
            os.path.join(args.output, f"{name}.json"), {"task": args.task, "model": name, **result}
        )
        plots.plot_confusion(
            probs,
            label,
            args.classes,
            weight,
            name=name,
            path=os.path.join(args.output, f"confusion_{name}.png"),
        )
        print(
            f"hepdl evaluate: {args.task}.{name}: accuracy {result['accuracy']:.3f}, "
            f"{args.nue_class} efficiency {result['nue_cc_efficiency']:.3f} "
            f"purity {result['nue_cc_purity']:.3f}"
        )
    return 0
