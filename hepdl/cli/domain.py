"""``hepdl domain evaluate``: how classifiers trained on simulation transfer to data.

    hepdl domain evaluate --models cnn=run/cnn/model.pt dann=run/dann/model.pt \\
        --sim-shards prepared/jets_sim_* --data-shards prepared/jets_data_* --task jets --output OUT

scores each model's test split of both samples and writes ``OUT/domain.json``:
``{"task", "model": "domain", "<name>_domain_auc", "<name>_ks", "<name>_wasserstein",
"<name>_sim_auc"`` and, when the data shards hold labels (only ever used here to
evaluate), ``"<name>_data_auc", "<name>_eff_shift", "<name>_data_signal_eff"}`` for every
model name (see :mod:`hepdl.evaluate.domain`), plus ``OUT/scores_<name>.png`` (the score
distributions on simulation with the data overlaid) and ``OUT/domain_scores.png`` (all
models side by side).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9_+-]+$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("domain", help="sim-to-data transfer of classifiers (domain AUC, score shift, working point)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    e = kinds.add_parser("evaluate", help="compare models on simulation and data (writes OUT/domain.json)")
    e.add_argument("--models", nargs="+", required=True, metavar="NAME=MODEL.pt",
                   help="model files by name, e.g. cnn=run/cnn/model.pt dann=run/dann/model.pt")
    e.add_argument("--sim-shards", nargs="+", required=True, help="prepared shards of the simulation sample")
    e.add_argument("--data-shards", nargs="+", required=True, help="prepared shards of the data sample")
    e.add_argument("--task", default="jets", help="task name recorded in domain.json (default jets)")
    e.add_argument("--output", required=True, help="output directory")
    e.add_argument("--split", default="test", choices=("train", "validation", "test"),
                   help="split of both samples to evaluate on (default test)")
    e.add_argument("--seed", type=int, default=0, help="seed of the domain classifier's halves")
    e.add_argument("--signal-efficiency", type=float, default=0.5, help="working point on simulated signal")
    e.add_argument("--signal-class", type=int, default=1, help="class whose probability is the score (K classes)")
    e.add_argument("--domain-classifier", default="logistic", choices=("logistic", "gbdt"))
    e.add_argument("--reweight", default="none", choices=("none", "pt"),
                   help="pt: sim and data AUCs with the background weighted to the signal's jet pT")
    e.add_argument("--device", default="cpu")
    e.add_argument("--batch-size", type=int, default=512)
    e.set_defaults(func=run_evaluate)


def _parse_models(items: Sequence[str]) -> dict[str, str]:
    from hepdl.errors import ConfigError

    models: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not _NAME.match(name) or not path:
            raise ConfigError(f"--models: {item!r} is not NAME=PATH (NAME of letters, digits, _ + -)")
        if name in models:
            raise ConfigError(f"--models: name {name!r} given twice")
        models[name] = path
    return models


def run_evaluate(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from hepdl.cli.train import shard_dirs
    from hepdl.errors import InputError
    from hepdl.evaluate.domain import domain_metrics, network_outputs
    from hepdl.evaluate.plots import plot_scores
    from hepdl.evaluate.results import write_json
    from hepdl.models import load_model_file
    from hepdl.represent.torch_dataset import PreparedDataset

    models = _parse_models(args.models)
    sim_shards, data_shards = shard_dirs(args.sim_shards), shard_dirs(args.data_shards)
    os.makedirs(args.output, exist_ok=True)
    result: dict[str, Any] = {"task": args.task, "model": "domain", "split": args.split,
                              "models": {n: os.path.abspath(p) for n, p in models.items()}}
    panels: dict[str, tuple] = {}
    for name, path in models.items():
        model, info = load_model_file(path, device=args.device)
        inputs = list(getattr(model, "input_keys", None) or info["inputs"])
        outs = []
        for shards in (sim_shards, data_shards):
            probe = PreparedDataset(shards, None, ())
            have = set(probe.meta["arrays"])
            missing = [k for k in inputs if k not in have]
            if missing:
                raise InputError(f"{shards[0]}: model {path} reads {missing[0]!r}, which the shard does not hold")
            extra = [k for k in ("label", "weight", "jet_pt") if k in have and k not in inputs]
            data = PreparedDataset(shards, args.split, [*inputs, *extra])
            if len(data) == 0:
                raise InputError(f"{shards[0]}: the {args.split} split is empty")
            outs.append(network_outputs(model, data, inputs, batch_size=args.batch_size, device=args.device,
                                        keys=extra))
        sim, data = outs
        m = domain_metrics(sim, data, seed=args.seed, signal_efficiency=args.signal_efficiency,
                           signal_class=args.signal_class, domain_classifier=args.domain_classifier,
                           reweight=args.reweight)
        result.update({f"{name}_{k}": v for k, v in m.items()})
        s_score = sim["score"] if sim["score"].ndim == 1 else sim["score"][:, args.signal_class]
        d_score = data["score"] if data["score"].ndim == 1 else data["score"][:, args.signal_class]
        s_label = (sim["label"] == args.signal_class).astype(np.int64)
        plot_scores(s_score, s_label, sim.get("weight"), name=name, data_score=d_score,
                    data_weight=data.get("weight"), path=os.path.join(args.output, f"scores_{name}.png"))
        panels[name] = (s_score, s_label, d_score, m)
    _side_by_side(panels, os.path.join(args.output, "domain_scores.png"))
    path = write_json(os.path.join(args.output, "domain.json"), result)
    line = "; ".join(f"{n}: domain AUC {v[3]['domain_auc']:.3f}, KS {v[3]['ks']:.3f}"
                     + (f", data AUC {v[3]['data_auc']:.3f}, eff shift {v[3]['eff_shift']:.3f}" if "data_auc" in v[3] else "")
                     for n, v in panels.items())
    print(f"hepdl domain evaluate: {line}; wrote {path}", file=sys.stderr)
    return 0


def _side_by_side(panels: dict[str, tuple], path: str) -> None:
    """Score on simulation (signal, background) and on data, one panel per model (e.g. before/after adaptation)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hepdl.evaluate.plots import hep_style, save_figure

    with hep_style():
        fig = Figure(figsize=(4.6 * len(panels), 4.0), layout="constrained")
        FigureCanvasAgg(fig)
        for i, (name, (s, y, d, m)) in enumerate(panels.items()):
            ax = fig.add_subplot(1, len(panels), i + 1)
            lo, hi = float(min(s.min(), d.min())), float(max(s.max(), d.max()))
            pad = max(1e-3, 1e-3 * (hi - lo))  # the top score falls inside the last bin, and a constant score still plots
            edges = np.linspace(lo - pad, hi + pad, 31)
            for values, style in ((s[y == 1], {"label": "sim signal"}), (s[y == 0], {"label": "sim background"}),
                                  (s, {"label": "sim (all)", "color": "k"})):
                if len(values):
                    ax.hist(values, bins=edges, density=True, histtype="step", **style)
            counts, _ = np.histogram(d, bins=edges)
            norm = max(counts.sum(), 1) * np.diff(edges)
            ax.errorbar(0.5 * (edges[1:] + edges[:-1]), counts / norm, yerr=np.sqrt(counts) / norm, fmt="o",
                        color="k", markersize=3, label="data")
            ax.set_title(f"{name}: domain AUC {m['domain_auc']:.3f}, KS {m['ks']:.3f}")
            ax.set_xlabel(f"{name} score")
            ax.set_ylabel("Normalised entries")
            ax.set_ylim(0.0, ax.get_ylim()[1] * 1.4)  # headroom for the legend
            ax.legend(loc="upper center", ncols=2, fontsize=8)
    save_figure(fig, path)
