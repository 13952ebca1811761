"""How well a network transfers from simulation to data, measured on its own features and scores.

Metrics that need no data labels (what one has in a real analysis):

- ``domain_auc``: the AUC of a classifier trained to tell simulation from data on the
  network's features (the body output), :func:`hepdl.evaluate.metrics.domain_classifier_auc`
  on held-out halves; 0.5 = the network cannot see which domain an entry came from.
- ``ks``, ``wasserstein``: distance between the score distributions on simulation and on
  data (:func:`hepdl.evaluate.metrics.score_agreement`).

Metrics that use data labels where they exist (generated "data", a labelled control
region), only to evaluate, never to train:

- ``data_auc`` (and ``sim_auc``): the classifier's AUC on each sample.
- ``eff_shift``: the cut that keeps 50 % of simulated signal, applied to the data signal:
  ``|eff_data - 0.5|`` (:func:`hepdl.evaluate.metrics.working_point_stability`); 0 = the
  working point calibrated on simulation holds in data. ``eff_shift_err`` is the binomial
  uncertainty of ``eff_data`` (with a few hundred data signal jets it is ~0.025, so
  shifts that differ by less than that are not told apart by the sample).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hepdl.errors import InputError
from hepdl.evaluate import metrics
from hepdl.models.interface import BodyAndHead
from hepdl.train.data import BatchFetcher


@torch.no_grad()
def network_outputs(
    model: nn.Module, dataset: Dataset, input_keys: Sequence[str], *, batch_size: int = 512,
    device: str | torch.device = "cpu", keys: Sequence[str] = ("label", "weight"),
) -> dict[str, np.ndarray]:
    """Scores and body features of ``model`` for every entry of ``dataset``, in dataset order.

    Returns ``score`` ((N,) sigmoid of one logit or (N, K) softmax), ``features`` ((N, D),
    the output of ``model.body``) and the dataset arrays ``keys`` that it holds.
    """
    if not isinstance(model, BodyAndHead):
        raise InputError(f"model {type(model).__name__} has no body: its features cannot be compared")
    body = model.body
    model = model.to(device).eval()
    fetch = BatchFetcher(dataset)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(dataset), batch_size):
        batch = fetch[range(start, min(start + batch_size, len(dataset)))]
        inputs = [batch[k].to(device) for k in input_keys]
        feats = body(*inputs)
        logits = model.head(feats).float()
        if logits.dim() == 1 or logits.shape[-1] == 1:
            score = torch.sigmoid(logits.reshape(-1))
        else:
            score = torch.softmax(logits, dim=-1)
        parts.setdefault("score", []).append(score.cpu().numpy())
        parts.setdefault("features", []).append(feats.float().reshape(len(feats), -1).cpu().numpy())
        for k in keys:
            if k in batch:
                parts.setdefault(k, []).append(batch[k].numpy())
    if not parts:
        raise InputError("network_outputs: the dataset is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}


def _signal_score(score: np.ndarray, signal_class: int) -> np.ndarray:
    score = np.asarray(score)
    return score if score.ndim == 1 else score[:, signal_class]


def _has_labels(out: Mapping[str, np.ndarray], signal_class: int) -> bool:
    label = out.get("label")
    return label is not None and bool(np.any(label == signal_class)) and bool(np.any((label >= 0) & (label != signal_class)))


def domain_metrics(
    sim: Mapping[str, np.ndarray], data: Mapping[str, np.ndarray], *, seed: int = 0,
    signal_efficiency: float = 0.5, signal_class: int = 1, domain_classifier: str = "logistic",
    reweight: str = "none",
) -> dict[str, Any]:
    """Transfer metrics of one network from its outputs on simulation and on data.

    ``sim`` and ``data`` are :func:`network_outputs` results (``score``, ``features``,
    optionally ``label``, ``weight``). Simulation must be labelled; data labels, when present
    (label >= 0), give ``data_auc``, ``data_signal_eff`` and ``eff_shift``. For K-class scores
    the probability of ``signal_class`` is the score, one class against the rest.
    ``reweight="pt"`` weights the background to the signal's jet-pT spectrum (``jet_pt`` in the
    outputs) within each sample for ``sim_auc`` and ``data_auc`` only; the label-free metrics and
    the working point (signal only) do not depend on it.
    """
    s_score, d_score = _signal_score(sim["score"], signal_class), _signal_score(data["score"], signal_class)
    s_w, d_w = sim.get("weight"), data.get("weight")
    if not _has_labels(sim, signal_class):
        raise InputError("domain_metrics: the simulation sample needs labels of both signal and background")
    s_label = (np.asarray(sim["label"]) == signal_class).astype(np.int64)
    out: dict[str, Any] = {
        "domain_auc": metrics.domain_classifier_auc(sim["features"], data["features"], seed=seed,
                                                    model=domain_classifier),
        **metrics.score_agreement(s_score, d_score, s_w, d_w),
        "sim_auc": metrics.auc(s_score, s_label, _auc_weight(sim, s_label, s_w, reweight)),
        "n_sim": int(len(s_score)), "n_data": int(len(d_score)),
    }
    if _has_labels(data, signal_class):
        labelled = np.asarray(data["label"]) >= 0
        d_label = (np.asarray(data["label"])[labelled] == signal_class).astype(np.int64)
        dw = None if d_w is None else np.asarray(d_w)[labelled]
        d_pt = {"jet_pt": np.asarray(data["jet_pt"])[labelled]} if "jet_pt" in data else {}
        out["data_auc"] = metrics.auc(d_score[labelled], d_label, _auc_weight(d_pt, d_label, dw, reweight))
        sig = d_label == 1
        wp = metrics.working_point_stability(
            s_score, s_label, d_score[labelled][sig], signal_efficiency=signal_efficiency, weight=s_w,
            other_weight=None if dw is None else dw[sig])
        w_sig = np.ones(int(sig.sum())) if dw is None else np.asarray(dw, dtype=np.float64)[sig]
        n_eff = w_sig.sum() ** 2 / max(float(np.sum(w_sig**2)), 1e-300)  # effective entries of the data signal
        eff = wp["efficiency"]
        out.update(wp_cut=wp["cut"], data_signal_eff=eff, eff_shift=wp["efficiency_shift"],
                   # binomial uncertainty: a shift below about twice this is not resolved by the sample
                   eff_shift_err=float(np.sqrt(eff * (1.0 - eff) / n_eff)) if n_eff > 0 else float("nan"))
    return out


def _auc_weight(out: Mapping[str, np.ndarray], label01: np.ndarray, weight: np.ndarray | None,
                reweight: str) -> np.ndarray | None:
    """Event weights, times the background-to-signal jet-pT factors when ``reweight == "pt"``."""
    if reweight == "none":
        return weight
    if reweight != "pt":
        raise InputError(f"domain_metrics: reweight must be 'none' or 'pt', not {reweight!r}")
    if "jet_pt" not in out:
        raise InputError("domain_metrics: reweight 'pt' needs jet_pt in the network outputs")
    from hepdl.train.reweight import pt_flat_weights

    return pt_flat_weights(out["jet_pt"], label01, weight)


def compare_models(
    models: Mapping[str, str], sim_shards: Sequence[str], data_shards: Sequence[str], *, split: str = "test",
    seed: int = 0, signal_efficiency: float = 0.5, signal_class: int = 1, domain_classifier: str = "logistic",
    reweight: str = "none", device: str = "cpu", batch_size: int = 512,
) -> tuple[dict[str, Any], dict[str, tuple]]:
    """:func:`domain_metrics` of each model file (``{name: path}``) on a split of both samples.

    Returns ``{"<name>_<metric>": value}`` for every model and the score panels of
    :func:`hepdl.evaluate.plots.domain_scores_figure`.
    """
    from hepdl.models import load_model_file
    from hepdl.represent.torch_dataset import PreparedDataset

    result: dict[str, Any] = {}
    panels: dict[str, tuple] = {}
    for name, path in models.items():
        model, _ = load_model_file(path, device=device)
        inputs = list(model.input_keys)
        outs = []
        for shards in (sim_shards, data_shards):
            have = set(PreparedDataset(shards, None, ()).meta["arrays"])
            missing = [k for k in inputs if k not in have]
            if missing:
                raise InputError(f"{shards[0]}: model {path} reads {missing[0]!r}, which the shard does not hold")
            extra = [k for k in ("label", "weight", "jet_pt") if k in have and k not in inputs]
            data = PreparedDataset(shards, split, [*inputs, *extra])
            if len(data) == 0:
                raise InputError(f"{shards[0]}: the {split} split is empty")
            outs.append(network_outputs(model, data, inputs, batch_size=batch_size, device=device, keys=extra))
        sim, data = outs
        m = domain_metrics(sim, data, seed=seed, signal_efficiency=signal_efficiency, signal_class=signal_class,
                           domain_classifier=domain_classifier, reweight=reweight)
        result.update({f"{name}_{k}": v for k, v in m.items()})
        s_label = (sim["label"] == signal_class).astype(np.int64)
        panels[name] = (_signal_score(sim["score"], signal_class), s_label,
                        _signal_score(data["score"], signal_class), m, sim.get("weight"), data.get("weight"))
    return result, panels

