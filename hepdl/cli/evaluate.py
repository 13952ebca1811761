"""``hepdl evaluate binary|multiclass``: metrics JSONs and plots from classifiers' test scores.

``binary`` writes ``OUTDIR/<name>.json`` per model (auc, rejection_at_30, rejection_at_50,
n_test; with ``--data-scores`` also the sim-vs-data agreement), ``OUTDIR/roc.png``
(all models) and ``OUTDIR/scores_<name>.png``.
``multiclass`` writes ``OUTDIR/<name>.json`` (accuracy, per-class efficiency/purity,
nu_e CC efficiency/purity) and ``OUTDIR/confusion_<name>.png``.
Every metrics JSON carries "task" and "model", which ``hepdl summary`` collects.
``domain`` writes ``OUTDIR/<name>.json`` with ``<array>_domain_auc``: the AUC of a
classifier telling sim from data on that array's features (0.5 = indistinguishable).
``images`` (average jet images per class), ``display`` (neutrino event display) and
``curves`` (training curves from a metrics CSV) write plots only.
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
    b.add_argument(
        "--reweight",
        default="none",
        choices=("none", "pt"),
        help="pt: weight background test jets to the signal's jet-pT spectrum (fitted on each test sample), "
        "so that no model scores by the samples' pT difference; auc_unweighted keeps the plain AUC",
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

    im = kinds.add_parser("images", help="average jet image per class from prepared shards")
    im.add_argument("--shards", nargs="+", required=True, help="prepared-dataset shard directories")
    im.add_argument("--split", default="test", choices=("train", "validation", "test"))
    im.add_argument(
        "--classes", nargs="+", default=["background", "signal"], help="names of labels 0, 1, ..."
    )
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
    ev.add_argument("--classes", nargs="+", required=True, help="class names in label order")
    ev.add_argument(
        "--n-events", type=int, default=4, help="events to show: the first of each class, then more"
    )
    ev.add_argument("--output", required=True, help="output directory (writes event_display.png)")
    ev.set_defaults(func=run_display)

    dm = kinds.add_parser(
        "domain", help="AUC of a classifier telling sim from data on tabular features (0.5 = alike)"
    )
    dm.add_argument("--sim-shards", nargs="+", required=True, help="prepared shards of simulation")
    dm.add_argument("--data-shards", nargs="+", required=True, help="prepared shards of data")
    dm.add_argument("--array", default="expert", help="(N, F) feature array (default: expert)")
    dm.add_argument("--features", nargs="+", default=None, help="feature names (default: all)")
    dm.add_argument("--split", default="test", choices=("train", "validation", "test"))
    dm.add_argument("--classifier", default="logistic", choices=("logistic", "gbdt"))
    dm.add_argument("--seed", type=int, required=True)
    dm.add_argument("--name", default="domain", help="model name in the results (default: domain)")
    dm.add_argument("--task", default="jets")
    dm.add_argument("--output", required=True, help="output directory (writes <name>.json)")
    dm.set_defaults(func=run_domain)

    cu = kinds.add_parser("curves", help="training curves from a training metrics CSV")
    cu.add_argument("--metrics", required=True, help="metrics.csv written by hepdl train")
    cu.add_argument("--output", required=True, help="PNG to write")
    cu.set_defaults(func=run_curves)


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
        plain = weight
        if args.reweight == "pt":
            weight = _pt_reweighted(arrays, path)
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
            data_score=None if data is None else _binary_score(data, args.data_scores[i]),
            data_weight=None if data is None else data["weight"],
            path=os.path.join(args.output, f"scores_{name}.png"),
        )
        print(
            f"hepdl evaluate: {args.task}.{name}: AUC {result['auc']:.4f}, "
            f"rejection at 50% {result['rejection_at_50']:.1f}"
        )
    title = args.task + (": background weighted to the signal's jet pT" if args.reweight == "pt" else "")
    plots.plot_roc(curves, title=title, path=os.path.join(args.output, "roc.png"))
    return 0


def _pt_reweighted(arrays: dict, path: str) -> np.ndarray:
    """Event weights times the factors that give the background the signal's jet-pT spectrum."""
    from hepdl.train.reweight import pt_flat_weights

    if "jet_pt" not in arrays:
        raise InputError(f"{path}: --reweight pt needs the jet_pt array in the scores file")
    return pt_flat_weights(arrays["jet_pt"], arrays["label"], arrays["weight"])


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


# Jet images are (N, C, H, W); summing per class in chunks keeps memory flat in N
_IMAGE_CHUNK = 4096


def run_images(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hepdl.evaluate import plots
    from hepdl.represent import PreparedDataset

    ds = PreparedDataset(args.shards, args.split, arrays=("jet_images", "label"))
    spec = ds.meta.get("spec", {}).get("image", {})
    channels = list(spec.get("channels", []))
    if args.channel is None:
        channel = 0
    elif args.channel in channels:
        channel = channels.index(args.channel)
    else:
        raise ConfigError(f"--channel {args.channel!r}: the shards' image channels are {channels}")
    if len(ds) == 0:
        raise InputError(f"{args.shards[0]}: the {args.split} split is empty")
    k = len(args.classes)
    sums, counts = 0.0, 0
    for start in tqdm(
        range(0, len(ds), _IMAGE_CHUNK), desc="average images", unit="chunk", leave=False
    ):
        b = ds.batch(np.arange(start, min(start + _IMAGE_CHUNK, len(ds))))
        s, c = plots.class_image_sums(b["jet_images"].numpy(), b["label"].numpy(), k, channel)
        sums, counts = sums + s, counts + c
    half = float(spec.get("half_width", 1.0))
    name = channels[channel] if channels else f"channel{channel}"
    unit = " (fraction of the jet's sum)" if spec.get("normalise") == "sum" else ""
    os.makedirs(args.output, exist_ok=True)
    path = plots.plot_mean_images(
        sums,
        counts,
        args.classes,
        extent=(-half, half, -half, half),
        value_label=f"Average pixel {name}{unit}",
        path=os.path.join(args.output, f"average_images_{name}.png"),
    )
    print(f"hepdl evaluate: {path}")
    return 0


def run_display(args: argparse.Namespace) -> int:
    from hepdl.evaluate import plots
    from hepdl.evaluate.results import load_scores
    from hepdl.represent import PreparedDataset

    scores = load_scores(args.scores)
    ds = PreparedDataset(args.shards, "test", arrays=("pixel_maps", "label"))
    if len(ds) != len(scores["score"]):
        raise InputError(
            f"{args.scores}: {len(scores['score'])} scores but the shards' test split has {len(ds)} events"
        )
    label = np.asarray(scores["label"])
    # first event of each class, then the next events in order: a reproducible, varied sample
    first = np.unique(label, return_index=True)[1]
    rest = np.setdiff1d(np.arange(len(label)), first)
    pick = np.concatenate([np.sort(first), rest])[: args.n_events]
    b = ds.batch(pick)
    if not np.array_equal(b["label"].numpy(), label[pick]):
        raise InputError(
            f"{args.scores}: labels disagree with the shards' test split (other shards?)"
        )
    os.makedirs(args.output, exist_ok=True)
    path = plots.plot_event_display(
        b["pixel_maps"].numpy(),
        scores["score"][pick],
        args.classes,
        label=label[pick],
        event_ids=pick,
        path=os.path.join(args.output, "event_display.png"),
    )
    print(f"hepdl evaluate: {path}")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from hepdl.evaluate import plots
    from hepdl.evaluate.results import read_metrics_csv

    path = plots.plot_training_curves(read_metrics_csv(args.metrics), path=args.output)
    print(f"hepdl evaluate: {path}")
    return 0


def run_domain(args: argparse.Namespace) -> int:
    from hepdl.bdt import select_features
    from hepdl.evaluate import metrics
    from hepdl.evaluate.results import write_json
    from hepdl.represent import PreparedDataset

    if not _NAME.match(args.name):
        raise ConfigError(
            f"--name {args.name!r} must be letters, digits, _ . + - (it names a file)"
        )
    features = {}
    for which, shards in (("sim", args.sim_shards), ("data", args.data_shards)):
        ds = PreparedDataset(shards, args.split, arrays=())
        names = ds.meta.get("feature_names", {}).get(args.array)
        if names is None or not all(args.array in m["arrays"] for m in ds.metas):
            raise InputError(f"{shards[0]}: no {args.array!r} array with feature names")
        features[which], used = select_features(ds.numpy(args.array), names, args.features)
    value = metrics.domain_classifier_auc(
        features["sim"], features["data"], seed=args.seed, model=args.classifier
    )
    result = {
        "task": args.task,
        "model": args.name,
        f"{args.array}_domain_auc": value,
        "n_sim": len(features["sim"]),
        "n_data": len(features["data"]),
    }
    os.makedirs(args.output, exist_ok=True)
    path = write_json(os.path.join(args.output, f"{args.name}.json"), result)
    print(
        f"hepdl evaluate: sim-vs-data classifier AUC on {args.array} {used}: {value:.3f} -> {path}"
    )
    return 0
