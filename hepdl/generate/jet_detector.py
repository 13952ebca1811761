"""A fast detector model for the generated jet samples: calorimeter towers, tracks, pile-up, noise.

Everything works on flat per-particle numpy arrays plus an ``event`` index
(which event of the current batch a particle belongs to), so a whole batch of
events is handled by a few vectorised numpy calls, never a Python loop per
particle.

The model (one tower model for all particles, stated here so a user knows what
the sample is):

* Calorimeter: a fixed eta-phi grid of towers, 0.1 in eta for ``|eta| < 3``
  and 63 bins in phi (0.0997). Every visible final-state particle except
  muons and neutrinos puts its energy into its tower. Each tower with a deposit
  is smeared with ``sigma/E = a/sqrt(E) (+) c`` (hadronic-like 50%/sqrt(E) (+)
  3% in simulation) and multiplied by an energy scale; then every tower of the
  grid gets Gaussian electronic noise; towers above a fixed threshold are kept.
* Tracks: charged final-state particles with ``pT`` above a threshold and
  ``|eta| < 2.5``, kept with a tracking efficiency, ``pT`` smeared with
  ``sigma/pT = a (+) b pT``, and straight-line impact parameters (mm) from the
  particle's production vertex (so B/D-hadron and K0S/Lambda daughters are
  displaced, as Pythia gives them), smeared with ``sigma = a (+) b / pT``.
  ``z0`` is measured from the hard-scatter vertex at ``z = 0``; pile-up
  interactions sit at ``z ~ N(0, 45 mm)``, so their tracks carry large ``z0``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# PDG ids that leave no calorimeter deposit: neutrinos, and muons (minimum ionising).
INVISIBLE_IN_CALO = (12, 13, 14, 16)


@dataclass(frozen=True)
class DetectorResponse:
    """Settings of the detector model; :data:`SIM` and :data:`DATA` are the two variants."""

    calo_eta_max: float = 3.0
    tower_deta: float = 0.1
    tower_nphi: int = 63
    calo_stochastic: float = 0.50  # GeV^0.5
    calo_constant: float = 0.03
    calo_scale: float = 1.0
    calo_noise: float = 0.05  # GeV per tower
    tower_threshold: float = 0.3  # GeV
    track_eta_max: float = 2.5
    track_pt_min: float = 0.5  # GeV
    track_efficiency: float = 0.95
    track_pt_res_const: float = 0.01
    track_pt_res_slope: float = 5e-4  # per GeV
    d0_res_const: float = 0.010  # mm
    d0_res_slope: float = 0.10  # mm GeV
    z0_res_const: float = 0.050  # mm
    z0_res_slope: float = 0.20  # mm GeV
    pileup_mu: float = 10.0
    pileup_z_sigma: float = 45.0  # mm

    def as_dict(self) -> dict:
        return asdict(self)


SIM = DetectorResponse()
# "Data": a detector that is not what the simulation assumed (energy scale 3% high,
# worse resolution, more noise, lower tracking efficiency) at twice the pile-up.
DATA = DetectorResponse(
    calo_stochastic=0.60,
    calo_constant=0.05,
    calo_scale=1.03,
    calo_noise=0.15,
    track_efficiency=0.88,
    track_pt_res_const=0.015,
    track_pt_res_slope=7e-4,
    d0_res_const=0.015,
    z0_res_const=0.080,
    pileup_mu=20.0,
)


def pseudorapidity(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
    """eta = asinh(pz / pT); finite also for particles along the beam (pT -> 0 gives large |eta|)."""
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.maximum(pt, 1e-12))


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b wrapped into [-pi, pi)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def calorimeter_towers(
    event: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    energy: np.ndarray,
    n_events: int,
    response: DetectorResponse,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum particle energies into towers, smear, add noise, apply the threshold.

    Particles must already be calorimeter-visible and inside ``|eta| < calo_eta_max``.
    Returns flat ``(tower_event, tower_eta, tower_phi, tower_e)`` sorted by event, with
    eta/phi the tower centres. The grid is dense per event (60 x 63 cells), so the
    random draws per batch do not depend on where particles landed: same seed, same towers.
    """
    r = response
    n_eta = int(round(2 * r.calo_eta_max / r.tower_deta))
    n_phi = r.tower_nphi
    n_cells = n_eta * n_phi
    i_eta = np.clip(((eta + r.calo_eta_max) / r.tower_deta).astype(np.int64), 0, n_eta - 1)
    i_phi = np.clip(((phi + np.pi) / (2 * np.pi / n_phi)).astype(np.int64), 0, n_phi - 1)
    flat = event.astype(np.int64) * n_cells + i_eta * n_phi + i_phi
    grid = np.bincount(flat, weights=energy, minlength=n_events * n_cells)

    hit = grid > 0
    sigma_rel = np.sqrt(r.calo_stochastic**2 / np.where(hit, grid, 1.0) + r.calo_constant**2)
    smear = rng.standard_normal(grid.shape)
    noise = rng.standard_normal(grid.shape)
    measured = np.where(hit, r.calo_scale * grid * (1.0 + sigma_rel * smear), 0.0)
    measured += r.calo_noise * noise
    keep = np.flatnonzero(measured > r.tower_threshold)

    cell = keep % n_cells
    tower_eta = -r.calo_eta_max + (cell // n_phi + 0.5) * r.tower_deta
    tower_phi = -np.pi + (cell % n_phi + 0.5) * (2 * np.pi / n_phi)
    return keep // n_cells, tower_eta, tower_phi, measured[keep]


def reconstructed_tracks(
    event: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    charge: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
    response: DetectorResponse,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Tracks from charged particles: acceptance, efficiency, pT and impact-parameter smearing.

    Inputs are flat per-particle arrays (GeV, mm) of charged final-state particles;
    ``vx, vy, vz`` is the production vertex relative to the hard-scatter vertex.
    Returns flat arrays ``event, pt, eta, phi, d0, z0, charge``.
    """
    r = response
    pt = np.hypot(px, py)
    eta = pseudorapidity(px, py, pz)
    phi = np.arctan2(py, px)
    # One uniform per particle, drawn before any cut, keeps the draws independent of the selection.
    u = rng.random(len(pt))
    g = rng.standard_normal((3, len(pt)))
    keep = (pt > r.track_pt_min) & (np.abs(eta) < r.track_eta_max) & (u < r.track_efficiency)
    pt, eta, phi, g = pt[keep], eta[keep], phi[keep], g[:, keep]
    vx, vy, vz, pz = vx[keep], vy[keep], vz[keep], pz[keep]

    # Straight-line extrapolation to the point of closest approach to the beam line:
    # the curvature over a few mm at pT > 0.5 GeV changes d0 by well under its resolution.
    d0 = vx * np.sin(phi) - vy * np.cos(phi)
    z0 = vz - (vx * np.cos(phi) + vy * np.sin(phi)) * pz / pt

    sigma_pt = np.hypot(r.track_pt_res_const, r.track_pt_res_slope * pt)
    pt_meas = pt * np.maximum(1.0 + sigma_pt * g[0], 0.05)
    d0 = d0 + np.hypot(r.d0_res_const, r.d0_res_slope / pt) * g[1]
    z0 = z0 + np.hypot(r.z0_res_const, r.z0_res_slope / pt) * g[2]
    return {
        "event": event[keep],
        "pt": pt_meas,
        "eta": eta,
        "phi": phi,
        "d0": d0,
        "z0": z0,
        "charge": charge[keep],
    }


def overlay_pileup(
    pool: dict[str, np.ndarray],
    n_pool: int,
    n_pileup: np.ndarray,
    response: DetectorResponse,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Overlay minimum-bias interactions drawn from a pool on each hard event.

    ``pool`` holds flat particle arrays (``id, px, py, pz, e, vx, vy, vz, eta``)
    of ``n_pool`` minimum-bias events, ``pool["event"]`` numbering them; hard
    event ``i`` gets ``n_pileup[i]`` interactions. As experiments do with their
    pile-up libraries, a pool event may be used more than once; each use gets its
    own azimuthal rotation, a random z reflection (both symmetries of pp
    collisions) and its own vertex ``z ~ N(0, pileup_z_sigma)``, so reuses do not
    put the same particles at the same place in the detector.
    Returns flat arrays with ``event`` the hard event each particle is overlaid on.
    """
    total = int(n_pileup.sum())
    which = rng.integers(n_pool, size=total)
    angle = rng.uniform(-np.pi, np.pi, size=total)
    flip = np.where(rng.random(total) < 0.5, -1.0, 1.0)
    z_vertex = rng.normal(0.0, response.pileup_z_sigma, size=total)

    counts = np.bincount(pool["event"], minlength=n_pool)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lengths = counts[which]
    # Index of every particle of every use: each use's pool slice, laid end to end.
    use = np.repeat(np.arange(total), lengths)
    index = (
        starts[which][use]
        + np.arange(lengths.sum())
        - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )

    cos, sin, sign = np.cos(angle)[use], np.sin(angle)[use], flip[use]
    px, py, vx, vy = (pool[k][index] for k in ("px", "py", "vx", "vy"))
    return {
        "id": pool["id"][index],
        "px": cos * px - sin * py,
        "py": sin * px + cos * py,
        "pz": sign * pool["pz"][index],
        "e": pool["e"][index],
        "vx": cos * vx - sin * vy,
        "vy": sin * vx + cos * vy,
        "vz": sign * pool["vz"][index] + z_vertex[use],
        "eta": sign * pool["eta"][index],
        "event": np.repeat(np.arange(len(n_pileup)), n_pileup)[use],
    }
