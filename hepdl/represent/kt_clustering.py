"""Exact exclusive-kT clustering of a chunk of jets' constituents, compiled with numba.

The longitudinally invariant kT algorithm (Catani et al. 1993; Ellis & Soper 1993) with
E-scheme recombination, d_ij = min(kt_i^2, kt_j^2) dR_ij^2 / R^2 in (rapidity, phi)
and d_iB = kt_i^2, at R = FastJet's ``max_allowable_R`` (1000) so that the beam
distance never wins while two pseudojets remain: the exclusive subjets
fastjet-contrib's ``KT_Axes`` / ``OnePass_KT_Axes`` take as N-subjettiness seeds.

It is FastJet's N2Plain strategy (Cacciari & Salam 2006): each pseudojet keeps its
geometric nearest neighbour (NN), the smallest d_iNN is the smallest d_ij, and after
a merge only the pseudojets whose NN was one of the two merged ones are searched
again, so a jet of m constituents costs O(m^2) cheap operations. The slot
bookkeeping (the last pseudojet moves into the freed slot, first minimum wins)
follows FastJet's N2Plain, and the rapidity and azimuth of every pseudojet are
computed as ``fastjet::PseudoJet`` does. FastJet's ``Best`` strategy (what contrib
uses) runs N2Plain only for small jets and N2MHTLazy9 above ~30 particles, which breaks
exact d_ij ties (frequent on a tower grid: a soft tower exactly as far from two
neighbours) in its heap's order: there the merge order, and rarely the subjets, differ.
No Python runs per jet: one compiled call clusters the whole chunk.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: FastJet's ``JetDefinition::max_allowable_R``.
MAX_ALLOWABLE_R = 1000.0
#: FastJet's rapidity of a pseudojet along the beam (``fastjet::MaxRap``).
MAX_RAP = 1.0e5
TWO_PI = 2.0 * math.pi


@njit(cache=True, nogil=True, error_model="numpy")
def rap_phi(px: float, py: float, pz: float, e: float) -> tuple[float, float]:
    """Rapidity and azimuth in [0, 2 pi), with ``fastjet::PseudoJet``'s formulas and edge cases."""
    kt2 = px * px + py * py
    phi = 0.0
    if kt2 != 0.0:
        phi = math.atan2(py, px)
        if phi < 0.0:
            phi += TWO_PI
        if phi >= TWO_PI:
            phi -= TWO_PI
    if e == abs(pz) and kt2 == 0.0:
        # Along the beam: FastJet's convention of a huge rapidity, not infinity.
        rap = MAX_RAP + abs(pz)
        return (rap if pz >= 0.0 else -rap), phi
    m2 = max(0.0, (e + pz) * (e - pz) - kt2)
    e_plus_pz = e + abs(pz)  # the numerically safer of p+ and p-
    rap = 0.5 * math.log((kt2 + m2) / (e_plus_pz * e_plus_pz))
    return (-rap if pz > 0.0 else rap), phi


@njit(cache=True, nogil=True, error_model="numpy")
def _dist(rap, phi, a, b):
    dphi = abs(phi[a] - phi[b])
    # Equal to FastJet's ``if (dphi > pi) dphi = twopi - dphi``, without a branch.
    dphi = min(dphi, TWO_PI - dphi)
    deta = rap[a] - rap[b]
    return dphi * dphi + deta * deta


@njit(cache=True, nogil=True, error_model="numpy")
def _dij(kt2, nn, nndist, i):
    k = kt2[i]
    if nn[i] >= 0 and kt2[nn[i]] < k:
        k = kt2[nn[i]]
    return nndist[i] * k


@njit(cache=True, nogil=True, error_model="numpy")
def _set_nn_nocross(rap, phi, nn, nndist, i, n, r2):
    best = r2
    which = -1
    for j in range(n):
        if j != i:
            d = _dist(rap, phi, i, j)
            if d < best:
                best = d
                which = j
    nndist[i] = best
    nn[i] = which


@njit(cache=True, nogil=True, error_model="numpy")
def new_slots(m, r2):
    """``store`` (every pseudojet of the history, by creation) and the per-slot arrays of the
    active pseudojets, as FastJet's BriefJets: rap, phi, kt2, index, nn, nndist, dij."""
    return (np.empty((2 * m, 4)), np.empty(m), np.empty(m), np.empty(m), np.empty(m, dtype=np.int64),
            np.full(m, -1, dtype=np.int64), np.full(m, r2), np.empty(m))


@njit(cache=True, nogil=True, error_model="numpy")
def start_slots(px, py, pz, e, lo, m, r2, store, rap, phi, kt2, index, nn, nndist, dij):
    """Constituents ``lo:lo + m`` into the slots, each with its nearest neighbour within sqrt(r2)."""
    for i in range(m):
        store[i, 0] = px[lo + i]
        store[i, 1] = py[lo + i]
        store[i, 2] = pz[lo + i]
        store[i, 3] = e[lo + i]
        rap[i], phi[i] = rap_phi(store[i, 0], store[i, 1], store[i, 2], store[i, 3])
        kt2[i] = store[i, 0] * store[i, 0] + store[i, 1] * store[i, 1]
        index[i] = i
    for a in range(1, m):  # NN of a among 0..a-1, checking whether a is theirs
        for b in range(a):
            d = _dist(rap, phi, a, b)
            if d < nndist[a]:
                nndist[a] = d
                nn[a] = b
            if d < nndist[b]:
                nndist[b] = d
                nn[b] = a
    for i in range(m):
        dij[i] = _dij(kt2, nn, nndist, i)


@njit(cache=True, nogil=True, error_model="numpy")
def smallest_distance(dij, n):
    """The slot of the smallest d_ij (or d_iB) among the n active ones; the first wins a tie."""
    a = 0
    best = dij[0]
    for i in range(1, n):
        if dij[i] < best:
            best = dij[i]
            a = i
    return a


@njit(cache=True, nogil=True, error_model="numpy")
def merge_slots(store, stored, rap, phi, kt2, index, nn, nndist, a, b, r2):
    """E-scheme: slots a and b recombine into history entry ``stored``, which takes slot b."""
    for c in range(4):
        store[stored, c] = store[index[a], c] + store[index[b], c]
    index[b] = stored
    rap[b], phi[b] = rap_phi(store[stored, 0], store[stored, 1], store[stored, 2], store[stored, 3])
    kt2[b] = store[stored, 0] * store[stored, 0] + store[stored, 1] * store[stored, 1]
    nn[b] = -1
    nndist[b] = r2


@njit(cache=True, nogil=True, error_model="numpy")
def close_slot(rap, phi, kt2, index, nn, nndist, dij, a, b, n, r2):
    """Slot a leaves (the last of the ``n + 1`` active slots moves into it, as in FastJet);
    the slots whose NN was a or b (b < 0: none merged) are searched again, and b's NN updated."""
    tail = n
    rap[a], phi[a], kt2[a], index[a] = rap[tail], phi[tail], kt2[tail], index[tail]
    nn[a], nndist[a], dij[a] = nn[tail], nndist[tail], dij[tail]
    for i in range(n):
        if nn[i] == a or nn[i] == b:
            _set_nn_nocross(rap, phi, nn, nndist, i, n, r2)
            dij[i] = _dij(kt2, nn, nndist, i)
        if b >= 0 and i != b:
            d = _dist(rap, phi, i, b)
            if d < nndist[i]:
                nndist[i] = d
                nn[i] = b
                dij[i] = _dij(kt2, nn, nndist, i)
            if d < nndist[b]:
                nndist[b] = d
                nn[b] = i
        if nn[i] == tail:
            nn[i] = a
    if b >= 0:
        dij[b] = _dij(kt2, nn, nndist, b)


@njit(cache=True, nogil=True, error_model="numpy")
def cluster_jet(px, py, pz, e, lo, hi, n_max, out):
    """Cluster constituents ``lo:hi``; write the exclusive subjets (px, py, pz, E) for N = 1..n_max.

    ``out`` is ``(n_max (n_max + 1) / 2, 4)``: the N subjets of N start at row
    N (N - 1) / 2. Rows of an N at least the number of constituents are left as
    they are (N-subjettiness is zero there whatever the axes).
    """
    m = hi - lo
    if m < 2:
        return
    r2 = MAX_ALLOWABLE_R * MAX_ALLOWABLE_R
    store, rap, phi, kt2, index, nn, nndist, dij = new_slots(m, r2)
    start_slots(px, py, pz, e, lo, m, r2, store, rap, phi, kt2, index, nn, nndist, dij)
    n = m
    stored = m
    while n > 1:
        a = smallest_distance(dij, n)
        b = nn[a]
        if b >= 0:
            if a < b:
                a, b = b, a
            merge_slots(store, stored, rap, phi, kt2, index, nn, nndist, a, b, r2)
            stored += 1
        # else: a recombines with the beam (only a zero-pT pseudojet can, at this R).
        n -= 1
        close_slot(rap, phi, kt2, index, nn, nndist, dij, a, b, n, r2)
        if n <= n_max:
            row = n * (n - 1) // 2
            for i in range(n):
                for c in range(4):
                    out[row + i, c] = store[index[i], c]


@njit(cache=True, nogil=True, error_model="numpy")
def _exclusive_chunk(px, py, pz, e, offsets, n_max):
    n_jets = len(offsets) - 1
    out = np.zeros((n_jets, n_max * (n_max + 1) // 2, 4))
    for j in range(n_jets):
        cluster_jet(px, py, pz, e, offsets[j], offsets[j + 1], n_max, out[j])
    return out


def exclusive_kt_subjets(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray, offsets: np.ndarray, n_max: int
) -> np.ndarray:
    """Exclusive-kT subjets of every jet of a chunk for N = 1..n_max.

    Constituents of jet j are ``offsets[j]:offsets[j + 1]`` of the flat float64 arrays.
    Returns ``(n_jets, n_max (n_max + 1) / 2, 4)`` four-momenta (px, py, pz, E): the N
    subjets of N at rows N (N - 1) / 2 onwards; all zero where a jet has no more than N
    constituents.
    """
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, pz, e)]
    return _exclusive_chunk(*arrays, np.ascontiguousarray(offsets, dtype=np.int64), int(n_max))
