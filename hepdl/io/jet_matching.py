"""Event-level collections to per-jet arrays: selection, constituents by index links or DeltaR,
truth labels from a GenPart-style record. Arrays in, arrays out; every operation is on whole
chunks (flat numpy or awkward), never a Python loop per event or jet.

Conventions: a chunk holds ``N`` events; a collection is a jagged awkward array of records
(one list per event); a *selected jet* is one entry of the output, known by its event in the
chunk (``event``) and its index in the collection (``index``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepdl.errors import InputError

#: |pdgId| of the quarks that count as hadronic decay products by default.
QUARKS = (1, 2, 3, 4, 5)
#: Mothers whose hadronic decays make a signal jet by default: top, Z, W, H.
HEAVY_MOTHERS = (6, 23, 24, 25)
#: Longest mother chain followed (NanoAOD keeps ~10 copies of a boosted W); a cycle stops here.
MAX_GENERATIONS = 100


@dataclass(frozen=True)
class JetSelection:
    """Which jets of the collection become entries: ``pt > pt_min``, ``|eta| < eta_max`` and
    among the ``leading`` highest-pT jets of the event (before the pT and eta cuts). None: no cut."""

    pt_min: float | None = None
    eta_max: float | None = None
    leading: int | None = None


@dataclass(frozen=True)
class TruthMatch:
    """Truth labels. ``mode="decay"`` (the default): a jet is signal (label 1) when all hadronic decay products of one mother lie within
    ``dr`` of its axis. Mothers: ``|pdgId|`` in ``mothers``; products: first copies of
    ``|pdgId|`` in ``products`` with that mother among their ancestors (via the mother index);
    a mother needs ``min_products`` of them (a leptonic W has none and never matches).
    ``mode="parton"``: a jet is signal when a particle with |pdgId| in ``mothers`` (and, if
    ``status`` is given, one of those statuses, e.g. 23: outgoing hard-process partons) lies
    within ``dr`` (e.g. quark-initiated jets, ``mothers=QUARKS, status=(23,)``).
    ``status`` restricts the mothers in both modes."""

    collection: str = "GenPart"
    mode: str = "decay"
    mothers: tuple[int, ...] = HEAVY_MOTHERS
    products: tuple[int, ...] = QUARKS
    dr: float = 0.8
    min_products: int = 2
    pdg_field: str = "pdgId"
    mother_field: str = "genPartIdxMother"
    status: tuple[int, ...] = ()
    status_field: str = "status"

    def __post_init__(self) -> None:
        if self.mode not in ("decay", "parton"):
            raise InputError(f"truth mode must be 'decay' or 'parton', not {self.mode!r}")

    @property
    def fields(self) -> list[str]:
        """The truth collection's fields the match reads."""
        need = [self.pdg_field, "eta", "phi"]
        need += [self.mother_field] if self.mode == "decay" else []
        return need + ([self.status_field] if self.status else [])


def delta_phi(a, b):
    """a - b wrapped into [-pi, pi)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def select_jets(jets: ak.Array, selection: JetSelection) -> tuple[np.ndarray, np.ndarray]:
    """``(event, index)`` of the selected jets, flat, in event order then collection order."""
    mask = ak.ones_like(jets.pt, dtype=bool)
    if selection.leading is not None:
        rank = ak.argsort(ak.argsort(jets.pt, axis=1, ascending=False, stable=True), axis=1)
        mask = mask & (rank < selection.leading)
    if selection.pt_min is not None:
        mask = mask & (jets.pt > selection.pt_min)
    if selection.eta_max is not None:
        mask = mask & (abs(jets.eta) < selection.eta_max)
    counts = ak.to_numpy(ak.num(jets.pt, axis=1))
    flat = ak.to_numpy(ak.flatten(mask))
    event = np.repeat(np.arange(len(counts)), counts)[flat]
    index = ak.to_numpy(ak.flatten(ak.local_index(jets.pt, axis=1)))[flat]
    return event, index


def check_indices(idx: ak.Array, sizes: np.ndarray, what: str, target: str, entry0: int,
                  allow_minus_one: bool = False, where: str = "") -> None:
    """Raise naming the file (``where``), the index branch, the collection it points into and the
    first entry where an index of ``idx`` (jagged) lies outside ``[0, size)``."""
    low = -1 if allow_minus_one else 0
    bad = ak.to_numpy(ak.any((idx < low) | (idx >= sizes), axis=1))
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        values = ak.to_list(idx[e])
        raise InputError(
            f"{where + ': ' if where else ''}index link {what} out of range in entry {entry0 + e}: values "
            f"{values} but collection {target!r} has {int(sizes[e])} objects there (an index must lie in "
            f"[{low}, {int(sizes[e])}))"
        )


def attach_by_links(
    cands: ak.Array, jet_idx: ak.Array, cand_idx: ak.Array, event: np.ndarray, index: np.ndarray,
    n_jets: np.ndarray,
) -> ak.Array:
    """Constituents of each selected jet through a link collection (PFNano ``FatJetPFCands``):
    link ``k`` of an event says candidate ``cand_idx[k]`` belongs to jet ``jet_idx[k]``.
    Returns one list of candidate records per selected jet, in link order."""
    n_links = ak.to_numpy(ak.num(jet_idx, axis=1))
    link_event = np.repeat(np.arange(len(n_links)), n_links)
    jet_offsets = np.concatenate([[0], np.cumsum(n_jets)])
    cand_counts = ak.to_numpy(ak.num(cands, axis=1))
    cand_offsets = np.concatenate([[0], np.cumsum(cand_counts)])
    # where each jet of the chunk went in the output (-1: not selected)
    position = np.full(jet_offsets[-1], -1, dtype=np.int64)
    position[jet_offsets[event] + index] = np.arange(len(event))
    link_pos = position[jet_offsets[link_event] + ak.to_numpy(ak.flatten(jet_idx))]
    link_cand = cand_offsets[link_event] + ak.to_numpy(ak.flatten(cand_idx))
    keep = link_pos >= 0
    link_pos, link_cand = link_pos[keep], link_cand[keep]
    order = np.argsort(link_pos, kind="stable")
    flat_cands = ak.flatten(cands)[link_cand[order]]
    return ak.unflatten(flat_cands, np.bincount(link_pos, minlength=len(event)))


def attach_by_dr(cands: ak.Array, jet_eta: np.ndarray, jet_phi: np.ndarray, event: np.ndarray,
                 dr: float) -> ak.Array:
    """Candidates (fields ``eta``, ``phi``) within ``DeltaR < dr`` of each selected jet's axis."""
    per_jet = cands[event]
    d2 = (per_jet.eta - jet_eta) ** 2 + delta_phi(per_jet.phi, jet_phi) ** 2
    return per_jet[d2 < dr**2]


def truth_labels(
    gen: ak.Array, jet_eta: np.ndarray, jet_phi: np.ndarray, event: np.ndarray, truth: TruthMatch,
    entry0: int = 0, where: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """``(label, truth_pdgid)`` per selected jet: 1 and the matched mother's |pdgId| where every
    hadronic decay product of a mother lies within ``truth.dr`` (the mother with the most products
    wins, e.g. a top over its W); 0 and 0 otherwise."""
    if truth.mode == "parton":
        return _parton_labels(gen, jet_eta, jet_phi, event, truth)
    counts = ak.to_numpy(ak.num(gen[truth.pdg_field], axis=1))
    check_indices(gen[truth.mother_field], counts, f"{truth.collection}_{truth.mother_field}",
                  truth.collection, entry0, allow_minus_one=True, where=where)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    g_event = np.repeat(np.arange(len(counts)), counts)
    pdg = np.abs(ak.to_numpy(ak.flatten(gen[truth.pdg_field])).astype(np.int64))
    local_mother = ak.to_numpy(ak.flatten(gen[truth.mother_field])).astype(np.int64)
    mother = np.where(local_mother >= 0, local_mother + offsets[g_event], -1)
    eta = ak.to_numpy(ak.flatten(gen.eta)).astype(np.float64)
    phi = ak.to_numpy(ak.flatten(gen.phi)).astype(np.float64)
    is_mother = np.isin(pdg, truth.mothers)
    if truth.status:
        is_mother &= np.isin(ak.to_numpy(ak.flatten(gen[truth.status_field])), truth.status)
    # first copies only: a quark whose mother is the same quark is a shower copy, not a new product
    mother_pdg = np.where(mother >= 0, pdg[np.maximum(mother, 0)], -1)
    products = np.flatnonzero(np.isin(pdg, truth.products) & (mother_pdg != pdg))

    # (product, ancestor mother) pairs, one generation up per step for all products at once
    pair_p, pair_m = [], []
    cursor, owner = mother[products], products
    for _ in range(MAX_GENERATIONS):
        live = cursor >= 0
        if not live.any():
            break
        cursor, owner = cursor[live], owner[live]
        hit = is_mother[cursor]
        pair_p.append(owner[hit])
        pair_m.append(cursor[hit])
        cursor = mother[cursor]
    n_jets = len(event)
    label = np.zeros(n_jets, dtype=np.int32)
    pdgid = np.zeros(n_jets, dtype=np.int32)
    if not pair_p or n_jets == 0:
        return label, pdgid
    pair_p, pair_m = np.concatenate(pair_p), np.concatenate(pair_m)
    n_products = np.bincount(pair_m, minlength=len(pdg))
    hadronic = n_products[pair_m] >= truth.min_products
    pair_p, pair_m = pair_p[hadronic], pair_m[hadronic]
    if len(pair_p) == 0:
        return label, pdgid

    # each selected jet against the pairs of its own event
    order = np.argsort(g_event[pair_p], kind="stable")
    pair_p, pair_m = pair_p[order], pair_m[order]
    pair_counts = np.bincount(g_event[pair_p], minlength=len(counts))
    pair_offsets = np.concatenate([[0], np.cumsum(pair_counts)])
    per_jet = pair_counts[event]
    jet_of = np.repeat(np.arange(n_jets), per_jet)
    starts = np.repeat(pair_offsets[event], per_jet)
    k = starts + (np.arange(len(jet_of)) - np.repeat(np.cumsum(per_jet) - per_jet, per_jet))
    p, m = pair_p[k], pair_m[k]
    d2 = (eta[p] - jet_eta[jet_of]) ** 2 + delta_phi(phi[p], jet_phi[jet_of]) ** 2
    inside = d2 < truth.dr**2
    keys, n_inside = np.unique(jet_of[inside] * len(pdg) + m[inside], return_counts=True)
    key_jet, key_mother = keys // len(pdg), keys % len(pdg)
    full = n_inside == n_products[key_mother]
    key_jet, key_mother = key_jet[full], key_mother[full]
    if len(key_jet) == 0:
        return label, pdgid
    # per jet, the contained mother with the most products (then the larger |pdgId|)
    rank = n_products[key_mother] * 1000 + pdg[key_mother]
    best = np.lexsort((rank, key_jet))
    last = np.r_[key_jet[best][1:] != key_jet[best][:-1], True]
    chosen = best[last]
    label[key_jet[chosen]] = 1
    pdgid[key_jet[chosen]] = pdg[key_mother[chosen]]
    return label, pdgid


def _parton_labels(gen: ak.Array, jet_eta: np.ndarray, jet_phi: np.ndarray, event: np.ndarray,
                   truth: TruthMatch) -> tuple[np.ndarray, np.ndarray]:
    keep = _isin(abs(gen[truth.pdg_field]), truth.mothers)
    if truth.status:
        keep = keep & _isin(gen[truth.status_field], truth.status)
    partons = attach_by_dr(gen[keep], jet_eta, jet_phi, event, truth.dr)
    d2 = (partons.eta - jet_eta) ** 2 + delta_phi(partons.phi, jet_phi) ** 2
    nearest = ak.firsts(partons[ak.argmin(d2, axis=1, keepdims=True)])
    pdgid = ak.to_numpy(ak.fill_none(abs(nearest[truth.pdg_field]), 0)).astype(np.int32)
    return (pdgid > 0).astype(np.int32), pdgid


def _isin(jagged: ak.Array, values: Sequence[int]) -> ak.Array:
    """``np.isin`` for a jagged array (numpy's does not take one)."""
    flat = np.isin(ak.to_numpy(ak.flatten(jagged)), values)
    return ak.unflatten(flat, ak.num(jagged, axis=1))


def link_field_names(jets: str, collection: str, links: str) -> tuple[str, str]:
    """PFNano's names of a link collection's two index fields: ``jetIdx`` and
    ``<collection with a lower-case first letter>Idx`` (``FatJetPFCands_pFCandsIdx``)."""
    del jets  # the jet side is always ``jetIdx`` in PFNano, whatever the jet collection
    return "jetIdx", collection[:1].lower() + collection[1:] + "Idx"


def fields_of(names: Sequence[str], prefix: str) -> list[str]:
    """The record fields of collection ``prefix`` among branch names (``FatJet_pt`` -> ``pt``)."""
    return [n[len(prefix) + 1:] for n in names if n.startswith(prefix + "_") and "." not in n]
