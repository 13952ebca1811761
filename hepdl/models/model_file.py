"""The hepdl model file: architecture, weights, representation spec and provenance in one file.

The file is a ``torch.save`` of a dict holding only tensors and plain Python types,
so :func:`load_model_file` reads it with ``torch.load(weights_only=True)``: loading
never executes code from the file. The module is rebuilt from the model registry
by the architecture config, then the weights are loaded strictly.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hepdl.atomic import atomic_path
from hepdl.errors import HepdlError, ModelFileError
from hepdl.models.registry import build_model

MODEL_FORMAT = "hepdl-model-v1"
_REQUIRED = ("format", "architecture", "state_dict", "representation", "inputs", "task", "classes", "provenance")


def _plain(value: Any, where: str) -> Any:
    """Check (recursively) that ``value`` is a plain JSON-like Python value; tuples become lists."""
    # exact built-in types: a subclass (e.g. torch's TorchVersion str) would pickle as its class
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy/torch scalar
        return value.item()
    raise TypeError(f"{where}: {type(value).__name__} is not a plain Python value (str, number, list, dict)")


def content_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of a model file's content (plain entries as canonical JSON, then every tensor's bytes).

    Stored in the file as ``sha256`` and checked on loading: torch's zip container
    carries no checksum of its own, so a changed byte in the weights would otherwise
    load silently as a different model.
    """
    h = hashlib.sha256()
    plain = {k: v for k, v in content.items() if k not in ("state_dict", "sha256")}
    h.update(json.dumps(plain, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(content["state_dict"]):
        t = content["state_dict"][name].detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{list(content['state_dict'][name].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary name in the same directory, then rename over ``path``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_model(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    architecture: Mapping[str, Any],
    representation: Mapping[str, Any],
    inputs: list[str],
    task: str,
    classes: list[str],
    provenance: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Write a model file (atomically).

    Args:
        architecture: the registry config that rebuilds ``model`` (``model.config``).
        representation: the prepared-data spec (image grid, channels, normalisation,
            field mapping) needed to turn raw ROOT input into this model's inputs.
        inputs: names of the prepared arrays the model reads, e.g. ``["jet_images"]``.
        task: "jets" or "neutrino".
        classes: class names in output order, e.g. ``["background", "signal"]``.
        provenance: training settings, seed, data sources, hepdl version.
        metrics: validation/test metrics, if known.
    """
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    content = {
        "format": MODEL_FORMAT,
        "architecture": _plain(dict(architecture), "architecture"),
        "state_dict": state,
        "representation": _plain(dict(representation), "representation"),
        "inputs": _plain(list(inputs), "inputs"),
        "task": str(task),
        "classes": _plain(list(classes), "classes"),
        "provenance": _plain(dict(provenance), "provenance"),
        "metrics": _plain(dict(metrics or {}), "metrics"),
    }
    content["sha256"] = content_digest(content)
    atomic_torch_save(content, path)


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive (since PyTorch 1.6; hepdl never wrote another)
_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL)\s+([\w.]+)")


def _not_a_model(path: str, reason: str) -> ModelFileError:
    return ModelFileError(f"not a hepdl model file: {path} ({reason})")


def _torch_load_failure(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to retry with
    ``weights_only=False``: that would run whatever code the file holds."""
    text = str(err)
    found = _GLOBAL.search(text)
    if found:
        return (f"holding code or classes other than tensors and plain values ({found.group(1)}), which "
                "a hepdl model file never holds; it was not loaded, since loading it could run that code")
    if "weights only" in text.lower() or isinstance(err, pickle.UnpicklingError):
        return "holding pickled objects other than tensors and plain values; it was not loaded"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    if "weights_only" in first:  # never pass torch's advice on
        first = type(err).__name__
    return f"a damaged or truncated PyTorch archive: {first}"


def _sniff(path: str) -> None:
    """Refuse what is not a zip archive before torch sees it: torch would try an old pickle
    format on any other bytes, which gives raw errors (IndexError, KeyError) and warnings."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as err:
        raise ModelFileError(f"{path}: model file cannot be read ({err.strerror})") from None
    if not head:
        raise _not_a_model(path, "empty file, 0 bytes")
    if head[:4] != _ZIP_MAGIC:
        if head[:1] == b"\x80":
            kind = "a Python pickle, not the zip archive torch.save writes; not loaded, since a pickle can run code"
        elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
            kind = f"a text file, starting {head[:20].decode()!r}"
        else:
            kind = "not the zip archive torch.save writes"
        raise _not_a_model(path, kind)


def read_model_content(path: str | os.PathLike) -> dict[str, Any]:
    """Load a model file's dict with ``weights_only=True``; any failure is a :class:`ModelFileError`.

    Anything that is not a hepdl model gives ``not a hepdl model file: PATH (reason)``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: model file does not exist")
    if not os.path.isfile(path):
        raise _not_a_model(path, "not a regular file")
    _sniff(path)
    try:
        with warnings.catch_warnings():
            # torch warns on pickle protocols it did not write; the load fails or succeeds regardless
            warnings.simplefilter("ignore", UserWarning)
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any bytes can reach here; each failure means "not a model"
        raise _not_a_model(path, _torch_load_failure(err)) from None
    if not isinstance(content, dict) or content.get("format") != MODEL_FORMAT:
        what = type(content).__name__
        if isinstance(content, dict):
            what = f"a dict with keys {sorted(map(str, content))[:6]}"
        raise _not_a_model(path, f"a PyTorch file holding {what}, without hepdl's format mark {MODEL_FORMAT!r}; "
                           "hepdl train writes model files")
    missing = [k for k in _REQUIRED if k not in content]
    if missing:
        raise ModelFileError(f"{path}: damaged hepdl model file: it lacks {missing}")
    # files written before the checksum existed have none; every newer one must match it
    if "sha256" in content:
        try:
            digest = content_digest(content)
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            raise ModelFileError(f"{path}: model file content is malformed ({err})") from None
        if digest != content["sha256"]:
            raise ModelFileError(f"{path}: model file checksum mismatch: its content was changed after it was "
                                 "written (corrupted or tampered); refusing to load it")
    return content


def load_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_model`; returns ``(model in eval mode, info)``.

    ``info`` holds every entry of the file except the weights: architecture,
    representation, inputs, task, classes, provenance, metrics.
    """
    content = read_model_content(path)
    try:
        model = build_model(content["architecture"])
        model.load_state_dict(content["state_dict"], strict=True)
    except (HepdlError, RuntimeError, TypeError, KeyError) as err:
        raise ModelFileError(f"{os.fspath(path)}: weights do not fit the architecture it names: "
                             f"{' '.join(str(err).split())}") from None
    info = {k: v for k, v in content.items() if k not in ("state_dict", "sha256")}
    return model.to(device).eval(), info
