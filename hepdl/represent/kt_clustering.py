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


# The active pseudojets of one clustering, one column per slot, as FastJet's BriefJets: rows
# of one float array (four-momentum, rapidity, azimuth, kt^2, distance to the nearest
# neighbour, d_ij, a scratch row of distances) and of one integer array (history index,
# nearest neighbour or -1 when none is within R, scratch list of slots to search again).
# Rows rather than a tuple of arrays: scans along a row vectorise, and indexing a row
# costs no reference counting (numba counts every array taken out of a tuple or sliced,
# with atomic operations, which cost more than the clustering itself in these loops).
PX, PY, PZ, E, RAP, PHI, KT2, NNDIST, DIJ, WORK = range(10)
INDEX, NN, REDO = range(3)


@njit(cache=True, nogil=True, error_model="numpy")
def new_slots(capacity):
    """``(values, links)`` for jets of up to ``capacity`` constituents, reused from jet to jet."""
    return np.empty((10, max(capacity, 1))), np.empty((3, max(capacity, 1)), dtype=np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def particle_rap_phi(px, py, pz, e):
    """Rapidity and azimuth of every flat constituent (:func:`rap_phi`), computed once per chunk."""
    rap = np.empty(px.size)
    phi = np.empty(px.size)
    for i in range(px.size):
        rap[i], phi[i] = rap_phi(px[i], py[i], pz[i], e[i])
    return rap, phi


@njit(cache=True, nogil=True, error_model="numpy")
def _distances(v, i, n):
    """``v[WORK, j]`` = dR^2 of slots i and j for j < n, ``v[WORK, i]`` = inf. A plain loop: vectorised."""
    ri = v[RAP, i]
    fi = v[PHI, i]
    for j in range(n):
        dphi = abs(fi - v[PHI, j])
        # Equal to FastJet's ``if (dphi > pi) dphi = twopi - dphi``, without a branch.
        dphi = min(dphi, TWO_PI - dphi)
        deta = ri - v[RAP, j]
        v[WORK, j] = dphi * dphi + deta * deta
    v[WORK, i] = np.inf


@njit(cache=True, nogil=True, error_model="numpy")
def first_minimum(v, row, n, below):
    """``(j, v[row, j])`` for the first j < n holding the smallest value of the row, if it is
    < ``below``; else ``(-1, below)``.

    The same as ``if v[row, j] < best`` over j in order (FastJet's scans), but with eight
    independent running minima, which the compiler turns into vector instructions; the
    first position of the minimum is then looked up.
    """
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = below
    j = 0
    while j + 8 <= n:
        x = v[row, j]
        b0 = x if x < b0 else b0
        x = v[row, j + 1]
        b1 = x if x < b1 else b1
        x = v[row, j + 2]
        b2 = x if x < b2 else b2
        x = v[row, j + 3]
        b3 = x if x < b3 else b3
        x = v[row, j + 4]
        b4 = x if x < b4 else b4
        x = v[row, j + 5]
        b5 = x if x < b5 else b5
        x = v[row, j + 6]
        b6 = x if x < b6 else b6
        x = v[row, j + 7]
        b7 = x if x < b7 else b7
        j += 8
    while j < n:
        x = v[row, j]
        b0 = x if x < b0 else b0
        j += 1
    b0 = b1 if b1 < b0 else b0
    b2 = b3 if b3 < b2 else b2
    b4 = b5 if b5 < b4 else b4
    b6 = b7 if b7 < b6 else b6
    b0 = b2 if b2 < b0 else b0
    b4 = b6 if b6 < b4 else b4
    best = b4 if b4 < b0 else b0
    if best < below:
        for j in range(n):
            if v[row, j] == best:
                return j, best
    return -1, below


@njit(cache=True, nogil=True, error_model="numpy")
def _dij(v, links, i):
    k = v[KT2, i]
    nn = links[NN, i]
    if nn >= 0 and v[KT2, nn] < k:
        k = v[KT2, nn]
    return v[NNDIST, i] * k


@njit(cache=True, nogil=True, error_model="numpy")
def _search_nn(v, links, i, n, r2):
    """Nearest neighbour of slot i among the n active ones (the first one on a tie), within sqrt(r2)."""
    _distances(v, i, n)
    links[NN, i], v[NNDIST, i] = first_minimum(v, WORK, n, r2)
    v[DIJ, i] = _dij(v, links, i)


@njit(cache=True, nogil=True, error_model="numpy")
def start_slots(px, py, pz, e, rap, phi, lo, m, r2, v, links):
    """Constituents ``lo:lo + m`` (with their precomputed rapidity and azimuth) into the slots,
    each with its nearest neighbour within sqrt(r2).

    FastJet's N2Plain triangular pass (slot a against the slots before it, which take a as
    their NN where it is strictly nearer), with each row's distances, minimum and updates
    as separate loops that vectorise.
    """
    for i in range(m):
        v[PX, i] = px[lo + i]
        v[PY, i] = py[lo + i]
        v[PZ, i] = pz[lo + i]
        v[E, i] = e[lo + i]
        v[RAP, i] = rap[lo + i]
        v[PHI, i] = phi[lo + i]
        v[KT2, i] = px[lo + i] * px[lo + i] + py[lo + i] * py[lo + i]
        links[INDEX, i] = i
        links[NN, i] = -1
        v[NNDIST, i] = r2
    for a in range(1, m):
        _distances(v, a, a)
        links[NN, a], v[NNDIST, a] = first_minimum(v, WORK, a, r2)
        for b in range(a):
            closer = v[WORK, b] < v[NNDIST, b]
            links[NN, b] = a if closer else links[NN, b]
            v[NNDIST, b] = v[WORK, b] if closer else v[NNDIST, b]
    for i in range(m):
        v[DIJ, i] = _dij(v, links, i)


@njit(cache=True, nogil=True, error_model="numpy")
def smallest_distance(v, n):
    """The slot of the smallest d_ij (or d_iB) among the n active ones; the first wins a tie."""
    a, _ = first_minimum(v, DIJ, n, np.inf)
    return max(a, 0)


@njit(cache=True, nogil=True, error_model="numpy")
def merge_slots(v, links, stored, a, b):
    """E-scheme: slots a and b recombine into history entry ``stored``, which takes slot b."""
    for c in (PX, PY, PZ, E):
        v[c, b] = v[c, a] + v[c, b]
    links[INDEX, b] = stored
    v[RAP, b], v[PHI, b] = rap_phi(v[PX, b], v[PY, b], v[PZ, b], v[E, b])
    v[KT2, b] = v[PX, b] * v[PX, b] + v[PY, b] * v[PY, b]


@njit(cache=True, nogil=True, error_model="numpy")
def close_slot(v, links, a, b, n, r2):
    """Slot a leaves (the last of the ``n + 1`` active slots moves into it, as in FastJet); the
    slots whose NN was a or b (b < 0: none merged) are searched again, and b's NN updated.

    Gives what FastJet's N2Plain loop gives (one pass over the slots that re-searches, compares
    with b and renames the moved slot), in stages that vectorise: the list of slots to search
    again (taken before any renaming), the distances to b, a branch-free update of the others
    and b's NN, then the searches. A slot searched again ends with its first nearest
    neighbour whatever the update did; the others keep theirs unless b is strictly nearer.
    """
    tail = n
    for c in range(WORK):
        v[c, a] = v[c, tail]
    links[INDEX, a] = links[INDEX, tail]
    links[NN, a] = links[NN, tail]
    redo = 0
    for i in range(n):
        # b's NN is found from scratch below; a's old neighbours are searched again. The list
        # is written branch-free: every slot is written, and the count moves past the kept ones.
        nn = links[NN, i]
        links[REDO, redo] = i
        redo += (i != b) & ((nn == a) | ((b >= 0) & (nn == b)))
    if b >= 0:
        _distances(v, b, n)
        for i in range(n):
            # Branch-free: b nearer than the NN so far (never for b itself: inf), else the
            # moved slot renamed; d_ij recomputed alike for all (unchanged inputs, same value).
            closer = v[WORK, i] < v[NNDIST, i]
            nn = links[NN, i]
            nn = a if nn == tail else nn
            nn = b if closer else nn
            links[NN, i] = nn
            d = v[WORK, i] if closer else v[NNDIST, i]
            v[NNDIST, i] = d
            k = v[KT2, i]
            kn = v[KT2, max(nn, 0)]
            v[DIJ, i] = d * (kn if (nn >= 0) & (kn < k) else k)
        links[NN, b], v[NNDIST, b] = first_minimum(v, WORK, n, r2)
        v[DIJ, b] = _dij(v, links, b)
    else:
        for i in range(n):
            if links[NN, i] == tail:
                links[NN, i] = a
    for k in range(redo):
        _search_nn(v, links, links[REDO, k], n, r2)


@njit(cache=True, nogil=True, error_model="numpy")
def cluster_jet(px, py, pz, e, rap, phi, lo, hi, n_max, v, links, out):
    """Cluster constituents ``lo:hi``; write the exclusive subjets (px, py, pz, E) for N = 1..n_max.

    ``rap``, ``phi`` are the constituents' (:func:`particle_rap_phi`); ``v, links`` are
    :func:`new_slots` of at least ``hi - lo``. ``out`` is ``(n_max (n_max + 1) / 2, 4)``: the N
    subjets of N start at row N (N - 1) / 2. Rows of an N at least the number of
    constituents are left as they are (N-subjettiness is zero there whatever the axes).
    """
    m = hi - lo
    if m < 2:
        return
    r2 = MAX_ALLOWABLE_R * MAX_ALLOWABLE_R
    start_slots(px, py, pz, e, rap, phi, lo, m, r2, v, links)
    n = m
    stored = m
    while n > 1:
        a = smallest_distance(v, n)
        b = links[NN, a]
        if b >= 0:
            if a < b:
                a, b = b, a
            merge_slots(v, links, stored, a, b)
            stored += 1
        # else: a recombines with the beam (only a zero-pT pseudojet can, at this R).
        n -= 1
        close_slot(v, links, a, b, n, r2)
        if n <= n_max:
            row = n * (n - 1) // 2
            for i in range(n):
                for c in (PX, PY, PZ, E):
                    out[row + i, c] = v[c, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _exclusive_chunk(px, py, pz, e, offsets, n_max):
    n_jets = len(offsets) - 1
    out = np.zeros((n_jets, n_max * (n_max + 1) // 2, 4))
    rap, phi = particle_rap_phi(px, py, pz, e)
    v, links = new_slots(max_count(offsets))
    for j in range(n_jets):
        cluster_jet(px, py, pz, e, rap, phi, offsets[j], offsets[j + 1], n_max, v, links, out[j])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def max_count(offsets):
    """The largest number of constituents of a jet (the slots' size)."""
    m = 0
    for j in range(offsets.size - 1):
        m = max(m, offsets[j + 1] - offsets[j])
    return m


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
