"""``jets_from_events``: event-level files (NanoAOD, PFNano, Delphes-like trees) to one entry per jet.

A jet collection (``FatJet``: a counter ``nFatJet`` and branches ``FatJet_*``) is exploded into
one entry per selected jet, its fields written as ``jet_<field>``; constituents from other
collections are attached per jet as ``<prefix>_<field>`` (by PFNano index links, or by DeltaR
to the jet axis); a truth collection gives ``label`` and ``truth_pdgid``. Each entry keeps
where it came from: ``event_file`` (the input's position in the list), ``event_entry`` (its
entry in that file) and ``jet_index`` (its index in the collection), so that scores go back to
the events (:mod:`hepdl.io.event_scores`). Reading streams in chunks (``uproot.iterate``),
each chunk is processed in whole-array operations (:mod:`hepdl.io.jet_matching`), and the
output appears only when complete (:class:`hepdl.io.TreeWriter`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepdl.errors import InputError
from hepdl.io.jet_matching import (
    JetSelection,
    TruthMatch,
    attach_by_dr,
    attach_by_links,
    check_indices,
    fields_of,
    link_field_names,
    select_jets,
    truth_labels,
)
from hepdl.io.read import DEFAULT_STEP_SIZE, expand_paths, open_tree
from hepdl.io.write import TreeWriter

#: Event-level branches copied onto every jet when the input has them (NanoAOD's event id).
EVENT_BRANCHES = ("run", "luminosityBlock", "event")
#: Per-jet bookkeeping branches written by :func:`jets_from_events`.
SOURCE_BRANCHES = ("event_file", "event_entry", "jet_index")

_SPEC = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9]*)=(?P<collection>[A-Za-z_][A-Za-z0-9_]*)(:(?P<cut>.+))?$")


@dataclass(frozen=True)
class ConstituentSource:
    """Constituents from ``collection``, written per jet as ``<prefix>_<field>``; ``cut`` (an
    expression in the collection's field names, e.g. ``charge == 0``) keeps a subset of them."""

    prefix: str
    collection: str
    cut: str | None = None

    @classmethod
    def parse(cls, text: str) -> ConstituentSource:
        """``PREFIX=COLLECTION[:CUT]``, e.g. ``calo=PFCands:charge == 0`` or ``trk=Track``."""
        m = _SPEC.match(text.strip())
        if not m:
            raise InputError(f"--constituents {text!r}: expected PREFIX=COLLECTION[:CUT], e.g. 'trk=PFCands:charge != 0'")
        if m["prefix"] == "jet":
            raise InputError(f"--constituents {text!r}: prefix 'jet' is taken by the jet's own fields")
        return cls(m["prefix"], m["collection"], (m["cut"] or "").strip() or None)


def _collection_branches(keys: Sequence[str], name: str, where: str, what: str) -> list[str]:
    fields = fields_of(keys, name)
    if not fields:
        collections = sorted({k[1:] for k in keys if k.startswith("n") and fields_of(keys, k[1:])})
        close = difflib.get_close_matches(name, collections, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(f"{where}: no {what} collection {name!r} (no branches {name}_*); "
                         f"{hint}collections in the tree: {', '.join(collections) or 'none'}")
    return fields


def _check_collection_counts(raw: ak.Array, name: str, fields: Sequence[str], counter: str | None,
                             where: str, entry0: int) -> np.ndarray:
    """Per-event object count of a collection; raises where its branches (or counter) disagree."""
    first = f"{name}_{fields[0]}"
    counts = ak.to_numpy(ak.num(raw[first], axis=1))
    others = [(f"{name}_{f}", ak.to_numpy(ak.num(raw[f"{name}_{f}"], axis=1))) for f in fields[1:]]
    if counter is not None:
        others.append((counter, ak.to_numpy(raw[counter]).astype(np.int64)))
    for branch, n in others:
        bad = np.flatnonzero(n != counts)
        if bad.size:
            e = bad[0]
            raise InputError(
                f"{where}: collection {name!r}: {branch} says {n[e]} objects but {first} has "
                f"{counts[e]} in entry {entry0 + e} ({bad.size} entries disagree); the branches "
                "of a collection (and its counter) must describe the same objects"
            )
    return counts


def _zip(raw: ak.Array, name: str, fields: Sequence[str]) -> ak.Array:
    return ak.zip({f: raw[f"{name}_{f}"] for f in fields})


def _apply_cut(cands: ak.Array, source: ConstituentSource, where: str) -> ak.Array:
    if source.cut is None:
        return cands
    namespace = {f: cands[f] for f in cands.fields} | {"np": np, "abs": np.abs}
    try:
        # The cut is the user's own command-line text, in the collection's field names.
        mask = eval(compile(source.cut, "<cut>", "eval"), {"__builtins__": {}}, namespace)  # noqa: S307
        return cands[mask]
    except Exception as err:
        raise InputError(f"{where}: constituent cut {source.cut!r} on {source.collection!r} cannot be "
                         f"evaluated ({' '.join(str(err).split())}); fields: {cands.fields}") from None


def jets_from_events(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    tree: str = "Events",
    jets: str = "FatJet",
    selection: JetSelection = JetSelection(),  # noqa: B008 - frozen dataclass
    constituents: Sequence[ConstituentSource] = (),
    links: str | None = None,
    dr: float = 0.8,
    truth: TruthMatch | None = None,
    jet_fields: Sequence[str] | None = None,
    event_branches: Sequence[str] = EVENT_BRANCHES,
    step_size: int | str = DEFAULT_STEP_SIZE,
    output_tree: str = "events",
) -> dict:
    """Write one entry per selected jet of collection ``jets`` in ``inputs`` to ``output``.

    Constituents come by the index links of collection ``links`` (PFNano: ``FatJetPFCands``
    with ``jetIdx`` and ``pFCandsIdx``) when it is given, else by ``DeltaR < dr`` to the jet
    axis (the constituent collection needs ``eta`` and ``phi``). With ``truth`` each jet gets
    ``label`` (1: all hadronic decay products of a W/Z/top/H within ``truth.dr``) and
    ``truth_pdgid``. Returns a summary (jets written, events read, signal jets).
    """
    files = expand_paths(inputs)
    n_jets = n_events = n_signal = 0
    with TreeWriter(output, output_tree) as out:
        for file_index, path in enumerate(files):
            obj = open_tree(path, tree)
            where = f"{path}, tree {tree!r}"
            keys = list(obj.keys())
            jet_all = _collection_branches(keys, jets, where, "jet")
            missing = [f for f in ("pt", "eta", "phi") if f not in jet_all]
            if missing:
                raise InputError(f"{where}: jet collection {jets!r} has no {jets}_{missing[0]} branch")
            if jet_fields is not None:
                unknown = [f for f in jet_fields if f not in jet_all]
                if unknown:
                    raise InputError(f"{where}: jet collection {jets!r} has no {jets}_{unknown[0]} branch")
            written_fields = list(dict.fromkeys(["pt", "eta", "phi", *(jet_fields or jet_all)]))
            colls = {jets: written_fields}
            for source in constituents:
                colls[source.collection] = _collection_branches(keys, source.collection, where, "constituent")
                if links is None and not {"eta", "phi"} <= set(colls[source.collection]):
                    raise InputError(f"{where}: collection {source.collection!r} needs eta and phi for "
                                     "DeltaR matching (or give the index links)")
            link_names = {}
            if constituents and links is not None:
                link_all = _collection_branches(keys, links, where, "index-link")
                for source in constituents:
                    names = link_field_names(jets, source.collection, links)
                    absent = [n for n in names if n not in link_all]
                    if absent:
                        raise InputError(f"{where}: index-link collection {links!r} has no {links}_{absent[0]} "
                                         f"(fields: {', '.join(link_all)})")
                    link_names[source.collection] = names
                colls[links] = sorted({n for names in link_names.values() for n in names})
            if truth is not None:
                need = truth.fields
                have = _collection_branches(keys, truth.collection, where, "truth")
                absent = [f for f in need if f not in have]
                if absent:
                    raise InputError(f"{where}: truth collection {truth.collection!r} has no "
                                     f"{truth.collection}_{absent[0]} branch")
                colls[truth.collection] = need
            copied = [b for b in event_branches if b in keys]
            counters = {c: f"n{c}" if f"n{c}" in keys else None for c in colls}
            branches = [f"{c}_{f}" for c, fs in colls.items() for f in fs]
            branches += [n for n in counters.values() if n] + copied
            start = 0
            for raw in obj.iterate(list(dict.fromkeys(branches)), step_size=step_size, library="ak"):
                counts = {c: _check_collection_counts(raw, c, fs, counters[c], where, start)
                          for c, fs in colls.items()}
                chunk = _explode(raw, colls, counts, jets, constituents, links, link_names, dr, truth,
                                 selection, where, start)
                if chunk is not None:
                    n = len(chunk["jet_index"])
                    event = chunk.pop("_event")
                    for b in copied:
                        chunk[b] = ak.to_numpy(raw[b])[event]
                    chunk["event_file"] = np.full(n, file_index, dtype=np.int32)
                    chunk["event_entry"] = (chunk["event_entry"] + start).astype(np.int64)
                    out.extend(chunk)
                    n_jets += n
                    n_signal += int(np.sum(chunk.get("label", 0)))
                start += len(raw)
            n_events += start
    return {"output": os.fspath(output), "tree": output_tree, "inputs": files, "events": n_events,
            "jets": n_jets, "signal_jets": n_signal if truth is not None else None}


def _explode(raw, colls, counts, jets, constituents, links, link_names, dr, truth, selection,
             where, entry0) -> dict | None:
    """One chunk's selected jets as per-jet arrays (None when no jet is selected)."""
    jet = _zip(raw, jets, colls[jets])
    event, index = select_jets(jet, selection)
    if len(event) == 0:
        return None
    jet_offsets = np.concatenate([[0], np.cumsum(counts[jets])])
    flat_pos = jet_offsets[event] + index
    out: dict = {f"jet_{f}": ak.to_numpy(ak.flatten(jet[f]))[flat_pos] for f in colls[jets]}
    eta, phi = out["jet_eta"].astype(np.float64), out["jet_phi"].astype(np.float64)
    for source in constituents:
        cands = _zip(raw, source.collection, colls[source.collection])
        if links is not None:
            jet_field, cand_field = link_names[source.collection]
            jet_idx = raw[f"{links}_{jet_field}"]
            cand_idx = raw[f"{links}_{cand_field}"]
            check_indices(jet_idx, counts[jets], f"{links}_{jet_field}", jets, entry0, where=where)
            check_indices(cand_idx, counts[source.collection], f"{links}_{cand_field}", source.collection,
                          entry0, where=where)
            per_jet = attach_by_links(cands, jet_idx, cand_idx, event, index, counts[jets])
        else:
            per_jet = attach_by_dr(cands, eta, phi, event, dr)
        per_jet = _apply_cut(per_jet, source, where)
        for f in per_jet.fields:
            out[f"{source.prefix}_{f}"] = per_jet[f]
    if truth is not None:
        gen = _zip(raw, truth.collection, colls[truth.collection])
        out["label"], out["truth_pdgid"] = truth_labels(gen, eta, phi, event, truth, entry0, where)
    out["event_entry"] = event.astype(np.int64)
    out["jet_index"] = index.astype(np.int32)
    out["_event"] = event
    return out
