"""``hepdl evaluate KIND``: metrics JSONs and plots from models' scores.

The metric family of a task (its declaration, :mod:`hepdl.tasks`) names the command:
``binary`` writes ``OUTDIR/<name>.json`` per model (auc, rejection_at_30, rejection_at_50,
n_test; with ``--data-scores`` also the sim-vs-data agreement), ``OUTDIR/scores_<name>.png`` and
``OUTDIR/roc.png`` (all models; ``--no-roc``: none). ``multiclass`` writes ``OUTDIR/<name>.json``
(accuracy, per-class efficiency/purity, the signal class's selection: ``nue_cc_efficiency`` ...)
and ``OUTDIR/confusion_<name>.png``. Every metrics JSON carries "task" and "model", which
``hepdl summary`` collects.
``domain`` compares models on simulation and data (``<model>_domain_auc``, ``_ks``, ``_eff_shift``
..., see :mod:`hepdl.evaluate.domain`) and/or tells sim from data on tabular arrays
(``<array>_domain_auc``), into ``OUTDIR/<name>.json``.
``plots`` draws the task-level figures the task declares (ROC, average images, event display);
``images`` (average jet images per class), ``display`` (event display) and ``curves`` (training
curves from a metrics CSV) write single plots.
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
    _common(b)
    b.add_argument(
        "--data-scores",
        nargs="+",
        default=None,
        help="each model's scores on the data sample (same order as --scores), for sim-vs-data agreement",
    )
    b.add_argument(
        "--reweight",
        default="none",
        choices=("none", "pt"),
        help="pt: weight background test jets to the signal's jet-pT spectrum (fitted on each test sample), "
        "so that no model scores by the samples' pT difference; auc_unweighted keeps the plain AUC",
    )
    b.add_argument("--no-roc", action="store_true", help="do not draw OUTDIR/roc.png")
    b.set_defaults(func=run_binary)

    m = kinds.add_parser("multiclass", help="several classes (neutrino flavour)")
    _common(m)
    m.add_argument("--classes", nargs="+", help="class names in label order (default: the task's)")
    m.add_argument(
        "--val-scores",
        nargs="+",
        default=None,
        help="each model's validation scores: the signal selection's cut is chosen there and applied to test",
    )
    m.add_argument("--signal-class", help="class whose selection is reported (default: the task's signal, e.g. nue_cc)")
    m.set_defaults(func=run_multiclass)

    im = kinds.add_parser("images", help="average jet image per class from prepared shards")
    im.add_argument("--shards", nargs="+", required=True, help="prepared-dataset shard directories")
    im.add_argument("--split", default="test", choices=("train", "validation", "test"))
    im.add_argument("--classes", nargs="+", help="names of labels 0, 1, ... (default: the task's plot labels)")
    im.add_argument("--channel", default=None, help="image channel name (default: the first)")
    im.add_argument(
        "--output", required=True, help="output directory (writes average_images_<channel>.png)"
    )
    im.set_defaults(func=run_images)

    ev = kinds.add_parser("display", help="neutrino event display: both views of a few test events")
    ev.add_argument("--shards", nargs="+", required=True, help="prepared-dataset shard directories")
    ev.add_argument(
        "--scores", required=True, help="test_scores.npz of the model (test split, dataset order)"
    )
    ev.add_argument("--classes", nargs="+", help="class names in label order (default: the task's)")
    ev.add_argument(
        "--n-events", type=int, default=4, help="events to show: the first of each class, then more"
    )
    ev.add_argument("--output", required=True, help="output directory (writes event_display.png)")
    ev.set_defaults(func=run_display)

    dm = kinds.add_parser(
        "domain", help="sim-to-data transfer: models on both samples, and/or sim-vs-data AUC of tabular arrays"
    )
    dm.add_argument("--sim-shards", nargs="+", required=True, help="prepared shards of simulation")
    dm.add_argument("--data-shards", nargs="+", required=True, help="prepared shards of data")
    dm.add_argument("--models", nargs="+", default=[], metavar="NAME=MODEL.pt",
                    help="model files by name, e.g. cnn=run/cnn/model.pt dann=run/dann/model.pt: each is scored on both "
                    "samples (domain AUC of its features, KS/Wasserstein of its scores, working-point shift; data "
                    "labels only to evaluate) and plotted (OUTDIR/scores_<name>.png, OUTDIR/domain_scores.png)")
    dm.add_argument("--array", nargs="+", default=[], help="(N, F) tabular arrays to tell sim from data on, e.g. expert")
    dm.add_argument("--features", nargs="+", default=None, help="with --array: feature names (default: all)")
    dm.add_argument("--split", default="test", choices=("train", "validation", "test"))
    dm.add_argument("--classifier", "--domain-classifier", dest="classifier", default="logistic",
                    choices=("logistic", "gbdt"), help="the sim-vs-data classifier")
    dm.add_argument("--seed", type=int, required=True, help="seed of the domain classifier's halves")
    dm.add_argument("--signal-efficiency", type=float, default=0.5, help="working point on simulated signal")
    dm.add_argument("--signal-class", type=int, default=None,
                    help="class whose probability is the score (default: the task's signal class)")
    dm.add_argument("--reweight", default="none", choices=("none", "pt"),
                    help="pt: sim and data AUCs with the background weighted to the signal's jet pT")
    dm.add_argument("--device", default="cpu")
    dm.add_argument("--batch-size", type=int, default=512)
    dm.add_argument("--name", default="domain", help="model name in the results (default: domain)")
    dm.add_argument("--output", required=True, help="output directory (writes <name>.json)")
    dm.set_defaults(func=run_domain)

    pl = kinds.add_parser("plots", help="the task-level figures the task declares (ROC, average images, ...)")
    pl.add_argument("--task", required=True, help="the task")
    pl.add_argument("--shards", nargs="+", required=True, help="prepared shards (the test split is shown)")
    pl.add_argument("--scores", nargs="+", required=True, help="test_scores.npz of each model")
    pl.add_argument("--names", nargs="+", required=True, help="model names, one per scores file")
    pl.add_argument("--reweight", default="none", choices=("none", "pt"), help="as for binary")
    pl.add_argument("--output", required=True, help="output directory")
    pl.set_defaults(func=run_plots)

    cu = kinds.add_parser("curves", help="training curves from a training metrics CSV")
    cu.add_argument("--metrics", required=True, help="metrics.csv written by hepdl train")
    cu.add_argument("--output", required=True, help="PNG to write")
    cu.set_defaults(func=run_curves)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", nargs="+", required=True, help="test_scores.npz of each model")
    p.add_argument("--names", nargs="+", required=True, help="model names, one per scores file")
    p.add_argument("--task", required=True, help="the task (its name goes into the results)")
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


def run_binary(args: argparse.Namespace) -> int:
    from hepdl.evaluate import metrics, plots
    from hepdl.evaluate.task_plots import binary_score, evaluation_weights, roc_title
    from hepdl.result_files import load_scores, write_json

    _check_names(args, "data_scores")
    os.makedirs(args.output, exist_ok=True)
    signal, background = _score_labels(args.task)
    curves = {}
    for i, (name, path) in enumerate(zip(args.names, args.scores, strict=True)):
        arrays = load_scores(path)
        score, label, weight = binary_score(arrays, path), arrays["label"], arrays["weight"]
        plain = weight
        if args.reweight == "pt":
            weight = evaluation_weights(arrays, args.reweight, path)
        try:
            result = metrics.binary_metrics(score, label, weight)
            if args.reweight != "none":
                result["auc_unweighted"] = metrics.auc(score, label, plain)
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
            data_score=None if data is None else binary_score(data, args.data_scores[i]),
            data_weight=None if data is None else data["weight"],
            signal=signal,
            background=background,
            path=os.path.join(args.output, f"scores_{name}.png"),
        )
        print(
            f"hepdl evaluate: {args.task}.{name}: AUC {result['auc']:.4f}, "
            f"rejection at 50% {result['rejection_at_50']:.1f}"
        )
    if not args.no_roc:
        plots.plot_roc(curves, title=roc_title(args.task, args.reweight), path=os.path.join(args.output, "roc.png"))
    return 0


def _score_labels(task_name: str) -> tuple[str, str]:
    """The signal and background names a binary score's plots show: the declared task's, if any."""
    from hepdl.tasks import TASKS, Classes

    task = TASKS.get(task_name)
    if task is None or not isinstance(task.targets, Classes):
        return "signal", "background"
    return task.targets.score_labels()


def _sim_vs_data(metrics, score, label, weight, data: dict, path: str) -> dict:
    """Agreement of the score on sim and on data; data labels, when present, give a data AUC too."""
    from hepdl.evaluate.task_plots import binary_score

    d_score, d_label, d_weight = binary_score(data, path), data["label"], data["weight"]
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
    from hepdl.result_files import load_scores, write_json
    from hepdl.tasks import get_task

    _check_names(args, "val_scores")
    targets = get_task(args.task).targets
    os.makedirs(args.output, exist_ok=True)
    for i, (name, path) in enumerate(zip(args.names, args.scores, strict=True)):
        arrays = load_scores(path)
        probs, label, weight = arrays["score"], arrays["label"], arrays["weight"]
        classes = args.classes or targets.names_for(probs.shape[1] if probs.ndim == 2 else 0)
        if probs.ndim != 2 or probs.shape[1] != len(classes):
            raise InputError(
                f"{path}: score has shape {probs.shape}; expected (N, {len(classes)}) for classes {classes}"
            )
        signal_name = args.signal_class or targets.signal
        if signal_name not in classes:
            raise ConfigError(f"--signal-class {signal_name!r} is not among the classes {classes}")
        signal = classes.index(signal_name)
        cut = None
        if args.val_scores is not None:
            val = load_scores(args.val_scores[i])
            try:
                cut = metrics.best_selection_cut(
                    val["score"], val["label"], class_index=signal, weight=val["weight"]
                )["cut"]
            except InputError as err:
                raise InputError(f"{args.val_scores[i]}: {err}") from None
        try:
            result = metrics.multiclass_metrics(probs, label, classes, weight, signal, signal_cut=cut)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
        result[f"{signal_name}_cut_from"] = "validation" if cut is not None else "test"
        write_json(
            os.path.join(args.output, f"{name}.json"), {"task": args.task, "model": name, **result}
        )
        plots.plot_confusion(
            probs,
            label,
            args.classes or targets.plot_labels(len(classes)),
            weight,
            name=name,
            path=os.path.join(args.output, f"confusion_{name}.png"),
        )
        print(
            f"hepdl evaluate: {args.task}.{name}: accuracy {result['accuracy']:.3f}, "
            f"{signal_name} efficiency {result[f'{signal_name}_efficiency']:.3f} "
            f"purity {result[f'{signal_name}_purity']:.3f}"
        )
    return 0


def run_images(args: argparse.Namespace) -> int:
    from hepdl.evaluate.task_plots import average_images
    from hepdl.represent.prepared import find_shards

    os.makedirs(args.output, exist_ok=True)
    shards = find_shards(args.shards)
    path = average_images(shards, args.output, split=args.split, channel=args.channel, classes=args.classes)
    print(f"hepdl evaluate: {path}")
    return 0


def run_display(args: argparse.Namespace) -> int:
    from hepdl.evaluate.task_plots import event_display
    from hepdl.represent.prepared import find_shards
    from hepdl.result_files import load_scores

    os.makedirs(args.output, exist_ok=True)
    path = event_display(find_shards(args.shards), load_scores(args.scores), os.path.join(args.output, "event_display.png"),
                         n_events=args.n_events, classes=args.classes, where=args.scores)
    print(f"hepdl evaluate: {path}")
    return 0


def run_plots(args: argparse.Namespace) -> int:
    from hepdl.evaluate.task_plots import TaskPlotInputs, draw_task_plots
    from hepdl.represent.prepared import find_shards
    from hepdl.result_files import load_scores
    from hepdl.tasks import get_task

    _check_names(args)
    inputs = TaskPlotInputs(task=get_task(args.task), shards=find_shards(args.shards), reweight=args.reweight,
                            scores={n: load_scores(p) for n, p in zip(args.names, args.scores, strict=True)})
    for path in draw_task_plots(inputs, args.output):
        print(f"hepdl evaluate: {path}")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from hepdl.evaluate import plots
    from hepdl.evaluate.results import read_metrics_csv

    path = plots.plot_training_curves(read_metrics_csv(args.metrics), path=args.output)
    print(f"hepdl evaluate: {path}")
    return 0


def _parse_models(items: list[str]) -> dict[str, str]:
    models: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not _NAME.match(name) or not path:
            raise ConfigError(f"--models: {item!r} is not NAME=PATH (NAME of letters, digits, _ . + -)")
        if name in models:
            raise ConfigError(f"--models: name {name!r} given twice")
        models[name] = path
    return models


def run_domain(args: argparse.Namespace) -> int:
    import sys

    from hepdl.bdt import select_features
    from hepdl.evaluate import metrics, plots
    from hepdl.evaluate.domain import compare_models
    from hepdl.represent import PreparedDataset
    from hepdl.represent.prepared import find_shards
    from hepdl.result_files import write_json
    from hepdl.tasks import get_task

    if not _NAME.match(args.name):
        raise ConfigError(f"--name {args.name!r} must be letters, digits, _ . + - (it names a file)")
    models = _parse_models(args.models)
    if not models and not args.array:
        raise ConfigError("evaluate domain: give --models (networks to compare) and/or --array (tabular features)")
    sim_shards, data_shards = find_shards(args.sim_shards), find_shards(args.data_shards)
    task = get_task(PreparedDataset(sim_shards, None, ()).meta["task"])
    signal_class = task.targets.signal_index if args.signal_class is None else args.signal_class
    os.makedirs(args.output, exist_ok=True)
    result: dict = {"task": task.name, "model": args.name, "split": args.split}
    lines = []
    if models:
        result["models"] = {n: os.path.abspath(p) for n, p in models.items()}
        compared, panels = compare_models(
            models, sim_shards, data_shards, split=args.split, seed=args.seed, signal_efficiency=args.signal_efficiency,
            signal_class=signal_class, domain_classifier=args.classifier, reweight=args.reweight, device=args.device,
            batch_size=args.batch_size)
        result.update(compared)
        signal, background = task.targets.score_labels(signal_class)
        for name, (s_score, s_label, d_score, m, s_weight, d_weight) in panels.items():
            plots.plot_scores(s_score, s_label, s_weight, name=name, data_score=d_score, data_weight=d_weight,
                              signal=signal, background=background,
                              path=os.path.join(args.output, f"scores_{name}.png"))
            lines.append(f"{name}: domain AUC {m['domain_auc']:.3f}, KS {m['ks']:.3f}"
                         + (f", data AUC {m['data_auc']:.3f}, eff shift {m['eff_shift']:.3f}" if "data_auc" in m else ""))
        plots.plot_domain_scores(panels, signal=signal, background=background,
                                 path=os.path.join(args.output, "domain_scores.png"))
    for array in args.array:
        features = {}
        for which, shards in (("sim", sim_shards), ("data", data_shards)):
            ds = PreparedDataset(shards, args.split, arrays=())
            names = ds.meta.get("feature_names", {}).get(array)
            if names is None or not all(array in m["arrays"] for m in ds.metas):
                raise InputError(f"{shards[0]}: no {array!r} array with feature names")
            features[which], used = select_features(ds.numpy(array), names, args.features)
        value = metrics.domain_classifier_auc(features["sim"], features["data"], seed=args.seed, model=args.classifier)
        result |= {f"{array}_domain_auc": value, "n_sim": len(features["sim"]), "n_data": len(features["data"])}
        lines.append(f"sim-vs-data classifier AUC on {array} {used}: {value:.3f}")
    path = write_json(os.path.join(args.output, f"{args.name}.json"), result)
    print(f"hepdl evaluate domain: {'; '.join(lines)}; wrote {path}", file=sys.stderr)
    return 0

