"""N-subjettiness (Thaler & Van Tilburg, JHEP 03 (2011) 015) for a chunk of jets at once.

tau_N = sum_i pT_i min_k dR_ik^beta / (sum_i pT_i R0^beta)   (normalised measure),

with dR in (rapidity, phi). Axes follow fastjet-contrib's ``OnePass_KT_Axes``: the
exclusive-kT subjets (one FastJet call for the whole chunk through its awkward
multi-event interface), then one pass of Lloyd/Weiszfeld minimisation, run in
numpy over all jets together. ``axes="kt"`` skips the minimisation (contrib's
``KT_Axes``).
"""

from __future__ import annotations

import warnings

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError
from hepdl.represent.jagged import flat_content, owner_index, segment_sum, wrap_phi

AXES = ("onepass_kt", "kt")
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


def _rap_phi(px, py, pz, e):
    with np.errstate(divide="ignore", invalid="ignore"):
        rap = 0.5 * np.log((e + pz) / (e - pz))
    rap = np.where(np.isfinite(rap), rap, 0.0)
    return rap, np.arctan2(py, px)


def _distances(rap, phi, owner, axes):
    """(M, K) squared distances of each particle to each axis of its own jet; NaN axes are far."""
    d2 = (rap[:, None] - axes[owner, :, 0]) ** 2 + wrap_phi(phi[:, None] - axes[owner, :, 1]) ** 2
    return np.where(np.isnan(d2), np.inf, d2)


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
        d2 = _distances(sub_rap, sub_phi, sub_owner, cur)
        nearest = np.argmin(d2, axis=1)
        d = np.sqrt(d2[np.arange(sub_rap.size), nearest])
        w = sub_pt * np.maximum(d, precision) ** (beta - 2.0)
        key = sub_owner * k + nearest
        sw = np.bincount(key, weights=w, minlength=m * k)
        axis_phi = cur.reshape(-1, 2)[key, 1]
        srap = np.bincount(key, weights=w * sub_rap, minlength=m * k)
        sphi = np.bincount(key, weights=w * (axis_phi + wrap_phi(sub_phi - axis_phi)), minlength=m * k)
        got = (sw > 0).reshape(m, k)
        safe = np.where(sw > 0, sw, 1.0)
        new = np.empty_like(cur)
        new[..., 0] = np.where(got, (srap / safe).reshape(m, k), cur[..., 0])
        new[..., 1] = np.where(got, wrap_phi((sphi / safe).reshape(m, k)), cur[..., 1])
        move = np.nansum((new[..., 0] - cur[..., 0]) ** 2 + wrap_phi(new[..., 1] - cur[..., 1]) ** 2, axis=1)
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
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    seeds = _kt_axes(px, py, pz, e, counts, n_max)
    norm = segment_sum(pt, owner, n) * r0**beta
    norm = np.where(norm > 0, norm, 1.0)
    taus = np.zeros((n, n_max))
    for n_sub, seed in enumerate(seeds, start=1):
        ax = seed
        if axes == "onepass_kt":
            ax = _one_pass(eta, phi, pt, owner, seed, beta, MAX_ITERATIONS, PRECISION)
        dmin = np.sqrt(_distances(eta, phi, owner, ax).min(axis=1)) if eta.size else np.zeros(0)
        tau = segment_sum(pt * dmin**beta, owner, n) / norm
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
) -> np.ndarray:
    """tau_1..tau_n_max of each jet's towers (massless), ``(N, n_max)`` float64."""
    eta, counts = flat_content(calo_eta, "calo_eta")
    phi, _ = flat_content(calo_phi, "calo_phi")
    e, _ = flat_content(calo_e, "calo_e")
    return nsubjettiness_flat(
        eta.astype(np.float64), phi.astype(np.float64), e.astype(np.float64), counts,
        n_max=n_max, beta=beta, r0=r0, axes=axes,
    )
