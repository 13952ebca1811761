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

import awkward as ak
import numpy as np
from numba import njit, prange

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


@njit(cache=True, nogil=True, error_model="numpy")
def _one_pass(rap, phi, pt, px, py, pz, lo, hi, ax_rap, ax_phi, beta, max_iterations, precision):
    """contrib's ``DefaultMeasure::get_one_pass_axes`` (pt_R measures) on one jet, in place.

    Lloyd/Weiszfeld steps: each particle goes to its nearest axis, each axis moves to
    the mean (rap, phi) of its particles weighted by pT (dR^2 + precision^2)^(beta/2 - 1),
    until the mean axis shift is at most ``precision``. Returns each axis's |p| (the
    norm of its particles' summed momentum, 0 if it never had any), which sets where
    contrib's final light-like axis lies.
    """
    k_axes = ax_rap.size
    mom = np.zeros(k_axes)
    new_rap = np.empty(k_axes)
    new_phi = np.empty(k_axes)
    weight = np.empty(k_axes)
    sums = np.empty((k_axes, 3))
    cmp = np.inf
    h = 0
    while cmp > precision and h < max_iterations:
        h += 1
        new_rap[:] = 0.0
        new_phi[:] = 0.0
        weight[:] = 0.0
        sums[:] = 0.0
        for i in range(lo, hi):
            best = np.inf
            k = 0
            for a in range(k_axes):
                d = _axis_distance_sq(ax_rap[a], ax_phi[a], rap[i], phi[i])
                if d < best:
                    best = d
                    k = a
            d2 = precision * precision + best
            if beta == 1.0:
                w = 1.0 / math.sqrt(d2)
            elif beta == 2.0:
                w = 1.0
            elif beta == 0.0:
                w = 1.0 / d2
            else:
                w = d2 ** (0.5 * beta - 1.0)
            new_rap[k] += pt[i] * rap[i] * w
            dphi = phi[i] - ax_phi[k]
            if abs(dphi) <= math.pi:
                new_phi[k] += pt[i] * phi[i] * w
            elif dphi > math.pi:
                new_phi[k] += pt[i] * (-TWO_PI + phi[i]) * w
            else:
                new_phi[k] += pt[i] * (TWO_PI + phi[i]) * w
            weight[k] += pt[i] * w
            sums[k, 0] += px[i]
            sums[k, 1] += py[i]
            sums[k, 2] += pz[i]
        cmp = 0.0
        for a in range(k_axes):
            if weight[a] == 0.0:
                # No particle nearest: contrib keeps the old axis (and its |p|).
                continue
            r = new_rap[a] / weight[a]
            f = np.fmod(new_phi[a] / weight[a] + TWO_PI, TWO_PI)
            cmp += math.sqrt(_axis_distance_sq(ax_rap[a], ax_phi[a], r, f))
            ax_rap[a] = r
            ax_phi[a] = f
            mom[a] = math.sqrt(sums[a, 0] ** 2 + sums[a, 1] ** 2 + sums[a, 2] ** 2)
        cmp /= k_axes
    return mom


@njit(cache=True, nogil=True, error_model="numpy")
def _light_like(ax_rap, ax_phi, mom):
    """contrib's ``LightLikeAxis::ConvertToPseudoJet`` followed by PseudoJet's (rap, phi)."""
    for a in range(ax_rap.size):
        e = mom[a]
        x = math.exp(2.0 * ax_rap[a])
        pz = (x - 1.0) / (x + 1.0) * e
        pt = math.sqrt(e * e - pz * pz)
        ax_rap[a], ax_phi[a] = rap_phi(math.cos(ax_phi[a]) * pt, math.sin(ax_phi[a]) * pt, pz, e)


@njit(cache=True, nogil=True, error_model="numpy")
def _jet_taus(px, py, pz, e, rap, phi, pt, lo, hi, n_max, beta, r0, one_pass, max_iterations, precision, slots,
              links, subjets, out):
    m = hi - lo
    if m < 2:
        return
    cluster_jet(px, py, pz, e, rap, phi, lo, hi, n_max, slots, links, subjets)
    norm = 0.0
    for i in range(lo, hi):
        norm += pt[i] * r0**beta
    for n_sub in range(1, min(n_max, m - 1) + 1):
        row = n_sub * (n_sub - 1) // 2
        ax_rap = np.empty(n_sub)
        ax_phi = np.empty(n_sub)
        for a in range(n_sub):
            ax_rap[a], ax_phi[a] = rap_phi(subjets[row + a, 0], subjets[row + a, 1], subjets[row + a, 2], subjets[row + a, 3])
        if one_pass:
            mom = _one_pass(rap, phi, pt, px, py, pz, lo, hi, ax_rap, ax_phi, beta, max_iterations, precision)
            _light_like(ax_rap, ax_phi, mom)
        tau = 0.0
        for i in range(lo, hi):
            best = np.inf
            for a in range(n_sub):
                d = _axis_distance_sq(ax_rap[a], ax_phi[a], rap[i], phi[i])
                if d < best:
                    best = d
            tau += pt[i] * (math.sqrt(best) if beta == 1.0 else best ** (0.5 * beta))
        out[n_sub - 1] = tau / norm if norm > 0.0 else 0.0


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
    subjets = np.zeros((n_max * (n_max + 1) // 2, 4))
    slots, links = new_slots(max_count(offsets))
    for j in range(n_jets):
        _jet_taus(px, py, pz, e, rap, phi, pt, offsets[j], offsets[j + 1], n_max, beta, r0,
                  one_pass, max_iterations, precision, slots, links, subjets, taus[j])
    return taus


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _taus_parallel(px, py, pz, e, offsets, n_max, beta, r0, one_pass, max_iterations, precision):
    rap, phi, pt = _particles(px, py, pz, e)
    n_jets = offsets.size - 1
    taus = np.zeros((n_jets, n_max))
    for j in prange(n_jets):
        subjets = np.zeros((n_max * (n_max + 1) // 2, 4))
        slots, links = new_slots(offsets[j + 1] - offsets[j])
        _jet_taus(px, py, pz, e, rap, phi, pt, offsets[j], offsets[j + 1], n_max, beta, r0,
                  one_pass, max_iterations, precision, slots, links, subjets, taus[j])
    return taus


def kt_taus_flat(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray, offsets: np.ndarray, *,
    n_max: int = 3, beta: float = 1.0, r0: float = 1.0, one_pass: bool = True, threads: int = 1,
) -> np.ndarray:
    """tau_1..tau_n_max ``(n_jets, n_max)`` with contrib's (OnePass_)KT_Axes, compiled, for a chunk.

    Four-momenta are flat float64 arrays, jet j owning ``offsets[j]:offsets[j + 1]``.
    ``threads > 1`` spreads the jets over numba's thread pool (at most ``threads``).
    """
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, pz, e)]
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    args = (*arrays, offsets, int(n_max), float(beta), float(r0), bool(one_pass), MAX_ITERATIONS, PRECISION)
    if threads <= 1:
        return _taus_serial(*args)
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        return _taus_parallel(*args)
    finally:
        numba.set_num_threads(previous)


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
