"""Apply a trained hepdl model to events: load the model file, rebuild its inputs, score.

    model = hepdl.load_model("results/jets/cnn/model.pt")
    scores = model.predict("ntuple.root")              # P(signal) per entry, (N,)
    hepdl.score_file(model, "ntuple.root", "ntuple.scores.root")   # a friend tree

A model file carries the representation spec and the logical-field mapping it was
trained with (DESIGN.md, "A model file"), so the tensors built here from raw ROOT
input are exactly those of the prepared dataset the model saw in training.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np
import torch
from torch import nn

from hepdl.errors import ConfigError, HepdlError, InputError
from hepdl.io.read import (
    DEFAULT_STEP_SIZE,
    ChunkSource,
    apply_cut,
    iterate_events,
    name_branches,
    open_tree,
)
from hepdl.io.write import TreeWriter
from hepdl.models.model_file import load_model_file
from hepdl.represent.representations import optional_input_fields, representation, spec_fields
from hepdl.train.device import choose_device

#: Entries per slice when scoring an in-memory awkward array (bounds the image memory:
#: 10k jets x 3 x 32 x 32 float32 is 120 MB).
ARRAY_SLICE = 10_000
_BRANCH = re.compile(r"[^A-Za-z0-9_]")


def forward_logits(module: nn.Module, inputs: Sequence[str], tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The model's logits: a one-input model takes its array, a multi-input one its arrays in ``inputs`` order."""
    if len(inputs) == 1:
        return module(tensors[inputs[0]])
    return module(*[tensors[k] for k in inputs])


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid of a single logit per entry (binary), softmax over classes otherwise (as in training)."""
    return torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, dim=-1)


class TrainedModel:
    """A trained classifier with everything needed to score raw events.

    Attributes:
        module: the torch module (eval mode, on ``device``).
        classes: class names in output order, e.g. ``["background", "signal"]``.
        inputs: the prepared arrays the module reads, e.g. ``["jet_images"]``.
        task: the task's name (:mod:`hepdl.tasks`).
        representation: ``{"spec": ..., "fields": ..., "feature_names": ...}`` from training.
        info: everything in the model file but the weights (architecture, provenance, metrics).
        device: where batches are evaluated.
    """

    def __init__(self, module: nn.Module, info: Mapping[str, Any], device: torch.device, path: str = "<memory>") -> None:
        self.module = module.eval()
        self.info = dict(info)
        self.device = device
        self.path = path
        self.classes: list[str] = list(info["classes"])
        self.inputs: list[str] = list(module.input_keys)
        self.task: str = str(info["task"])
        self.representation: dict[str, Any] = dict(info["representation"])
        spec = self.representation.get("spec") or {}
        if spec.get("task") != self.task:
            raise HepdlError(f"{path}: the model file's representation spec is missing or not for task {self.task!r}; "
                             "it cannot rebuild the model's inputs from events")

    def __repr__(self) -> str:
        arch = self.info.get("architecture", {}).get("name", "?")
        return f"TrainedModel({arch!r}, task={self.task!r}, inputs={self.inputs}, classes={self.classes}, device={self.device})"

    @property
    def binary(self) -> bool:
        """True when the model gives one score per entry, P(``classes[1]``)."""
        return len(self.classes) == 2

    @property
    def metrics(self) -> dict[str, Any]:
        """Validation/test metrics stored at training time."""
        return dict(self.info.get("metrics", {}))

    # ------------------------------------------------------------------ fields

    def field_mapping(self, fields: Mapping[str, str] | None = None) -> dict[str, str]:
        """Logical -> branch mapping for reading input: the stored one, updated with ``fields``.

        Only the fields the model's inputs are built from are read (no label, no weight,
        so real data without truth scores as well); optional details a representation reads
        (e.g. the track impact parameters) only if the model reads its arrays and was trained with them.
        """
        spec = self.representation["spec"]
        required, optional = spec_fields(spec)
        stored = dict(self.representation.get("fields") or {})
        override = dict(fields or {})
        unknown = sorted(set(override) - set(required) - set(optional))
        if unknown:
            raise ConfigError(f"fields: unknown logical fields {unknown}; this model reads {list(required)}")
        mapping = {f: override.get(f, stored.get(f, f)) for f in required}
        for f in optional_input_fields(spec, self.inputs):
            if f in stored or f in override:
                mapping[f] = override.get(f, stored.get(f, f))
        return mapping

    def default_tree(self) -> str:
        """The tree name of the training input, else ``"events"``."""
        sources = self.info.get("provenance", {}).get("sources") or [{}]
        return str((sources[0] or {}).get("tree") or "events")

    # ------------------------------------------------------------------ arrays

    def prepare(self, events: ak.Array) -> dict[str, np.ndarray]:
        """The model's input arrays for a chunk of events (logical field names)."""
        if len(events) == 0:
            return {}
        # Only the model's inputs: a CNN's scoring skips the N-subjettiness of the expert variables.
        arrays = representation(events, self.representation["spec"], only=self.inputs)
        missing = [k for k in self.inputs if k not in arrays]
        if missing:
            raise HepdlError(f"{self.path}: the representation does not produce the model input {missing[0]!r}")
        out = {k: arrays[k] for k in self.inputs}
        for k, a in out.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))
                raise InputError(f"non-finite values in the {k!r} representation of {bad.size} entries "
                                 f"(first: chunk entry {bad[0]})")
        return out

    @torch.no_grad()
    def predict_arrays(self, arrays: Mapping[str, np.ndarray], *, batch_size: int = 1024,
                       logits: bool = False) -> np.ndarray:
        """Scores (or raw logits) for prepared input arrays ``{input name: (N, ...)}``, in batches."""
        missing = [k for k in self.inputs if k not in arrays]
        if missing:
            raise InputError(f"input arrays lack {missing}; the model reads {self.inputs}")
        n = len(arrays[self.inputs[0]])
        if any(len(arrays[k]) != n for k in self.inputs):
            raise InputError(f"input arrays have different lengths: { {k: len(arrays[k]) for k in self.inputs} }")
        width = () if self.binary else (len(self.classes),)
        out = np.empty((n, *width), dtype=np.float32)
        for start in range(0, n, batch_size):
            batch = {k: torch.tensor(np.asarray(arrays[k][start:start + batch_size])).to(self.device)
                     for k in self.inputs}
            z = forward_logits(self.module, self.inputs, batch)
            out[start:start + len(z)] = (z if logits else probabilities(z)).float().cpu().numpy()
        return out

    # ------------------------------------------------------------------ events

    def iter_scores(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike] | ak.Array,
        *,
        tree: str | None = None,
        fields: Mapping[str, str] | None = None,
        step_size: int | str = DEFAULT_STEP_SIZE,
        batch_size: int = 1024,
        cut: str | None = None,
        progress: bool = False,
    ) -> Iterator[tuple[np.ndarray, ChunkSource | None]]:
        """Yield ``(scores, source)`` chunk by chunk; ``source`` is None for an in-memory array.

        Memory stays bounded by ``step_size`` whatever the number of entries.
        """
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(unit="entry", desc="score", leave=False, file=sys.stderr)
        try:
            mapping = None if isinstance(source, ak.Array) else self.field_mapping(fields)
            for chunk, where in self._chunks(source, tree, fields, step_size, cut):
                try:
                    arrays = self.prepare(chunk)
                except InputError as err:  # it sees logical fields only: add the file, entries, branch
                    if where is None:
                        raise
                    raise InputError(f"{where.path}, tree {where.tree!r}, entries {where.entry_start}.."
                                     f"{where.entry_stop - 1}: {name_branches(str(err), mapping)}") from None
                if not arrays:
                    scores = np.empty((0,) if self.binary else (0, len(self.classes)), np.float32)
                else:
                    scores = self.predict_arrays(arrays, batch_size=batch_size)
                if bar is not None:
                    bar.update(len(scores))
                yield scores, where
        finally:
            if bar is not None:
                bar.close()

    def _chunks(self, source, tree, fields, step_size, cut) -> Iterator[tuple[ak.Array, ChunkSource | None]]:
        if isinstance(source, ak.Array):
            events = source
            if fields:
                # an in-memory array under the user's names: pick the mapped ones
                missing = [b for b in fields.values() if b not in events.fields]
                if missing:
                    raise InputError(f"awkward array has no field {missing[0]!r}; fields: {events.fields}")
                events = ak.zip({logical: events[b] for logical, b in fields.items()}
                                | {f: events[f] for f in events.fields if f not in fields and f not in fields.values()},
                                depth_limit=1)
            missing = [f for f in self.field_mapping() if f not in events.fields]
            if missing:
                raise InputError(f"awkward array lacks the logical fields {missing}; it has {events.fields}")
            events = events[[f for f in self.field_mapping() if f in events.fields]]
            events = apply_cut(events, cut, "awkward array")
            rows = step_size if isinstance(step_size, int) else ARRAY_SLICE
            for start in range(0, max(len(events), 1), rows):
                yield events[start:start + rows], None
            return
        mapping = self.field_mapping(fields)
        tree = tree or self.default_tree()
        yield from iterate_events(source, tree, mapping, cut=cut, step_size=step_size, with_source=True)

    def predict(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike] | ak.Array,
        *,
        tree: str | None = None,
        fields: Mapping[str, str] | None = None,
        step_size: int | str = DEFAULT_STEP_SIZE,
        batch_size: int = 1024,
        cut: str | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Score every (selected) entry of ROOT files or of an awkward array of events.

        Args:
            source: ROOT file path(s) or glob(s), read chunk by chunk; or an awkward array
                with logical field names (``calo_eta``, ``jet_pt``, ... or ``hit_*``).
            tree: tree name; default: the tree the model was trained on (else ``"events"``).
            fields: ``{logical: branch}`` for files whose branch names differ from the
                training input's; unnamed fields keep the stored mapping.
            step_size: entries, or a size such as ``"50 MB"``, per chunk read.
            batch_size: entries per forward pass on the model's device.
            cut: selection in logical names (``"jet_pt > 300"``); only selected entries are scored.

        Returns:
            float32 ``(N,)`` P(signal) for a binary model, ``(N, K)`` class probabilities
            (columns in ``classes`` order) otherwise; in input order.
        """
        parts = [s for s, _ in self.iter_scores(source, tree=tree, fields=fields, step_size=step_size,
                                                 batch_size=batch_size, cut=cut, progress=progress)]
        return np.concatenate(parts) if parts else np.empty((0,), np.float32)

    def branch_names(self, prefix: str = "score") -> list[str]:
        """Output branch names: ``prefix`` for a binary model, ``prefix_<class>`` per class otherwise."""
        if self.binary:
            return [prefix]
        return [f"{prefix}_{_BRANCH.sub('_', c)}" for c in self.classes]

    def score_branches(self, scores: np.ndarray, prefix: str = "score") -> dict[str, np.ndarray]:
        """``{branch: (N,) float32}`` for scores from :meth:`predict` (one branch per class if multi-class)."""
        names = self.branch_names(prefix)
        if self.binary:
            return {names[0]: np.asarray(scores, np.float32)}
        return {name: np.ascontiguousarray(scores[:, i], np.float32) for i, name in enumerate(names)}


def load_model(path: str | os.PathLike, device: str | torch.device = "auto") -> TrainedModel:
    """Load a hepdl model file for scoring (``torch.load(weights_only=True)``: no code from the file runs).

    ``device``: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:1"``, ...
    Raises :class:`~hepdl.errors.HepdlError` for a missing, corrupt or tampered file.
    """
    dev = choose_device(device) if isinstance(device, str) else torch.device(device)
    module, info = load_model_file(path, device=dev)
    return TrainedModel(module, info, dev, path=os.fspath(path))


def friend_path(input_path: str | os.PathLike, out_dir: str | os.PathLike, suffix: str = ".scores.root") -> str:
    """Where the friend file of ``input_path`` goes: ``out_dir/<input stem><suffix>``."""
    stem = os.path.basename(os.fspath(input_path))
    stem = stem[:-5] if stem.endswith(".root") else stem
    return os.path.join(os.fspath(out_dir), stem + suffix)


def score_file(
    model: TrainedModel,
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    tree: str | None = None,
    fields: Mapping[str, str] | None = None,
    friend_tree: str = "scores",
    branch_prefix: str = "score",
    step_size: int | str = DEFAULT_STEP_SIZE,
    batch_size: int = 1024,
    progress: bool = False,
) -> int:
    """Score every entry of one ROOT file into a friend tree ``friend_tree`` in ``output``; return entries.

    The output has one entry per input entry, in the same order (no cut: a friend
    tree must line up with its tree), so in ROOT::

        events->AddFriend("scores", "ntuple.scores.root");
        events->Draw("jet_mass", "scores.score > 0.8");

    Written chunk by chunk under a temporary name and renamed when complete.
    """
    path = os.fspath(path)
    tree = tree or model.default_tree()
    expected = int(open_tree(path, tree).num_entries)
    with TreeWriter(output, friend_tree) as out:
        for scores, _ in model.iter_scores(path, tree=tree, fields=fields, step_size=step_size,
                                           batch_size=batch_size, progress=progress):
            if len(scores):
                out.extend(model.score_branches(scores, branch_prefix))
        if out.n_entries != expected:
            raise InputError(f"{path}, tree {tree!r}: scored {out.n_entries} entries, the tree has {expected}")
    return expected
