"""Jet trimming (Krohn, Thaler & Wang, JHEP 02 (2010) 084) of a chunk of jets, compiled with numba.

The constituents of each jet are re-clustered into kT subjets of radius ``r_sub``
(inclusive kT, E-scheme); subjets with less than ``f_cut`` of the jet's pT are dropped
with all their constituents. Pile-up and underlying event spread soft energy over the
whole jet area, which the trimming removes: the jet mass becomes a W-mass measurement
again, and jet images lose the diffuse pile-up floor (the jet-image literature builds
its images from trimmed jets, de Oliveira et al. 2015). Defaults R_sub = 0.2, f_cut =
0.05 are what ATLAS uses for large-R jets and what the embedded generator uses for its
trimmed ``jet_mass``.

Tracks are not clustered: a track is kept when it lies within ``r_sub`` (in eta, phi)
of a kept subjet's axis, so that the charged channels follow the calorimeter.

The clustering follows FastJet's N2Plain strategy (see :mod:`hepdl.represent.kt_clustering`):
each pseudojet keeps its nearest neighbour within ``r_sub``; one without a neighbour has
d_iB = kt^2 as its smallest distance and becomes a subjet when that is the smallest of all.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
from numba import njit

from hepdl.errors import ConfigError
from hepdl.represent.jagged import flat_content
from hepdl.represent.kt_clustering import (
    INDEX,
    NN,
    TWO_PI,
    close_slot,
    max_count,
    merge_slots,
    new_slots,
    particle_rap_phi,
    rap_phi,
    smallest_distance,
    start_slots,
)

MAX_SUBJETS = 16  # kept subjet axes per jet that tracks are matched to (a jet has a handful)


@njit(cache=True, nogil=True, error_model="numpy")
def _subjet_labels(px, py, pz, e, rap, phi, lo, hi, r, slots, links, labels):
    """Inclusive kT with radius ``r`` on constituents ``lo:hi``; ``labels[k]`` = subjet index of constituent k.

    ``rap``, ``phi`` are the constituents' (:func:`particle_rap_phi`); ``slots, links`` are
    :func:`new_slots` of at least ``hi - lo``. Returns the number of subjets. Subjet indices
    follow the order in which the subjets are completed (not pT order).
    """
    m = hi - lo
    if m == 0:
        return 0
    r2 = r * r
    parent = np.full(2 * m, -1, dtype=np.int64)  # history entry each pseudojet merged into
    final = np.full(2 * m, -1, dtype=np.int64)  # subjet number of the pseudojets that became subjets
    start_slots(px, py, pz, e, rap, phi, lo, m, r2, slots, links)
    n = m
    stored = m
    n_sub = 0
    while n > 0:
        a = smallest_distance(slots, n)
        b = links[NN, a]
        if b >= 0:
            if a < b:
                a, b = b, a
            parent[links[INDEX, a]] = stored
            parent[links[INDEX, b]] = stored
            merge_slots(slots, links, stored, a, b)
            stored += 1
        else:  # no neighbour within r: the pseudojet is a subjet (d_iB = kt^2 is the smallest distance)
            final[links[INDEX, a]] = n_sub
            n_sub += 1
        n -= 1
        close_slot(slots, links, a, b, n, r2)
    for k in range(m):
        node = k
        while final[node] < 0:
            node = parent[node]
        labels[k] = final[node]
    return n_sub


@njit(cache=True, nogil=True, error_model="numpy")
def _trim_chunk(px, py, pz, e, offsets, r, f_cut, t_eta, t_phi, t_offsets):
    n_jets = len(offsets) - 1
    keep = np.zeros(len(px), dtype=np.bool_)
    t_keep = np.zeros(len(t_eta), dtype=np.bool_)
    labels = np.empty(len(px), dtype=np.int64)
    axes = np.empty((MAX_SUBJETS, 2))
    r2 = r * r
    rap, phi = particle_rap_phi(px, py, pz, e)
    slots, links = new_slots(max_count(offsets))
    for j in range(n_jets):
        lo, hi = offsets[j], offsets[j + 1]
        n_sub = _subjet_labels(px, py, pz, e, rap, phi, lo, hi, r, slots, links, labels[lo:hi])
        if n_sub == 0:
            continue
        sub = np.zeros((n_sub, 4))
        jx = 0.0
        jy = 0.0
        for k in range(lo, hi):
            s = labels[k]
            sub[s, 0] += px[k]
            sub[s, 1] += py[k]
            sub[s, 2] += pz[k]
            sub[s, 3] += e[k]
            jx += px[k]
            jy += py[k]
        cut2 = f_cut * f_cut * (jx * jx + jy * jy)
        n_kept = 0
        kept = np.zeros(n_sub, dtype=np.bool_)
        for s in range(n_sub):
            pt2 = sub[s, 0] * sub[s, 0] + sub[s, 1] * sub[s, 1]
            if pt2 > cut2:
                kept[s] = True
                if n_kept < MAX_SUBJETS:
                    axes[n_kept, 0], axes[n_kept, 1] = rap_phi(sub[s, 0], sub[s, 1], sub[s, 2], sub[s, 3])
                    n_kept += 1
        for k in range(lo, hi):
            keep[k] = kept[labels[k]]
        for t in range(t_offsets[j], t_offsets[j + 1]):
            tphi = t_phi[t] % TWO_PI
            for s in range(n_kept):
                dphi = abs(tphi - axes[s, 1])
                dphi = min(dphi, TWO_PI - dphi)
                deta = t_eta[t] - axes[s, 0]
                if deta * deta + dphi * dphi < r2:
                    t_keep[t] = True
                    break
    return keep, t_keep


def trim_masks(
    calo_eta: ak.Array, calo_phi: ak.Array, calo_e: ak.Array,
    trk_eta: ak.Array | None = None, trk_phi: ak.Array | None = None,
    *, r_sub: float = 0.2, f_cut: float = 0.05,
) -> tuple[ak.Array, ak.Array | None]:
    """Boolean masks (jagged, like the inputs) of the towers and tracks that survive trimming.

    Towers are massless (pT = E / cosh eta). A track is kept within ``r_sub`` of a kept
    subjet's axis (the subjets' rapidity; massless towers make it close to their eta).
    """
    if not r_sub > 0:
        raise ConfigError(f"trimming r_sub must be > 0, not {r_sub}")
    if not 0 <= f_cut < 1:
        raise ConfigError(f"trimming f_cut must be in [0, 1), not {f_cut}")
    eta, counts = flat_content(calo_eta, "calo_eta")
    phi, _ = flat_content(calo_phi, "calo_phi")
    e, _ = flat_content(calo_e, "calo_e")
    eta, phi, e = (np.asarray(a, dtype=np.float64) for a in (eta, phi, e))
    pt = e / np.cosh(eta)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if trk_eta is not None and trk_phi is not None:
        teta, tcounts = flat_content(trk_eta, "trk_eta")
        tphi, _ = flat_content(trk_phi, "trk_phi")
    else:
        teta, tphi, tcounts = np.zeros(0), np.zeros(0), np.zeros(len(counts), dtype=np.int64)
    t_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(tcounts, out=t_offsets[1:])
    keep, t_keep = _trim_chunk(
        np.ascontiguousarray(pt * np.cos(phi)), np.ascontiguousarray(pt * np.sin(phi)),
        np.ascontiguousarray(pt * np.sinh(eta)), np.ascontiguousarray(e), offsets, float(r_sub), float(f_cut),
        np.ascontiguousarray(teta, dtype=np.float64), np.ascontiguousarray(tphi, dtype=np.float64), t_offsets,
    )
    calo_mask = ak.unflatten(keep, counts)
    track_mask = ak.unflatten(t_keep, tcounts) if trk_eta is not None else None
    return calo_mask, track_mask


def trim_jets(chunk: ak.Array, *, r_sub: float = 0.2, f_cut: float = 0.05) -> ak.Array:
    """The chunk with every ``calo_*`` and ``trk_*`` field reduced to the trimmed jet's constituents."""
    has_tracks = "trk_eta" in chunk.fields and "trk_phi" in chunk.fields
    calo_mask, track_mask = trim_masks(
        chunk["calo_eta"], chunk["calo_phi"], chunk["calo_e"],
        chunk["trk_eta"] if has_tracks else None, chunk["trk_phi"] if has_tracks else None,
        r_sub=r_sub, f_cut=f_cut,
    )
    fields = {}
    for name in chunk.fields:
        if name.startswith("calo_"):
            fields[name] = chunk[name][calo_mask]
        elif name.startswith("trk_") and track_mask is not None:
            fields[name] = chunk[name][track_mask]
        else:
            fields[name] = chunk[name]
    return ak.zip(fields, depth_limit=1)


__all__ = ["MAX_SUBJETS", "trim_jets", "trim_masks"]
