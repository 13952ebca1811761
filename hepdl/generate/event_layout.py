"""The event-level layout of the jet generator: whole events as NanoAOD/PFNano store them.

Per event (tree ``Events``):

* ``FatJet_pt, _eta, _phi, _mass``: the leading anti-kT jets (trimmed kinematics, as in the
  per-jet layout), up to :data:`hepdl.generate.jets.EVENT_JETS`, above half the window's pT;
* ``PFCands_pt, _eta, _phi, _e, _charge, _d0, _z0``: the calorimeter towers (charge 0) and
  tracks (charge +-1) within DeltaR < R of any of those jets, towers first;
* ``FatJetPFCands_jetIdx, _pFCandsIdx``: one link per (jet, candidate in its cone), PFNano's
  index links;
* ``GenPart_pt, _eta, _phi, _mass, _pdgId, _status, _genPartIdxMother``: the hard process, every
  W/Z/top/H copy and the particles they decay to, with the mother index among the kept
  particles (-1: the mother was not kept), as NanoAOD's pruned GenPart.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepdl.generate.jet_detector import delta_phi

#: |pdgId| kept in GenPart with their decay products: top, Z, W, H.
HEAVY = (6, 23, 24, 25)


def _in_cones(obj_event, obj_eta, obj_phi, jets: dict, n_events: int, jet_r: float):
    """(jet, object) pairs within DeltaR < R, jet-major; objects in event order, indices global."""
    counts = np.bincount(obj_event, minlength=n_events)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    per_jet = counts[jets["event"]]
    jet_of = np.repeat(np.arange(len(jets["event"])), per_jet)
    first = np.repeat(offsets[jets["event"]], per_jet)
    obj = first + np.arange(len(jet_of)) - np.repeat(np.cumsum(per_jet) - per_jet, per_jet)
    d2 = (obj_eta[obj] - jets["eta"][jet_of]) ** 2 + delta_phi(obj_phi[obj], jets["phi"][jet_of]) ** 2
    inside = d2 < jet_r**2
    return jet_of[inside], obj[inside]


def _gen_particles(events) -> dict[str, ak.Array]:
    """NanoAOD-style pruned GenPart: hard process (|status| 21-23), W/Z/top/H and their daughters."""
    prt = events.prt
    pid = np.abs(prt.id)
    status = np.abs(prt.status)
    mother = prt.mother1
    heavy = (pid == 6) | (pid == 23) | (pid == 24) | (pid == 25)
    mother_id = pid[mother]
    mother_heavy = (mother_id == 6) | (mother_id == 23) | (mother_id == 24) | (mother_id == 25)
    keep = heavy | (mother_heavy & (mother_id != pid) & (mother > 0)) | ((status >= 21) & (status <= 23))
    # new index of every kept particle in its event; a dropped mother becomes -1
    counts = ak.to_numpy(ak.num(keep, axis=1))
    flat_keep = ak.to_numpy(ak.flatten(keep))
    before = np.concatenate([[0], np.cumsum(flat_keep)])  # kept particles before each one
    first = before[np.concatenate([[0], np.cumsum(counts)])[:-1]]  # ... before each event
    rank = before[:-1] - np.repeat(first, counts)
    new_index = ak.unflatten(np.where(flat_keep, rank, -1), counts)
    kept = prt[keep]
    kept_mother = ak.where(kept.mother1 > 0, new_index[kept.mother1], -1)
    pt = np.hypot(kept.p.px, kept.p.py)
    f32 = np.float32
    return {
        "GenPart_pt": ak.values_astype(pt, f32),
        "GenPart_eta": ak.values_astype(np.arcsinh(kept.p.pz / np.maximum(pt, 1e-9)), f32),
        "GenPart_phi": ak.values_astype(np.arctan2(kept.p.py, kept.p.px), f32),
        "GenPart_mass": ak.values_astype(kept.m, f32),
        "GenPart_pdgId": ak.values_astype(kept.id, np.int32),
        "GenPart_status": ak.values_astype(np.abs(kept.status), np.int32),
        "GenPart_genPartIdxMother": ak.values_astype(kept_mother, np.int32),
    }


def event_arrays(events, jets: dict, towers: tuple, trk: dict, jet_r: float) -> dict:
    """One batch of events (Pythia record, clustered jets, towers, tracks) in the event layout."""
    n = len(events)
    t_event, t_eta, t_phi, t_e = towers
    order = np.lexsort((jets["rank"], jets["event"]))
    jets = {k: v[order] for k, v in jets.items()}
    n_jets = np.bincount(jets["event"], minlength=n)
    t_jet, t_obj = _in_cones(t_event, t_eta, t_phi, jets, n, jet_r)
    k_jet, k_obj = _in_cones(trk["event"], trk["eta"], trk["phi"], jets, n, jet_r)
    towers_kept = np.unique(t_obj)
    tracks_kept = np.unique(k_obj)
    t_pt = t_e / np.cosh(t_eta)
    zeros = np.zeros(len(towers_kept), dtype=np.float32)
    cands = {  # towers first, then tracks; a stable sort by event keeps that order per event
        "event": np.concatenate([t_event[towers_kept], trk["event"][tracks_kept]]),
        "pt": np.concatenate([t_pt[towers_kept], trk["pt"][tracks_kept]]),
        "eta": np.concatenate([t_eta[towers_kept], trk["eta"][tracks_kept]]),
        "phi": np.concatenate([t_phi[towers_kept], trk["phi"][tracks_kept]]),
        "e": np.concatenate([t_e[towers_kept], trk["pt"][tracks_kept] * np.cosh(trk["eta"][tracks_kept])]),
        "charge": np.concatenate([zeros, trk["charge"][tracks_kept]]),
        "d0": np.concatenate([zeros, trk["d0"][tracks_kept]]),
        "z0": np.concatenate([zeros, trk["z0"][tracks_kept]]),
    }
    by_event = np.argsort(cands["event"], kind="stable")
    cands = {k: v[by_event] for k, v in cands.items()}
    n_cands = np.bincount(cands["event"], minlength=n)
    cand_offsets = np.concatenate([[0], np.cumsum(n_cands)])
    # the candidate index of each kept tower / track within its event
    slot = np.empty(len(by_event), dtype=np.int64)
    slot[by_event] = np.arange(len(by_event))
    tower_slot = dict(zip(("obj", "slot"), (towers_kept, slot[: len(towers_kept)]), strict=True))
    track_slot = dict(zip(("obj", "slot"), (tracks_kept, slot[len(towers_kept):]), strict=True))
    link_jet = np.concatenate([t_jet, k_jet])
    link_cand = np.concatenate([
        tower_slot["slot"][np.searchsorted(tower_slot["obj"], t_obj)],
        track_slot["slot"][np.searchsorted(track_slot["obj"], k_obj)],
    ])
    link_order = np.lexsort((link_cand, link_jet))  # jet-major, then candidate order
    link_jet, link_cand = link_jet[link_order], link_cand[link_order]
    link_event = jets["event"][link_jet]
    n_links = np.bincount(link_event, minlength=n)
    f32 = np.float32
    out = {f"FatJet_{k}": ak.unflatten(jets[k].astype(f32), n_jets) for k in ("pt", "eta", "phi", "mass")}
    for k in ("pt", "eta", "phi", "e", "d0", "z0"):
        out[f"PFCands_{k}"] = ak.unflatten(cands[k].astype(f32), n_cands)
    out["PFCands_charge"] = ak.unflatten(cands["charge"].astype(np.int32), n_cands)
    out["FatJetPFCands_jetIdx"] = ak.unflatten(jets["rank"][link_jet].astype(np.int32), n_links)
    out["FatJetPFCands_pFCandsIdx"] = ak.unflatten(
        (link_cand - cand_offsets[link_event]).astype(np.int32), n_links)
    out |= _gen_particles(events)
    return out
