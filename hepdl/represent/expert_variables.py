"""Expert jet variables for the baseline BDT: mass, N-subjettiness ratios, pT, multiplicities."""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepdl.represent.jagged import flat_content, segment_total
from hepdl.represent.nsubjettiness import massless_momenta, nsubjettiness_flat

EXPERT_FEATURES = ("mass", "tau1", "tau2", "tau3", "tau21", "tau32", "pt", "n_constituents", "n_tracks")


def invariant_mass(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Invariant mass of each jet's summed flat four-momenta, (N,) float64."""
    # Constituents are stored jet by jet: sums over contiguous runs (reduceat), no owner index.
    sx, sy, sz, en = (segment_total(a, counts) for a in (px, py, pz, e))
    # Rounding can leave a tiny negative m^2 for (nearly) collinear towers.
    return np.sqrt(np.maximum(en**2 - sx**2 - sy**2 - sz**2, 0.0))


def tower_mass(eta: np.ndarray, phi: np.ndarray, e: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Invariant mass of each jet's towers taken as massless four-vectors, (N,) float64."""
    _, px, py, pz = massless_momenta(eta, phi, e)
    return invariant_mass(px, py, pz, e, counts)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # A jet with tau_{N-1} = 0 has too few constituents for the ratio: report 0, not NaN.
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def expert_jet_variables(
    calo_eta: ak.Array,
    calo_phi: ak.Array,
    calo_e: ak.Array,
    jet_pt: np.ndarray,
    n_tracks: np.ndarray,
    *,
    beta: float = 1.0,
    r0: float = 1.0,
    axes: str = "onepass_kt",
    cone_radius: float = 0.3,
    threads: int = 1,
) -> np.ndarray:
    """``(N, len(EXPERT_FEATURES))`` float32 in the order of :data:`EXPERT_FEATURES`.

    ``mass`` is computed from the towers (compare with the file's ``jet_mass``); ``pt`` is the
    jet pT as given; the taus use the normalised measure with ``beta`` and ``r0``, their
    exact axes computed on ``threads`` threads (the result does not depend on it).
    """
    eta, counts = flat_content(calo_eta, "calo_eta")
    phi, _ = flat_content(calo_phi, "calo_phi")
    e, _ = flat_content(calo_e, "calo_e")
    eta, phi, e = (a.astype(np.float64) for a in (eta, phi, e))
    # The mass and the taus start from the same massless four-momenta: computed once
    # (four transcendental passes over the towers, ~1 us per jet).
    momenta = massless_momenta(eta, phi, e)
    taus = nsubjettiness_flat(eta, phi, e, counts, n_max=3, beta=beta, r0=r0, axes=axes, cone_radius=cone_radius,
                              threads=threads, momenta=momenta)
    out = np.empty((len(counts), len(EXPERT_FEATURES)), dtype=np.float32)
    out[:, 0] = invariant_mass(*momenta[1:], e, counts)
    out[:, 1:4] = taus
    out[:, 4] = _ratio(taus[:, 1], taus[:, 0])
    out[:, 5] = _ratio(taus[:, 2], taus[:, 1])
    out[:, 6] = np.asarray(jet_pt)
    out[:, 7] = counts
    out[:, 8] = np.asarray(n_tracks)
    return out
