"""``hepdl bdt``: train the XGBoost baseline on a prepared dataset's tabular features.

Writes into OUTDIR: ``bdt.json`` (XGBoost JSON model), ``bdt.info.json`` (feature
names, classes, settings, provenance), ``test_scores.npz`` and ``val_scores.npz``
(same layout as the CNN trainer's, see :mod:`hepdl.evaluate.results`), and with
``--data-shards`` ``data_scores.npz`` (the data sample's test split, label -1 if unlabelled).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np

from hepdl.errors import InputError

SPLITS = ("train", "validation", "test")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bdt",
        help="train an XGBoost classifier on tabular features (expert variables, autoencoder codes)",
        description="Train on the train split with early stopping on the validation split; "
        "score the validation and test splits.",
    )
    p.add_argument("--shards", nargs="+", required=True, help="prepared-dataset shard directories")
    p.add_argument(
        "--array", nargs="+", default=["expert"],
        help="(N, F) feature arrays of the shards, side by side (default: expert)",
    )
    p.add_argument(
        "--features",
        nargs="+",
        default=None,
        help="feature names to use, e.g. mass tau21 (default: all)",
    )
    p.add_argument(
        "--data-shards",
        nargs="+",
        default=None,
        help="shards of the data sample: their test split is scored into data_scores.npz",
    )
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=1, help="XGBoost threads")
    p.add_argument("--n-estimators", type=int, default=400)
    p.add_argument("--max-depth", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument(
        "--early-stopping", type=int, default=20, help="rounds without validation improvement"
    )
    p.add_argument(
        "--reweight",
        default="none",
        choices=("none", "pt", "pt_eta"),
        help="weight background training (and validation) jets to the signal's jet pT (and eta) "
        "spectrum, fitted on the train split, so that the trees cannot use the samples' pT difference",
    )
    p.set_defaults(func=run)


def read_splits(
    shards: Sequence[str], names: Sequence[str], splits: Sequence[str] = SPLITS
) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """``{split: {name: array}}`` for the arrays ``names`` that every shard has, plus the meta.

    Goes through :class:`hepdl.represent.PreparedDataset`, so the split and the entry
    order are exactly those the CNN trainer sees.
    """
    from hepdl.represent import PreparedDataset

    out: dict[str, dict[str, np.ndarray]] = {}
    meta: dict = {}
    for split in splits:
        ds = PreparedDataset(list(shards), split, arrays=())
        meta = ds.meta
        present = [n for n in names if all(n in m["arrays"] for m in ds.metas)]
        out[split] = {n: ds.numpy(n) for n in present}
    return out, meta


def feature_table(part: dict[str, np.ndarray], arrays: Sequence[str], meta: dict, where: str
                  ) -> tuple[np.ndarray, list[str]]:
    """The named arrays of one split side by side, ``(N, F1 + F2 + ...)``, with their column names."""
    names: list[str] = []
    for array in arrays:
        columns = meta.get("feature_names", {}).get(array)
        if columns is None:
            raise InputError(f"{where}/meta.json: no feature_names[{array!r}]")
        names += list(columns)
    if len(set(names)) != len(names):
        raise InputError(f"{where}: arrays {list(arrays)} repeat a column name ({names})")
    return np.concatenate([np.asarray(part[a], dtype=np.float32) for a in arrays], axis=1), names


def run(args: argparse.Namespace) -> int:
    from hepdl.bdt import BDTSettings, predict_bdt, save_bdt, select_features, train_bdt
    from hepdl.bdt.boosted_trees import settings_dict
    from hepdl.represent.prepared import find_shards
    from hepdl.result_files import save_scores
    from hepdl.tasks import get_task
    from hepdl.train.training_run import shard_targets

    args.shards = find_shards(args.shards)
    probe_meta = read_splits(args.shards, [], ("train",))[1]
    task = get_task(probe_meta["task"])
    wanted = [*args.array, "label", "weight", *task.score_columns, *task.kinematics]
    data, meta = read_splits(args.shards, wanted)
    for need in (*args.array, "label"):
        if need not in data["train"]:
            raise InputError(f"{args.shards[0]}: prepared dataset has no {need!r} array")
    for part in data.values():
        table, names = feature_table(part, args.array, meta, args.shards[0])
        part["x"], used = select_features(table, names, args.features)
        part["label"] = np.asarray(part["label"], dtype=np.int64)
        n = len(part["label"])
        part["weight"] = np.asarray(part.get("weight", np.ones(n)), dtype=np.float32)
    train, val = data["train"], data["validation"]
    w_train, w_val = train["weight"], val["weight"]
    if args.reweight != "none":
        w_train, w_val = _reweighted(args, task.kinematics, train, val)
    n_classes = shard_targets(meta).count(train["label"], args.shards[0])
    settings = BDTSettings(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        early_stopping_rounds=args.early_stopping,
    )
    booster = train_bdt(
        train["x"],
        train["label"],
        val["x"],
        val["label"],
        feature_names=used,
        n_classes=n_classes,
        w_train=w_train,
        w_val=w_val,
        settings=settings,
        seed=args.seed,
        threads=args.threads,
    )
    os.makedirs(args.output, exist_ok=True)
    for split_name, fname in (("validation", "val_scores.npz"), ("test", "test_scores.npz")):
        part = data[split_name]
        out = {
            "score": predict_bdt(booster, part["x"], used),
            "label": part["label"],
            "weight": part["weight"],
        }
        out |= {k: part[k] for k in task.score_columns if k in part}
        save_scores(os.path.join(args.output, fname), out)
    if args.data_shards:
        _score_data(booster, args, task.score_columns, used, save_scores)
    info = {
        "task": task.name,
        "arrays": list(args.array),
        "n_classes": n_classes,
        "seed": args.seed,
        "settings": settings_dict(settings),
        "reweight": args.reweight,
        "shards": [os.path.abspath(s) for s in args.shards],
        "data_shards": [os.path.abspath(s) for s in args.data_shards or []],
        "split": meta.get("split"),
        **{f"n_{s}": len(data[s]["label"]) for s in SPLITS},
    }
    model, _ = save_bdt(booster, os.path.join(args.output, "bdt.json"), info)
    print(
        f"hepdl bdt: {len(used)} features {used}, {booster.num_boosted_rounds()} rounds "
        f"(best {_best_iteration(booster)}), model {model}"
    )
    return 0


def _reweighted(args: argparse.Namespace, kinematics: Sequence[str], train: dict, val: dict
                ) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation weights times the background-to-signal spectrum factors (fitted on train)."""
    from hepdl.train.reweight import SpectrumReweighter

    keys = list(kinematics[:2] if args.reweight == "pt_eta" else kinematics[:1])
    if not keys:
        raise InputError(f"{args.shards[0]}: --reweight {args.reweight}: the task has no kinematics to reweight")
    for key in keys:
        if key not in train:
            raise InputError(f"{args.shards[0]}: --reweight {args.reweight} needs the {key!r} array in the shards")
    pt, eta = keys[0], keys[1] if len(keys) > 1 else None
    rw = SpectrumReweighter.fit(train[pt], train[eta] if eta else None, train["label"], train["weight"])
    return tuple(part["weight"] * rw.weights(part[pt], part[eta] if eta else None, part["label"])
                 for part in (train, val))


def _best_iteration(booster) -> int:
    return int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1))


def _score_data(booster, args: argparse.Namespace, columns: Sequence[str], used: list[str], save_scores) -> None:
    """Score the test split of the data shards; unlabelled data gets label -1."""
    from hepdl.bdt import predict_bdt, select_features
    from hepdl.represent.prepared import find_shards

    shards = find_shards(args.data_shards)
    data, meta = read_splits(shards, [*args.array, "label", "weight", *columns], ("test",))
    part = data["test"]
    missing = [a for a in args.array if a not in part]
    if missing:
        raise InputError(f"{shards[0]}: prepared dataset has no {missing[0]!r} array")
    table, names = feature_table(part, args.array, meta, shards[0])
    x, _ = select_features(table, names, used)
    n = len(x)
    label = part.get("label")
    out = {
        "score": predict_bdt(booster, x, used),
        "label": np.full(n, -1, np.int64) if label is None else np.asarray(label, np.int64),
        "weight": np.asarray(part.get("weight", np.ones(n)), np.float32),
    }
    out |= {k: part[k] for k in columns if k in part}
    save_scores(os.path.join(args.output, "data_scores.npz"), out)
