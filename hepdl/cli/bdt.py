"""``hepdl bdt``: train the XGBoost baseline on a prepared dataset's tabular features.

Writes into OUTDIR: ``bdt.json`` (XGBoost JSON model), ``bdt.info.json`` (feature
names, classes, settings, provenance), ``test_scores.npz`` and ``val_scores.npz``
(same layout as the CNN trainer's, see :mod:`hepdl.evaluate.results`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import numpy as np

from hepdl.errors import InputError

SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
# Per-entry arrays copied into the scores files when the dataset has them
PASSTHROUGH = ("jet_pt", "jet_mass", "nu_energy")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bdt",
        help="train an XGBoost classifier on tabular features (expert variables, autoencoder codes)",
        description="Train on the train split with early stopping on the validation split; "
        "score the validation and test splits.",
    )
    p.add_argument("--shards", nargs="+", required=True, help="prepared-dataset shard directories")
    p.add_argument(
        "--array", default="expert", help="(N, F) feature array of the shards (default: expert)"
    )
    p.add_argument(
        "--features",
        nargs="+",
        default=None,
        help="feature names to use, e.g. mass tau21 (default: all)",
    )
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=1, help="XGBoost threads")
    p.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes (default: 2 for the jets task, else 1 + the largest label)",
    )
    p.add_argument("--n-estimators", type=int, default=400)
    p.add_argument("--max-depth", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument(
        "--early-stopping", type=int, default=20, help="rounds without validation improvement"
    )
    p.set_defaults(func=run)


def _load_meta(shard: str) -> dict:
    path = os.path.join(shard, "meta.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{shard}: not a prepared dataset (no meta.json)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if meta.get("format") != "hepdl-prepared-v1":
        raise InputError(f"{path}: unknown prepared-dataset format {meta.get('format')!r}")
    return meta


def read_prepared(
    shards: Sequence[str], names: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays ``names`` (those present in every shard) concatenated over shards, plus the first meta.

    Reads the shards as the prepared-dataset contract lays them out (``<name>.npy``
    memory-mapped); tabular arrays are small, so they are concatenated in memory.
    """
    metas = [_load_meta(s) for s in shards]
    first = metas[0]
    for s, m in zip(shards[1:], metas[1:], strict=True):
        if m.get("task") != first.get("task") or m.get("feature_names") != first.get(
            "feature_names"
        ):
            raise InputError(f"{s}: task or feature names differ from {shards[0]}")
    out: dict[str, np.ndarray] = {}
    for name in names:
        if not all(name in m.get("arrays", {}) for m in metas):
            continue
        parts = []
        for s, m in zip(shards, metas, strict=True):
            path = os.path.join(s, f"{name}.npy")
            try:
                arr = np.load(path, mmap_mode="r")
            except (FileNotFoundError, ValueError) as err:
                raise InputError(f"{path}: cannot read array ({err})") from None
            if len(arr) != m["n_entries"]:
                raise InputError(f"{path}: {len(arr)} entries, meta.json says {m['n_entries']}")
            parts.append(arr)
        out[name] = np.concatenate(parts)
    return out, first


def run(args: argparse.Namespace) -> int:
    from hepdl.bdt import BDTSettings, predict_bdt, save_bdt, select_features, train_bdt
    from hepdl.bdt.boosted_trees import settings_dict
    from hepdl.evaluate.results import save_scores

    wanted = [args.array, "label", "weight", "split", *PASSTHROUGH]
    arrays, meta = read_prepared(args.shards, wanted)
    for need in (args.array, "label", "split"):
        if need not in arrays:
            raise InputError(f"{args.shards[0]}: prepared dataset has no {need!r} array")
    names = meta.get("feature_names", {}).get(args.array)
    if names is None:
        raise InputError(f"{args.shards[0]}/meta.json: no feature_names[{args.array!r}]")
    x, used = select_features(arrays[args.array], names, args.features)
    label = np.asarray(arrays["label"], dtype=np.int64)
    weight = np.asarray(arrays.get("weight", np.ones(len(label))), dtype=np.float32)
    split = np.asarray(arrays["split"])
    task = meta.get("task", "jets")
    n_classes = args.num_classes or (2 if task == "jets" else int(label.max()) + 1)
    sel = {k: split == c for k, c in SPLIT_CODES.items()}
    settings = BDTSettings(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        early_stopping_rounds=args.early_stopping,
    )
    booster = train_bdt(
        x[sel["train"]],
        label[sel["train"]],
        x[sel["validation"]],
        label[sel["validation"]],
        feature_names=used,
        n_classes=n_classes,
        w_train=weight[sel["train"]],
        w_val=weight[sel["validation"]],
        settings=settings,
        seed=args.seed,
        threads=args.threads,
    )
    os.makedirs(args.output, exist_ok=True)
    for split_name, fname in (("validation", "val_scores.npz"), ("test", "test_scores.npz")):
        m = sel[split_name]
        out = {"score": predict_bdt(booster, x[m], used), "label": label[m], "weight": weight[m]}
        out |= {k: np.asarray(arrays[k][m]) for k in PASSTHROUGH if k in arrays}
        save_scores(os.path.join(args.output, fname), out)
    info = {
        "task": task,
        "array": args.array,
        "n_classes": n_classes,
        "seed": args.seed,
        "settings": settings_dict(settings),
        "shards": [os.path.abspath(s) for s in args.shards],
        "split": meta.get("split"),
        "n_train": int(sel["train"].sum()),
        "n_validation": int(sel["validation"].sum()),
        "n_test": int(sel["test"].sum()),
    }
    model, _ = save_bdt(booster, os.path.join(args.output, "bdt.json"), info)
    print(
        f"hepdl bdt: {len(used)} features {used}, {booster.num_boosted_rounds()} rounds "
        f"(best {_best_iteration(booster)}), model {model}"
    )
    return 0


def _best_iteration(booster) -> int:
    return int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1))
