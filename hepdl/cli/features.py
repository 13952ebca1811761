"""``hepdl features``: encode prepared shards with a trained autoencoder into feature shards.

For every input shard ``S`` writes ``OUTPUT/<basename S>/`` (atomically), itself a prepared shard
(format hepdl-prepared-v1, same spec, split and entry order) holding:

- ``ae_features`` (N, F) float32: latent code and reconstruction errors (see
  :mod:`hepdl.autoencode.features`; names in meta.json ``feature_names["ae_features"]``);
- copied from the prepared shard: ``split``, the task's columns (``label``, ``weight``, kinematics)
  and its tabular arrays (e.g. ``expert``), so that XGBoost can read them beside the code
  (``hepdl bdt --array ae_features expert``);
- with ``--friend``, ``ae_features.root``: the same columns as a ROOT tree ``ae_features``, one
  entry per input entry (a friend of the input file's tree).

So ``hepdl bdt --shards OUTPUT/* --array ae_features`` trains XGBoost on the autoencoder features.
With ``--plots DIR`` also writes pictures of the test split: average original vs reconstructed images,
the latent space projected on its two principal components, reconstruction-error distributions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="encode prepared shards with an autoencoder: latent code + reconstruction errors as feature shards",
        description="Writes one feature shard per input shard (array ae_features, label/weight/split copied) "
        "for hepdl bdt --array ae_features.",
    )
    p.add_argument("--model", required=True, help="autoencoder model file (hepdl train with objective autoencode)")
    p.add_argument("--shards", nargs="+", required=True, help="prepared shard directories (or directories of them)")
    p.add_argument("--output", required=True, help="output directory: one feature shard per input shard")
    p.add_argument("--friend", action="store_true", help="also write ae_features.root (a friend tree) per shard")
    p.add_argument("--plots", help="directory for pictures of the test split (images, latent space, errors)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def copied_arrays(meta: dict) -> list[str]:
    """The arrays of a prepared shard that its feature shard carries along: the split, the task's
    columns and the tables with named columns."""
    from hepdl.tasks import get_task

    columns = [c.name for c in get_task(meta["task"]).columns]
    tables = [a for a in meta.get("feature_names", {}) if len(meta["arrays"].get(a, {}).get("shape", ())) == 2]
    return [a for a in dict.fromkeys(["split", *columns, *tables]) if a in meta["arrays"]]


def _check_representation(info: dict, meta: dict, shard: str, model_path: str) -> None:
    from hepdl.errors import InputError
    from hepdl.represent.representations import producer

    want = info.get("representation", {}).get("spec", {})
    key = info["inputs"][0]
    # the image grid/normalisation (or feature list) the autoencoder learned must be the shard's
    part = producer(meta["spec"], key).key
    if want.get(part) != meta.get("spec", {}).get(part):
        raise InputError(f"{shard}: representation spec[{part!r}] differs from the one {model_path} was trained on")
    if key not in meta["arrays"]:
        raise InputError(f"{shard}: no {key!r} array, which the autoencoder {model_path} reads")


def encode_shard(model, info: dict, shard: str, output: str, *, friend: bool,
                 batch_size: int, model_path: str, progress: bool, collect=None) -> dict:
    """Write the feature shard of ``shard`` to ``output`` (atomically); returns its meta.

    ``collect(rows, table, reconstruction, arrays)`` is called per block when given (for pictures).
    """
    from hepdl import __version__
    from hepdl.atomic import atomic_dir
    from hepdl.autoencode.features import encode_blocks, feature_names
    from hepdl.io import TreeWriter
    from hepdl.represent.prepared import load_array, load_meta

    meta = load_meta(shard)
    _check_representation(info, meta, shard, model_path)
    key = info["inputs"][0]
    inputs = load_array(shard, key, meta)
    names = feature_names(model, meta["feature_names"][key])
    n = int(meta["n_entries"])
    copied = {c: load_array(shard, c, meta) for c in copied_arrays(meta)}

    with atomic_dir(output) as tmp:
        table_out = np.lib.format.open_memmap(os.path.join(tmp, "ae_features.npy"), mode="w+",
                                              dtype=np.float32, shape=(n, len(names)))
        from contextlib import ExitStack

        from tqdm import tqdm

        with ExitStack() as stack:
            tree = stack.enter_context(TreeWriter(os.path.join(tmp, "ae_features.root"), "ae_features")) if friend else None
            bar = stack.enter_context(tqdm(total=n, unit="entry", desc=f"features {os.path.basename(shard)}",
                                           leave=False, file=sys.stderr, disable=not progress))
            for lo, table, recon in encode_blocks(model, inputs, batch_size, with_reconstruction=True):
                hi = lo + len(table)
                table_out[lo:hi] = table
                if tree is not None:
                    tree.extend({name: table[:, j] for j, name in enumerate(names)})
                if collect is not None:
                    collect(np.asarray(inputs[lo:hi]), table, recon, {c: np.asarray(a[lo:hi]) for c, a in copied.items()})
                bar.update(len(table))
        table_out.flush()
        del table_out
        for c, a in copied.items():
            np.save(os.path.join(tmp, f"{c}.npy"), np.asarray(a))
        arrays = {"ae_features": {"shape": [n, len(names)], "dtype": "float32"}}
        arrays |= {c: {"shape": list(a.shape), "dtype": str(a.dtype)} for c, a in copied.items()}
        out_meta = {
            "format": meta["format"], "task": meta["task"], "n_entries": n, "arrays": arrays,
            "feature_names": {"ae_features": names,
                              **{a: cols for a, cols in meta.get("feature_names", {}).items() if a in copied}},
            "targets": meta.get("targets"), "spec": meta["spec"], "fields": meta.get("fields", {}),
            "source": meta.get("source", {}), "split": meta.get("split"), "hepdl_version": __version__,
            "autoencoder": {"model": os.path.abspath(model_path), "architecture": info["architecture"],
                            "input": key, "prepared_shard": os.path.abspath(shard)},
        }
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(out_meta, f, indent=1)
    return out_meta


class _PictureData:
    """Accumulates, over the test split, per-class sums of original and reconstructed images and the
    codes/errors/labels/domains needed for the pictures (codes are small: N x latent_dim)."""

    def __init__(self, n_classes: int, latent_dim: int) -> None:
        self.n_classes, self.latent_dim = n_classes, latent_dim
        self.orig = self.recon = None
        self.counts = np.zeros(n_classes, np.int64)
        self.codes, self.errors, self.labels, self.domains = [], [], [], []
        self.domain = "sim"

    def __call__(self, inputs: np.ndarray, table: np.ndarray, recon: np.ndarray, arrays: dict) -> None:
        test = arrays["split"] == 2 if "split" in arrays else np.ones(len(table), bool)
        label = arrays["label"][test] if "label" in arrays else np.full(int(test.sum()), -1)
        self.codes.append(table[test, : self.latent_dim])
        self.errors.append(table[test, self.latent_dim])
        self.labels.append(label)
        self.domains.append(np.full(int(test.sum()), self.domain))
        if inputs.ndim == 4:
            from hepdl.evaluate.plots import class_image_sums

            for which, imgs in (("orig", inputs[test]), ("recon", recon[test])):
                sums = np.stack([class_image_sums(imgs, label, self.n_classes, c)[0] for c in range(imgs.shape[1])], 1)
                setattr(self, which, sums if getattr(self, which) is None else getattr(self, which) + sums)
            self.counts += np.bincount(label[(label >= 0) & (label < self.n_classes)], minlength=self.n_classes)


def run(args: argparse.Namespace) -> int:
    import torch

    from hepdl.errors import InputError
    from hepdl.models import load_model_file
    from hepdl.models.autoencoders import is_autoencoder
    from hepdl.represent.prepared import find_shards

    if args.threads:
        torch.set_num_threads(args.threads)
    model, info = load_model_file(args.model)
    if not is_autoencoder(model):
        raise InputError(f"{args.model}: not an autoencoder ({info['architecture'].get('name')!r})")
    shards = find_shards(args.shards)
    bases = [os.path.basename(os.path.normpath(s)) for s in shards]
    if len(set(bases)) != len(bases):
        raise InputError(f"shards {shards} do not have distinct directory names; each names its feature shard")
    classes = list(info["classes"])
    pictures = _PictureData(len(classes), model.latent_dim) if args.plots else None
    for shard, base in zip(shards, bases, strict=True):
        if pictures is not None:
            from hepdl.represent.prepared import load_meta

            pictures.domain = (load_meta(shard).get("source") or {}).get("domain") or "sim"
        encode_shard(model, info, shard, os.path.join(args.output, base), friend=args.friend, batch_size=args.batch_size, model_path=args.model,
                     progress=not args.no_progress and sys.stderr.isatty(), collect=pictures)
    if pictures is not None:
        _write_pictures(pictures, classes, args.plots, model)
    print(f"hepdl features: {len(shards)} feature shard(s) in {args.output}", file=sys.stderr)
    return 0


def _write_pictures(p: _PictureData, classes: list[str], out: str, model) -> None:
    from hepdl.autoencode.features import pca_projection
    from hepdl.evaluate import autoencoder_plots as ap

    codes, errors = np.concatenate(p.codes), np.concatenate(p.errors)
    labels, domains = np.concatenate(p.labels), np.concatenate(p.domains)
    os.makedirs(out, exist_ok=True)
    if p.orig is not None:
        ap.plot_reconstruction_images(p.orig, p.recon, p.counts, classes, path=os.path.join(out, "ae_average_images.png"))
    projection, ratio = pca_projection(codes)
    ap.plot_latent_projection(projection, labels, classes, domains, ratio, path=os.path.join(out, "ae_latent_pca.png"))
    ap.plot_reconstruction_errors(errors, labels, classes, domains, path=os.path.join(out, "ae_reconstruction_error.png"))
