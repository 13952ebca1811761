"""N-subjettiness (Thaler & Van Tilburg, JHEP 03 (2011) 015) for a chunk of jets at once.

tau_N = sum_i pT_i min_k dR_ik^beta / (sum_i pT_i R0^beta)   (normalised measure),

with dR in (rapidity, phi). Axes follow fastjet-contrib's ``OnePass_KT_Axes``: the
exclusive-kT subjets (one FastJet call for the whole chunk through its awkward
multi-event interface), then one pass of Lloyd/Weiszfeld minimisation, run in
numpy over all jets together. ``axes="kt"`` skips the minimisation (contrib's
``KT_Axes``). ``axes="cone"`` is a fast approximation without FastJet: the pT-weighted
centroid for N = 1, and for N >= 2 the pT-weighted centroids of greedy cones of
``cone_radius`` around the hardest towers not yet taken (for well-separated prongs
these are the kT subjet axes; tau values then differ from contrib's by a few per cent).
"""

from __future__ import annotations

import warnings

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError
from hepdl.represent.jagged import flat_content, owner_index, segment_argmax, segment_sum, wrap_phi

AXES = ("onepass_kt", "kt", "cone")
#: Contrib's defaults for the one-pass minimisation.
MAX_ITERATIONS = 1000
PRECISION = 1e-4


def _kt_axes(px, py, pz, e, counts, n_axes: int) -> list[np.ndarray]:
    """Exclusive-kT axes (rap, phi) for N = 1..n_axes; entry N-1 is (n_jets, N, 2), NaN-padded."""
    n = len(counts)
    owner = owner_index(counts)
    tot = [segment_sum(c, owner, n) for c in (px, py, pz, e)]
    axes = [np.stack(_rap_phi(*tot), axis=-1)[:, None, :]]
    if n_axes < 2:
        return axes
    many = counts >= 2
    import fastjet  # optional dependency (extra "gen"); needed only for N >= 2

    keep = np.repeat(many, counts)
    sub_counts = counts[many]
    vectors = ak.unflatten(
        ak.zip({"px": px[keep], "py": py[keep], "pz": pz[keep], "E": e[keep]}, with_name="Momentum4D"),
        sub_counts,
    )
    # R at FastJet's maximum: in exclusive mode the beam distance then never wins, as in contrib.
    jetdef = fastjet.JetDefinition(fastjet.kt_algorithm, fastjet.JetDefinition.max_allowable_R)
    sequence = fastjet.ClusterSequence(vectors, jetdef)
    for n_sub in range(2, n_axes + 1):
        with warnings.catch_warnings():
            # fastjet's python layer warns on every exclusive call, kT included (a check that
            # compares a JetDefinition with algorithm codes); kT exclusive jets are well defined.
            warnings.filterwarnings("ignore", message="dcut and exclusive jets", category=UserWarning)
            sub = sequence.exclusive_jets_up_to(n_sub)
        padded = ak.fill_none(ak.pad_none(sub, n_sub, axis=1, clip=True), {"px": 0.0, "py": 0.0, "pz": 0.0, "E": 0.0})
        comps = [ak.to_numpy(padded[c]).astype(np.float64) for c in ("px", "py", "pz", "E")]
        rap, phi = _rap_phi(*comps)
        found = comps[3] > 0
        full = np.full((n, n_sub, 2), np.nan)
        full[many] = np.stack([np.where(found, rap, np.nan), np.where(found, phi, np.nan)], axis=-1)
        axes.append(full)
    return axes


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


def _rap_phi(px, py, pz, e):
    with np.errstate(divide="ignore", invalid="ignore"):
        rap = 0.5 * np.log((e + pz) / (e - pz))
    rap = np.where(np.isfinite(rap), rap, 0.0)
    return rap, np.arctan2(py, px)


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


def _one_pass(rap, phi, pt, owner, axes, beta, max_iterations, precision):
    """Lloyd/Weiszfeld iterations from the seed axes until each jet's mean squared axis shift < precision."""
    axes = axes.copy()
    k = axes.shape[1]
    # Work on the jets still moving only, re-indexed compactly: convergence has a long
    # tail of a few slow jets, which must not cost a pass over the whole chunk each time.
    jets = np.arange(axes.shape[0])
    sub_rap, sub_phi, sub_pt, sub_owner = rap, phi, pt, owner
    cur = axes
    for _ in range(max_iterations):
        m = len(jets)
        d2, nearest = _nearest(sub_rap, sub_phi, sub_owner, cur)
        d = np.sqrt(d2)
        w = sub_pt / np.maximum(d, precision) if beta == 1.0 else sub_pt * np.maximum(d, precision) ** (beta - 2.0)
        key = sub_owner * k + nearest
        sw = np.bincount(key, weights=w, minlength=m * k)
        srap = np.bincount(key, weights=w * sub_rap, minlength=m * k)
        sphi = np.bincount(key, weights=w * sub_phi, minlength=m * k)
        got = (sw > 0).reshape(m, k)
        safe = np.where(sw > 0, sw, 1.0)
        new = np.empty_like(cur)
        new[..., 0] = np.where(got, (srap / safe).reshape(m, k), cur[..., 0])
        new[..., 1] = np.where(got, (sphi / safe).reshape(m, k), cur[..., 1])
        move = ((new[..., 0] - cur[..., 0]) ** 2 + (new[..., 1] - cur[..., 1]) ** 2).sum(axis=1)
        axes[jets] = new
        # Stopping rule as in contrib: mean squared axis shift below accuracy squared.
        moving = move / k >= precision**2
        if not moving.any():
            break
        if not moving.all():
            keep_part = moving[sub_owner]
            remap = np.cumsum(moving) - 1
            sub_rap, sub_phi, sub_pt = sub_rap[keep_part], sub_phi[keep_part], sub_pt[keep_part]
            sub_owner = remap[sub_owner[keep_part]]
            jets = jets[moving]
            new = new[moving]
        cur = new
    return axes


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
) -> np.ndarray:
    """tau_1..tau_n_max, ``(N, n_max)`` float64, from flat massless towers (eta, phi, energy).

    A jet with at most N constituents has tau_N = 0 (each can be its own axis);
    an empty jet has all taus 0.
    """
    if axes not in AXES:
        raise ConfigError(f"nsubjettiness axes must be one of {AXES}, not {axes!r}")
    if n_max < 1:
        raise ConfigError(f"nsubjettiness n_max must be >= 1, not {n_max}")
    n = len(counts)
    owner = owner_index(counts)
    pt = e / np.cosh(eta)
    # Phi about each jet's hardest tower: a jet spans < pi in phi, so every difference
    # below is then plain subtraction, without wrapping.
    hardest = segment_argmax(pt, counts)
    ref = np.where(hardest >= 0, phi[np.maximum(hardest, 0)] if phi.size else 0.0, 0.0)
    y = wrap_phi(phi - ref[owner])
    if axes == "cone":
        seeds = _cone_axes(eta, y, pt, counts, n_max, cone_radius)
    else:
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        seeds = _kt_axes(px, py, pz, e, counts, n_max)
        for seed in seeds:
            seed[..., 1] = wrap_phi(seed[..., 1] - ref[:, None])
    norm = segment_sum(pt, owner, n) * r0**beta
    norm = np.where(norm > 0, norm, 1.0)
    taus = np.zeros((n, n_max))
    for n_sub, seed in enumerate(seeds, start=1):
        ax = np.where(np.isnan(seed), FAR, seed)
        if axes == "onepass_kt":
            ax = _one_pass(eta, y, pt, owner, ax, beta, MAX_ITERATIONS, PRECISION)
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
) -> np.ndarray:
    """tau_1..tau_n_max of each jet's towers (massless), ``(N, n_max)`` float64."""
    eta, counts = flat_content(calo_eta, "calo_eta")
    phi, _ = flat_content(calo_phi, "calo_phi")
    e, _ = flat_content(calo_e, "calo_e")
    return nsubjettiness_flat(
        eta.astype(np.float64), phi.astype(np.float64), e.astype(np.float64), counts,
        n_max=n_max, beta=beta, r0=r0, axes=axes, cone_radius=cone_radius,
    )
