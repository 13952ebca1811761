"""Per-jet scores back to the events: a friend tree aligned with the event tree and its jet collection.

:func:`hepdl.io.events.jets_from_events` keeps, for every jet entry, its input file
(``event_file``), its entry there (``event_entry``) and its index in the collection
(``jet_index``). :func:`scores_to_events` turns a per-jet score tree (``hepdl score``'s friend
of the jets file) into one entry per event of one input file, with a jagged branch
``<collection>_<score>`` holding one value per jet of the collection (``default`` for jets that
were not selected), so in ROOT::

    Events->AddFriend("scores", "events.scores.root");
    Events->Draw("FatJet_msoftdrop", "scores.FatJet_score > 0.8");
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import awkward as ak
import numpy as np

from hepdl.errors import InputError
from hepdl.io.events import SOURCE_BRANCHES
from hepdl.io.read import DEFAULT_STEP_SIZE, open_tree
from hepdl.io.write import TreeWriter


def scores_to_events(
    jets_path: str | os.PathLike,
    scores_path: str | os.PathLike,
    events_path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    collection: str = "FatJet",
    tree: str = "Events",
    jets_tree: str = "events",
    scores_tree: str = "scores",
    file_index: int = 0,
    branches: Sequence[str] | None = None,
    default: float = -1.0,
    output_tree: str = "scores",
    step_size: int | str = DEFAULT_STEP_SIZE,
) -> dict:
    """Write ``output``: one entry per entry of ``tree`` in ``events_path`` (the input file number
    ``file_index`` of the jets file), branches ``<collection>_<score branch>`` aligned with the
    collection. Streams the events in chunks; the per-jet bookkeeping (12 bytes a jet) is read
    whole, each chunk's scores by entry range."""
    jets_path, scores_path, events_path = map(os.fspath, (jets_path, scores_path, events_path))
    jets = open_tree(jets_path, jets_tree)
    missing = [b for b in SOURCE_BRANCHES if b not in jets.keys()]
    if missing:
        raise InputError(f"{jets_path}, tree {jets_tree!r}: no branch {missing[0]!r}; the jets file must come "
                         "from hepdl jets-from-events")
    scores = open_tree(scores_path, scores_tree)
    if scores.num_entries != jets.num_entries:
        raise InputError(f"{scores_path}, tree {scores_tree!r}: {scores.num_entries} entries but {jets_path} "
                         f"has {jets.num_entries} jets; the scores must be the jets file's friend")
    keys = list(scores.keys())
    # every branch but the counters of jagged ones (nX beside X_*)
    names = list(branches) if branches else [
        k for k in keys if not (k.startswith("n") and any(o.startswith(k[1:] + "_") for o in keys))]
    absent = [b for b in names if b not in scores.keys()]
    if absent or not names:
        raise InputError(f"{scores_path}, tree {scores_tree!r}: no score branch {absent[0] if absent else ''!r} "
                         f"(branches: {', '.join(scores.keys())})")
    src = jets.arrays(list(SOURCE_BRANCHES), library="np")
    key = src["event_file"].astype(np.int64) * (1 << 40) + src["event_entry"].astype(np.int64)
    if np.any(np.diff(key) < 0):
        raise InputError(f"{jets_path}: jets are not in input order (event_file, event_entry); "
                         "write them with hepdl jets-from-events, without reordering")
    events = open_tree(events_path, tree)
    counter = f"n{collection}"
    if counter not in events.keys():
        raise InputError(f"{events_path}, tree {tree!r}: no counter {counter!r} of collection {collection!r}")
    base = np.int64(file_index) * (1 << 40)
    lo_all, hi_all = np.searchsorted(key, [base, base + (1 << 40)])
    if hi_all > lo_all and key[hi_all - 1] - base >= events.num_entries:
        raise InputError(f"{jets_path}: jets of input {file_index} come from entry {key[hi_all - 1] - base} but "
                         f"{events_path} tree {tree!r} has {events.num_entries} entries; wrong events file")
    n_filled = 0
    start = 0
    with TreeWriter(output, output_tree) as out:
        for raw in events.iterate([counter], step_size=step_size, library="np"):
            counts = raw[counter].astype(np.int64)
            stop = start + len(counts)
            lo, hi = np.searchsorted(key, [base + start, base + stop])
            offsets = np.concatenate([[0], np.cumsum(counts)])
            entry = src["event_entry"][lo:hi] - start
            index = src["jet_index"][lo:hi].astype(np.int64)
            bad = np.flatnonzero(index >= counts[entry])
            if bad.size:
                b = bad[0]
                raise InputError(f"{events_path}, tree {tree!r}: jet {index[b]} of entry {start + entry[b]} has a "
                                 f"score but {counter} is {counts[entry[b]]} there; the jets file "
                                 f"{jets_path} was not made from this file (input {file_index})")
            position = offsets[entry] + index
            values = scores.arrays(names, entry_start=int(lo), entry_stop=int(hi), library="np")
            chunk = {}
            for name in names:
                flat = np.full(offsets[-1], default, dtype=np.float32)
                flat[position] = values[name]
                chunk[f"{collection}_{name}"] = ak.unflatten(flat, counts)
            out.extend(chunk)
            n_filled += hi - lo
            start = stop
    return {"output": os.fspath(output), "tree": output_tree, "events": start, "jets_scored": int(n_filled),
            "branches": [f"{collection}_{n}" for n in names]}
