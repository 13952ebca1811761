"""Export a trained hepdl model to ONNX and check it against torch with onnxruntime.

The exported graph takes the prepared arrays the model reads (ONNX inputs named after
them: ``jet_images``, ``expert``, ``tracks``, ``track_mask``, ``pixel_maps``), with a
dynamic batch axis, and returns ``probabilities`` (sigmoid/softmax included: (N,)
P(signal) for a binary model, (N, K) otherwise) and, unless disabled, ``logits``.
The model file's classes, task, representation spec and field mapping travel along as
ONNX metadata, so a C++ analysis (onnxruntime) knows what to feed it.

Exporter: torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``).
The default torch.export-based exporter of torch >= 2.9 needs the ``onnxscript``
package, which hepdl does not depend on; the TorchScript one ships with torch and
handles every hepdl model (convolutions, batch norm, dense layers).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hepdl.atomic import atomic_path
from hepdl.errors import HepdlError, InputError
from hepdl.scoring import TrainedModel, forward_logits, probabilities

DEFAULT_OPSET = 17
PARITY_ATOL = 1e-5


class ProbabilityGraph(nn.Module):
    """The model plus its output activation, with one positional argument per input array."""

    def __init__(self, module: nn.Module, inputs: Sequence[str], with_logits: bool = True) -> None:
        super().__init__()
        self.module = module
        self.inputs = list(inputs)
        self.with_logits = with_logits

    def forward(self, *tensors: torch.Tensor):
        logits = forward_logits(self.module, self.inputs, dict(zip(self.inputs, tensors, strict=True)))
        probs = probabilities(logits)
        return (probs, logits) if self.with_logits else probs


def export_onnx(
    model: TrainedModel,
    output: str | os.PathLike,
    example: Mapping[str, np.ndarray],
    *,
    with_logits: bool = True,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = PARITY_ATOL,
) -> dict[str, Any]:
    """Write ``model`` as an ONNX file (atomically) and return a report.

    Args:
        example: real prepared input arrays ``{input name: (N, ...)}`` (N >= 2); they
            trace the graph and, with ``check``, are scored by torch and onnxruntime.
        atol: largest allowed absolute difference of the probabilities (of the logits: relative
            to max(1, |logit|)).

    Raises :class:`HepdlError` when the parity check fails; nothing is written then.
    Returns ``{"path", "inputs", "outputs", "opset", "n_checked", "max_abs_diff_probabilities",
    "max_rel_diff_logits"}``.
    """
    output = os.fspath(output)
    arrays = {k: np.ascontiguousarray(example[k]) for k in model.inputs if k in example}
    missing = [k for k in model.inputs if k not in arrays]
    if missing:
        raise InputError(f"example inputs lack {missing}; the model reads {model.inputs}")
    n = len(arrays[model.inputs[0]])
    if n < 2:
        raise InputError("need at least 2 example entries to export with a dynamic batch axis")
    module = model.module.to("cpu").eval()
    graph = ProbabilityGraph(module, model.inputs, with_logits).eval()
    outputs = ["probabilities", "logits"] if with_logits else ["probabilities"]
    trace = tuple(torch.as_tensor(np.array(arrays[k][: min(n, 8)])) for k in model.inputs)
    dynamic = {name: {0: "batch"} for name in [*model.inputs, *outputs]}
    try:
        with atomic_path(output, suffix=".onnx") as tmp:
            with torch.no_grad(), warnings.catch_warnings():
                # the TorchScript exporter announces its own deprecation; it is our deliberate choice
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                # the RNN symbolic warns about batch sizes in general; the parity check below runs
                # other batch sizes than the traced one, so a real problem still fails loudly
                warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
                try:
                    torch.onnx.export(graph, trace, tmp, dynamo=False, input_names=list(model.inputs),
                                      output_names=outputs, dynamic_axes=dynamic, opset_version=opset,
                                      do_constant_folding=True)
                except Exception as err:  # the exporter raises many types, with the whole graph in the message
                    first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
                    raise HepdlError(f"{model.path}: model {model.info.get('architecture', {}).get('name')!r} cannot "
                                     f"be exported to ONNX by the TorchScript exporter: {type(err).__name__}: "
                                     f"{first}") from None
            _add_metadata(tmp, model)
            report = {"path": output, "inputs": list(model.inputs), "outputs": outputs, "opset": opset}
            if check:
                report.update(check_parity(model, tmp, arrays, atol=atol))
    finally:
        model.module.to(model.device)
    return report


def _add_metadata(path: str, model: TrainedModel) -> None:
    import onnx

    proto = onnx.load(path)
    from hepdl import __version__

    meta = {
        "hepdl_version": __version__,
        "task": model.task,
        "classes": json.dumps(model.classes),
        "inputs": json.dumps(model.inputs),
        "representation": json.dumps(model.representation),
        "architecture": json.dumps(model.info.get("architecture", {})),
        "output": "probabilities: sigmoid (binary, P(classes[1])) or softmax over classes",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def onnx_session(path: str | os.PathLike):
    """An onnxruntime CPU session (deterministic single-threaded, for comparisons)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def check_parity(
    model: TrainedModel, onnx_path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *,
    atol: float = PARITY_ATOL, batch_size: int = 256,
) -> dict[str, Any]:
    """Score ``arrays`` with torch (CPU) and onnxruntime; raise :class:`HepdlError` if they differ by more than ``atol``."""
    session = onnx_session(onnx_path)
    names = [o.name for o in session.get_outputs()]
    n = len(arrays[model.inputs[0]])
    diffs = {name: 0.0 for name in names}
    device = model.device
    model.device = torch.device("cpu")
    model.module.to("cpu")
    try:
        for start in range(0, n, batch_size):
            batch = {k: np.ascontiguousarray(arrays[k][start:start + batch_size]) for k in model.inputs}
            got = dict(zip(names, session.run(names, batch), strict=True))
            want = {"probabilities": model.predict_arrays(batch), "logits": model.predict_arrays(batch, logits=True)}
            for name in names:
                if got[name].shape != want[name].shape:
                    raise HepdlError(f"{onnx_path}: ONNX output {name!r} has shape {got[name].shape}, "
                                     f"torch gives {want[name].shape}")
                diff = np.abs(got[name] - want[name])
                if name == "logits":
                    # logits are unbounded: compare them relative to their size (float32 rounding)
                    diff = diff / np.maximum(1.0, np.abs(want[name]))
                diffs[name] = max(diffs[name], float(np.max(diff, initial=0.0)))
    finally:
        model.device = device
        model.module.to(device)
    report = {"n_checked": n, **{f"max_{'rel' if name == 'logits' else 'abs'}_diff_{name}": d
                                 for name, d in diffs.items()}}
    bad = {name: d for name, d in diffs.items() if not d <= atol}
    if bad:
        raise HepdlError(f"{onnx_path}: ONNX and torch disagree on {n} real entries: max difference "
                         + ", ".join(f"{k} {v:.3g}" for k, v in bad.items()) + f" > {atol:g}")
    return report


def example_inputs(model: TrainedModel, sources: Sequence[str], n: int = 256) -> dict[str, np.ndarray]:
    """Up to ``n`` entries of real prepared inputs for the model, from prepared shards or ROOT files.

    Each source is a shard directory (``meta.json``) or a ROOT file, which goes through
    the model's stored representation.
    """
    from hepdl.represent.prepared import load_array, load_meta

    parts: dict[str, list[np.ndarray]] = {k: [] for k in model.inputs}
    have = 0
    for source in sources:
        if have >= n:
            break
        if os.path.isdir(source):
            meta = load_meta(source)
            take = min(n - have, int(meta["n_entries"]))
            for k in model.inputs:
                parts[k].append(np.asarray(load_array(source, k, meta)[:take]))
        else:
            take = 0
            for chunk, _ in model._chunks(source, None, None, n - have, None):
                arrays = model.prepare(chunk)
                for k in model.inputs:
                    parts[k].append(arrays[k])
                take = len(arrays[model.inputs[0]])
                break
        have += take
    if have == 0:
        raise InputError(f"no entries to check the export on in {list(sources)}")
    return {k: np.concatenate(v) for k, v in parts.items()}


def default_check_sources(model: TrainedModel) -> list[str]:
    """The training shards (or their ROOT files) named in the model's provenance that still exist."""
    prov = model.info.get("provenance", {})
    shards = [s for s in prov.get("shards", []) if os.path.isdir(s)]
    if shards:
        return shards
    return [s["path"] for s in prov.get("sources", []) if isinstance(s, dict) and os.path.isfile(s.get("path", ""))]
