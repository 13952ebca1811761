"""N-subjettiness (Thaler & Van Tilburg, JHEP 03 (2011) 015) for a chunk of jets at once.

tau_N = sum_i pT_i min_k dR_ik^beta / (sum_i pT_i R0^beta)   (normalised measure),

with dR in (rapidity, phi). Axes follow fastjet-contrib's ``OnePass_KT_Axes``: the
exclusive-kT subjets (:mod:`hepdl.represent.kt_clustering`), then contrib's one-pass
Lloyd/Weiszfeld minimisation, with contrib's weights, stopping rule and light-like axes,
compiled with numba: one call per chunk, no Python per jet, no FastJet at run time
(it is the tests' reference). Equal to contrib to rounding, except for jets where an
exact tie of kT distances (towers on a grid) is broken in another order than FastJet's.
``axes="kt"`` skips the minimisation (contrib's ``KT_Axes``). ``axes="cone"`` is a
fast numpy approximation: the pT-weighted
centroid for N = 1, and for N >= 2 the pT-weighted centroids of greedy cones of
``cone_radius`` around the hardest towers not yet taken (for well-separated prongs
these are the kT subjet axes; tau values then differ from contrib's by a few per cent).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import awkward as ak
import numpy as np
from numba import njit

from hepdl.errors import ConfigError
from hepdl.represent.jagged import (
    flat_content,
    offsets_of,
    owner_index,
    segment_argmax,
    segment_sum,
    wrap_phi,
)
from hepdl.represent.kt_clustering import (
    TWO_PI,
    cluster_jet,
    max_count,
    new_slots,
    particle_rap_phi,
    rap_phi,
)

AXES = ("onepass_kt", "kt", "cone")
#: Contrib's defaults for the one-pass minimisation.
MAX_ITERATIONS = 1000
PRECISION = 1e-4


def _cone_axes(eta, y, pt, counts, n_axes: int, radius: float) -> list[np.ndarray]:
    """Greedy-cone axes (eta, y) for N = 1..n_axes, each (n_jets, N, 2), NaN where none.

    ``y`` is phi relative to a reference inside each jet (no wrapping needed).
    """
    n = len(counts)
    owner = owner_index(counts)
    sw = segment_sum(pt, owner, n)
    safe = np.where(sw > 0, sw, 1.0)
    centroid = np.stack([segment_sum(pt * eta, owner, n) / safe, segment_sum(pt * y, owner, n) / safe], axis=-1)
    axes = [centroid[:, None, :]]
    free = np.ones(eta.size, dtype=bool)
    cones = []
    for k in range(n_axes if n_axes > 1 else 0):  # a loop over N, not over jets
        w = np.where(free, pt, -np.inf)
        h = segment_argmax(w, counts)
        pick = np.maximum(h, 0)
        found = (h >= 0) & (np.isfinite(w[pick]) if w.size else False)
        d2 = (eta - eta[pick][owner]) ** 2 + (y - y[pick][owner]) ** 2 if w.size else np.zeros(0)
        member = free & (d2 < radius**2) & found[owner]
        wm = np.where(member, pt, 0.0)
        s = segment_sum(wm, owner, n)
        s = np.where(s > 0, s, 1.0)
        cone = np.stack([segment_sum(wm * eta, owner, n) / s, segment_sum(wm * y, owner, n) / s], axis=-1)
        cones.append(np.where(found[:, None], cone, np.nan))
        free &= ~member
        if k >= 1:
            axes.append(np.stack(cones, axis=1))
    return axes


#: Stand-in coordinate for a missing axis (a jet with fewer constituents than N): far away.
FAR = 1.0e6


def _nearest(rap, y, owner, axes):
    """Squared distance to, and index of, the nearest axis of each particle's own jet.

    ``y`` and the axes' phi are relative to a per-jet reference inside the jet, so no
    wrapping is needed; missing (NaN) axes must already be set to ``FAR``. A loop over
    the N <= 3 axes with 1-D gathers beats an (M, N) fancy-indexed block.
    """
    best = np.full(rap.size, np.inf)
    index = np.zeros(rap.size, dtype=np.int64)
    for k in range(axes.shape[1]):
        d2 = (rap - axes[:, k, 0][owner]) ** 2 + (y - axes[:, k, 1][owner]) ** 2
        closer = d2 < best
        best = np.where(closer, d2, best)
        index[closer] = k
    return best, index


@njit(cache=True, nogil=True, error_model="numpy")
def _axis_distance_sq(rap1, phi1, rap2, phi2):
    # contrib's LightLikeAxis::DistanceSq (azimuths in [0, 2 pi)).
    dphi = abs(phi1 - phi2)
    dphi = min(dphi, TWO_PI - dphi)  # contrib's wrap above pi, without a branch
    drap = rap1 - rap2
    return drap * drap + dphi * dphi


# Scratch rows of the minimisation, one column per constituent of the jet (see _one_pass).
PT_RAP, PT_PHI, PT_PHI_BELOW, PT_PHI_ABOVE, BEST, WEIGHT, PHI_TERM = range(7)
# Rows of the per-axis scratch: position, the weighted sums of a step, |p|.
AX_RAP, AX_PHI, SUM_RAP, SUM_PHI, SUM_WEIGHT, MOMENTUM = range(6)


@njit(cache=True, nogil=True, error_model="numpy")
def _new_workspace(capacity, n_max):
    """Scratch of one thread for jets of up to ``capacity`` constituents, reused from jet to jet."""
    capacity = max(capacity, 1)
    slots, links = new_slots(capacity)
    return (slots, links, np.empty((7, capacity)), np.empty((2, capacity), dtype=np.int64),
            np.empty((6, n_max)), np.empty(n_max, dtype=np.bool_), np.zeros((n_max * (n_max + 1) // 2, 4)))


@njit(cache=True, nogil=True, error_model="numpy")
def _nearest_axes(rap, phi, lo, m, ax, k_axes, w, assign, row):
    """``w[BEST, i]`` = squared distance of constituent lo + i to its nearest axis, ``assign[row, i]``
    which (the first one on a tie). Axis by axis, so that the loop over constituents vectorises."""
    ar = ax[AX_RAP, 0]
    ap = ax[AX_PHI, 0]
    for i in range(m):
        w[BEST, i] = _axis_distance_sq(ar, ap, rap[lo + i], phi[lo + i])
        assign[row, i] = 0
    for a in range(1, k_axes):
        ar = ax[AX_RAP, a]
        ap = ax[AX_PHI, a]
        for i in range(m):
            d = _axis_distance_sq(ar, ap, rap[lo + i], phi[lo + i])
            closer = d < w[BEST, i]
            w[BEST, i] = d if closer else w[BEST, i]
            assign[row, i] = a if closer else assign[row, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _axis_momentum(px, py, pz, lo, m, assign, row, a):
    """|p| of the summed momenta of the constituents that ``assign[row]`` gives to axis a, in order."""
    sx = 0.0
    sy = 0.0
    sz = 0.0
    for i in range(m):
        if assign[row, i] == a:
            sx += px[lo + i]
            sy += py[lo + i]
            sz += pz[lo + i]
    return math.sqrt(sx**2 + sy**2 + sz**2)


@njit(cache=True, nogil=True, error_model="numpy")
def _weight(d2, beta):
    # contrib's (dR^2 + precision^2)^(beta/2 - 1), with its special cases.
    if beta == 2.0:
        return 1.0
    if beta == 0.0:
        return 1.0 / d2
    return d2 ** (0.5 * beta - 1.0)


@njit(cache=True, nogil=True, error_model="numpy")
def _one_pass(rap, phi, pt, px, py, pz, lo, hi, ax, k_axes, beta, max_iterations, precision, w, assign, pending):
    """contrib's ``DefaultMeasure::get_one_pass_axes`` (pt_R measures) on one jet, in place.

    Lloyd/Weiszfeld steps: each particle goes to its nearest axis, each axis moves to
    the mean (rap, phi) of its particles weighted by pT (dR^2 + precision^2)^(beta/2 - 1),
    until the mean axis shift is at most ``precision``. Sets ``ax[MOMENTUM]``, each axis's |p|
    (the norm of its particles' summed momentum in the last step that gave it any, 0 if none
    ever did), which sets where contrib's final light-like axis lies.

    The sums run over the particles in contrib's order, so the axes are contrib's to the last
    bit; what can vectorise is split off: the products of pT with rap and phi (once per jet),
    the nearest axis and the weight of every particle (one loop per axis), while the sums
    stay one sequential loop. |p| is only needed from an axis's last step with particles, so
    the assignments of the current and the previous step are kept and |p| summed once known.
    """
    m = hi - lo
    for i in range(m):
        # contrib's pT * rap * w and pT * phi * w (with phi moved by -+2 pi where the axis lies
        # across phi = 0) are (pT * rap) * w and so on: the products do not change between steps.
        w[PT_RAP, i] = pt[lo + i] * rap[lo + i]
        w[PT_PHI, i] = pt[lo + i] * phi[lo + i]
        w[PT_PHI_BELOW, i] = pt[lo + i] * (-TWO_PI + phi[lo + i])
        w[PT_PHI_ABOVE, i] = pt[lo + i] * (TWO_PI + phi[lo + i])
    for a in range(k_axes):
        ax[MOMENTUM, a] = 0.0
        pending[a] = False  # |p| to take from the previous step's assignment
    cur = 0
    cmp = np.inf
    h = 0
    while cmp > precision and h < max_iterations:
        h += 1
        _nearest_axes(rap, phi, lo, m, ax, k_axes, w, assign, cur)
        # Each in its own loop over the constituents, without branches: they vectorise.
        if beta == 1.0:
            for i in range(m):
                w[WEIGHT, i] = 1.0 / math.sqrt(precision * precision + w[BEST, i])
        else:
            for i in range(m):
                w[WEIGHT, i] = _weight(precision * precision + w[BEST, i], beta)
        for i in range(m):
            dphi = phi[lo + i] - ax[AX_PHI, assign[cur, i]]
            across = w[PT_PHI_BELOW, i] if dphi > math.pi else w[PT_PHI_ABOVE, i]
            w[PHI_TERM, i] = w[PT_PHI, i] if abs(dphi) <= math.pi else across
        if k_axes <= 3:
            # The sums of up to three axes in nine running scalars (each particle adds an exact
            # +0.0 to the other axes' sums, which leaves them as they are: a sum that starts at
            # +0.0 is never -0.0), not through memory, whose store-to-load latency chains them.
            r0 = r1 = r2 = f0 = f1 = f2 = s0 = s1 = s2 = 0.0
            for i in range(m):
                k = assign[cur, i]
                wi = w[WEIGHT, i]
                dr = w[PT_RAP, i] * wi
                df = w[PHI_TERM, i] * wi
                ds = pt[lo + i] * wi
                r0 += dr if k == 0 else 0.0
                f0 += df if k == 0 else 0.0
                s0 += ds if k == 0 else 0.0
                r1 += dr if k == 1 else 0.0
                f1 += df if k == 1 else 0.0
                s1 += ds if k == 1 else 0.0
                r2 += dr if k == 2 else 0.0
                f2 += df if k == 2 else 0.0
                s2 += ds if k == 2 else 0.0
            ax[SUM_RAP, 0], ax[SUM_PHI, 0], ax[SUM_WEIGHT, 0] = r0, f0, s0
            if k_axes > 1:
                ax[SUM_RAP, 1], ax[SUM_PHI, 1], ax[SUM_WEIGHT, 1] = r1, f1, s1
            if k_axes > 2:
                ax[SUM_RAP, 2], ax[SUM_PHI, 2], ax[SUM_WEIGHT, 2] = r2, f2, s2
        else:
            for a in range(k_axes):
                ax[SUM_RAP, a] = 0.0
                ax[SUM_PHI, a] = 0.0
                ax[SUM_WEIGHT, a] = 0.0
            for i in range(m):
                k = assign[cur, i]
                wi = w[WEIGHT, i]
                ax[SUM_RAP, k] += w[PT_RAP, i] * wi
                ax[SUM_PHI, k] += w[PHI_TERM, i] * wi
                ax[SUM_WEIGHT, k] += pt[lo + i] * wi
        cmp = 0.0
        for a in range(k_axes):
            if ax[SUM_WEIGHT, a] == 0.0:
                # No particle nearest: contrib keeps the old axis, and its |p| from the last
                # step that gave it particles (the previous one, if its |p| is still pending).
                if pending[a]:
                    ax[MOMENTUM, a] = _axis_momentum(px, py, pz, lo, m, assign, 1 - cur, a)
                    pending[a] = False
                continue
            r = ax[SUM_RAP, a] / ax[SUM_WEIGHT, a]
            f = np.fmod(ax[SUM_PHI, a] / ax[SUM_WEIGHT, a] + TWO_PI, TWO_PI)
            cmp += math.sqrt(_axis_distance_sq(ax[AX_RAP, a], ax[AX_PHI, a], r, f))
            ax[AX_RAP, a] = r
            ax[AX_PHI, a] = f
            pending[a] = True
        cmp /= k_axes
        cur = 1 - cur
    for a in range(k_axes):
        if pending[a]:
            ax[MOMENTUM, a] = _axis_momentum(px, py, pz, lo, m, assign, 1 - cur, a)


@njit(cache=True, nogil=True, error_model="numpy")
def _light_like(ax, k_axes):
    """contrib's ``LightLikeAxis::ConvertToPseudoJet`` followed by PseudoJet's (rap, phi)."""
    for a in range(k_axes):
        e = ax[MOMENTUM, a]
        x = math.exp(2.0 * ax[AX_RAP, a])
        pz = (x - 1.0) / (x + 1.0) * e
        pt = math.sqrt(e * e - pz * pz)
        ax[AX_RAP, a], ax[AX_PHI, a] = rap_phi(math.cos(ax[AX_PHI, a]) * pt, math.sin(ax[AX_PHI, a]) * pt, pz, e)


@njit(cache=True, nogil=True, error_model="numpy")
def _jet_taus(px, py, pz, e, rap, phi, pt, lo, hi, n_max, beta, r0, one_pass, max_iterations, precision,
              slots, links, w, assign, ax, pending, subjets, taus, j):
    m = hi - lo
    if m < 2:
        return
    cluster_jet(px, py, pz, e, rap, phi, lo, hi, n_max, slots, links, subjets)
    norm = 0.0
    for i in range(lo, hi):
        norm += pt[i] * r0**beta
    for n_sub in range(1, min(n_max, m - 1) + 1):
        row = n_sub * (n_sub - 1) // 2
        for a in range(n_sub):
            ax[AX_RAP, a], ax[AX_PHI, a] = rap_phi(
                subjets[row + a, 0], subjets[row + a, 1], subjets[row + a, 2], subjets[row + a, 3])
        if one_pass:
            _one_pass(rap, phi, pt, px, py, pz, lo, hi, ax, n_sub, beta, max_iterations, precision, w, assign, pending)
            _light_like(ax, n_sub)
        _nearest_axes(rap, phi, lo, m, ax, n_sub, w, assign, 0)
        tau = 0.0
        for i in range(m):
            best = w[BEST, i]
            tau += pt[lo + i] * (math.sqrt(best) if beta == 1.0 else best ** (0.5 * beta))
        taus[j, n_sub - 1] = tau / norm if norm > 0.0 else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _particles(px, py, pz, e):
    # Rapidity and azimuth once per chunk: the clustering and the minimisation share them.
    rap, phi = particle_rap_phi(px, py, pz, e)
    pt = np.empty(px.size)
    for i in range(px.size):
        pt[i] = math.sqrt(px[i] * px[i] + py[i] * py[i])
    return rap, phi, pt


@njit(cache=True, nogil=True, error_model="numpy")
def _taus_serial(px, py, pz, e, offsets, n_max, beta, r0, one_pass, max_iterations, precision):
    rap, phi, pt = _particles(px, py, pz, e)
    n_jets = offsets.size - 1
    taus = np.zeros((n_jets, n_max))
    # Scratch arrays passed one by one: numba counts references to arrays taken out of a
    # tuple, with atomic operations that cost more than a small jet's clustering.
    slots, links, w, assign, ax, pending, subjets = _new_workspace(max_count(offsets), n_max)
    for j in range(n_jets):
        _jet_taus(px, py, pz, e, rap, phi, pt, offsets[j], offsets[j + 1], n_max, beta, r0, one_pass, max_iterations,
                  precision, slots, links, w, assign, ax, pending, subjets, taus, j)
    return taus


def kt_taus_flat(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray, offsets: np.ndarray, *,
    n_max: int = 3, beta: float = 1.0, r0: float = 1.0, one_pass: bool = True, threads: int = 1,
) -> np.ndarray:
    """tau_1..tau_n_max ``(n_jets, n_max)`` with contrib's (OnePass_)KT_Axes, compiled, for a chunk.

    Four-momenta are flat float64 arrays, jet j owning ``offsets[j]:offsets[j + 1]``.
    ``threads > 1`` splits the jets into that many contiguous runs computed at once (the
    kernel releases the GIL); every jet's taus are the same either way.
    """
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, pz, e)]
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    settings = (int(n_max), float(beta), float(r0), bool(one_pass), MAX_ITERATIONS, PRECISION)
    n_jets = offsets.size - 1
    threads = max(1, min(int(threads), n_jets))
    if threads == 1:
        return _taus_serial(*arrays, offsets, *settings)
    # Python threads over runs of jets rather than numba's parallel loops: no OpenMP team
    # spinning on a core that another job (or the images of this one) needs.
    cuts = [(k * n_jets) // threads for k in range(threads + 1)]

    def run(k: int) -> np.ndarray:
        lo, hi = offsets[cuts[k]], offsets[cuts[k + 1]]
        return _taus_serial(*(a[lo:hi] for a in arrays), offsets[cuts[k]:cuts[k + 1] + 1] - lo, *settings)

    with ThreadPoolExecutor(threads - 1, thread_name_prefix="hepdl-taus") as pool:
        others = [pool.submit(run, k) for k in range(1, threads)]
        parts = [run(0)] + [f.result() for f in others]
    return np.concatenate(parts)


def massless_momenta(eta: np.ndarray, phi: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(pt, px, py, pz)`` of massless constituents given (eta, phi, energy), the four-vectors FastJet is given."""
    pt = e / np.cosh(eta)
    return pt, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)


def nsubjettiness_flat(
    eta: np.ndarray,
    phi: np.ndarray,
    e: np.ndarray,
    counts: np.ndarray,
    *,
    n_max: int = 3,
    beta: float = 1.0,
    r0: float = 1.0,
    axes: str = "onepass_kt",
    cone_radius: float = 0.3,
    threads: int = 1,
    momenta: tuple[np.ndarray, ...] | None = None,
) -> np.ndarray:
    """tau_1..tau_n_max, ``(N, n_max)`` float64, from flat massless towers (eta, phi, energy).

    A jet with at most N constituents has tau_N = 0 (each can be its own axis);
    an empty jet has all taus 0. ``threads`` > 1 spreads the kT axes' jets over threads.
    ``momenta`` is :func:`massless_momenta` of the same towers where the caller has it.
    """
    if axes not in AXES:
        raise ConfigError(f"nsubjettiness axes must be one of {AXES}, not {axes!r}")
    if n_max < 1:
        raise ConfigError(f"nsubjettiness n_max must be >= 1, not {n_max}")
    if axes != "cone":
        # The same four-momenta FastJet would be given: towers are massless.
        _, px, py, pz = momenta if momenta is not None else massless_momenta(eta, phi, e)
        return kt_taus_flat(px, py, pz, e, offsets_of(counts), n_max=n_max, beta=beta, r0=r0,
                            one_pass=axes == "onepass_kt", threads=threads)
    pt = momenta[0] if momenta is not None else e / np.cosh(eta)
    n = len(counts)
    owner = owner_index(counts)
    # Phi about each jet's hardest tower: a jet spans < pi in phi, so every difference
    # below is then plain subtraction, without wrapping.
    hardest = segment_argmax(pt, counts)
    ref = np.where(hardest >= 0, phi[np.maximum(hardest, 0)] if phi.size else 0.0, 0.0)
    y = wrap_phi(phi - ref[owner])
    seeds = _cone_axes(eta, y, pt, counts, n_max, cone_radius)
    norm = segment_sum(pt, owner, n) * r0**beta
    norm = np.where(norm > 0, norm, 1.0)
    taus = np.zeros((n, n_max))
    for n_sub, seed in enumerate(seeds, start=1):
        ax = np.where(np.isnan(seed), FAR, seed)
        d2, _ = _nearest(eta, y, owner, ax)
        dmin = np.sqrt(d2)
        tau = segment_sum(pt * dmin if beta == 1.0 else pt * dmin**beta, owner, n) / norm
        taus[:, n_sub - 1] = np.where(counts > n_sub, tau, 0.0)
    return taus


def nsubjettiness(
    calo_eta: ak.Array,
    calo_phi: ak.Array,
    calo_e: ak.Array,
    *,
    n_max: int = 3,
    beta: float = 1.0,
    r0: float = 1.0,
    axes: str = "onepass_kt",
    cone_radius: float = 0.3,
    threads: int = 1,
) -> np.ndarray:
    """tau_1..tau_n_max of each jet's towers (massless), ``(N, n_max)`` float64."""
    eta, counts = flat_content(calo_eta, "calo_eta")
    phi, _ = flat_content(calo_phi, "calo_phi")
    e, _ = flat_content(calo_e, "calo_e")
    return nsubjettiness_flat(
        eta.astype(np.float64), phi.astype(np.float64), e.astype(np.float64), counts,
        n_max=n_max, beta=beta, r0=r0, axes=axes, cone_radius=cone_radius, threads=threads,
    )
