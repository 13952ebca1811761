"""Neutrino interactions in a segmented two-view detector: a fast, vectorised toy.

No external event generator: per chunk of events, the interaction kinematics
are drawn as arrays over events, the final-state particles as a flat table,
and their energy deposits as flat clouds of points (track steps, shower
packets), which :func:`hepdl.generate.neutrino_detector.digitise` turns into
hits. Nothing loops over events, particles or hits; the only Python loops are
over chunks and over a handful of particle species.

Physics (each a simplification chosen for the shapes a classifier learns):

* Beam along ``z``. ``nu_energy`` from a narrow off-axis-like spectrum peaked
  near 2 GeV with a high-energy tail; nu_tau CC from above the 3.5 GeV threshold.
* Inelasticity ``y`` and Bjorken ``x`` from Beta distributions; the lepton
  angle follows from ``Q^2 = 2 M x y E``; the hadronic system takes the recoil
  momentum and splits into protons, charged pions, pi0s and neutrons.
* Charged tracks (mu, pi, p): range from a Bragg-Kleeman law capped by the
  minimum-ionising ~2 MeV/cm (~5 m per GeV for muons at 1 g/cm3), Bragg rise
  at the end, Landau-like fluctuations, Highland multiple scattering.
  Pions and protons interact after an exponential path (lambda_I = 80 cm)
  and leave a hadronic blob: shorter, wider and clumpier than an EM shower.
* Electrons and photons shower with a Gamma-function longitudinal profile in
  radiation lengths (X0 = 40 cm) and a core + halo transverse profile of
  Moliere radius 10 cm; photons first travel an exponential distance of mean
  9/7 X0, so pi0 photons leave a gap to the vertex.
* nu_tau CC: the tau decays at the vertex to mu (17 %), e (18 %) or hadrons.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Literal

import awkward as ak
import numpy as np
from tqdm import tqdm

from hepdl.errors import ConfigError
from hepdl.generate import neutrino_detector as det
from hepdl.io import TreeWriter

#: Class index -> name, as in the ``label`` branch.
CLASS_NAMES = ("numu_cc", "nue_cc", "nc", "nutau_cc")
CHUNK_SIZE = 1000

M_NUCLEON = 0.939
M_MU = 0.10566
M_E = 0.000511
M_PI = 0.13957
M_PI0 = 0.13498
M_P = 0.93827
M_TAU = 1.77686

#: Particle species of the flat particle table (pi0 are decayed to photons first).
MUON, ELECTRON, PHOTON, PION, PROTON, NEUTRON, PI0 = range(7)
_MASS = {
    MUON: M_MU,
    ELECTRON: M_E,
    PHOTON: 0.0,
    PION: M_PI,
    PROTON: M_P,
    NEUTRON: 0.9396,
    PI0: M_PI0,
}

#: Hadron species in the hadronic system, with probabilities (protons dominate
#: at a few GeV: quasi-elastic and resonance production).
_HADRON_SPECIES = np.array([PROTON, PION, PI0, NEUTRON])
_HADRON_PROB = np.array([0.40, 0.28, 0.22, 0.10])

TRACK_STEP_CM = 2.5  # < cell width and plane pitch, so a track lights every cell it crosses
SHOWER_PACKET_MEV = 5.0  # energy quantum of shower clouds; showers keep their fluctuations
BLOB_PACKET_MEV = 5.0


# ---------------------------------------------------------------- small vector helpers


def _segment_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each segment of a flat array split by ``counts``."""
    total = np.cumsum(values, axis=0)
    starts = np.cumsum(counts) - counts
    nonempty = counts > 0
    offset = np.zeros((len(counts),) + values.shape[1:])
    offset[nonempty] = total[starts[nonempty]] - values[starts[nonempty]]
    return total - np.repeat(offset, counts, axis=0)


def _local_index(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n-1 within each segment of a flat array split by ``counts``."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum())) - np.repeat(starts, counts)


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _perpendicular_basis(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to the unit vectors ``u`` (shape (n, 3)) and each other."""
    # Cross with the axis least aligned with u, so the cross product never vanishes.
    helper = np.zeros_like(u)
    helper[np.arange(len(u)), np.argmin(np.abs(u), axis=1)] = 1.0
    e1 = _normalise(np.cross(u, helper))
    return e1, np.cross(u, e1)


def _rotate_about(u: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Directions at polar angle ``theta`` and azimuth ``phi`` around the axes ``u``."""
    e1, e2 = _perpendicular_basis(u)
    s = np.sin(theta)[:, None]
    return (
        np.cos(theta)[:, None] * u + s * np.cos(phi)[:, None] * e1 + s * np.sin(phi)[:, None] * e2
    )


class _Points:
    """Energy deposits accumulated as flat arrays (event, x, y, z, e in MeV)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, event: np.ndarray, pos: np.ndarray, e_mev: np.ndarray) -> None:
        self.parts.append((event, pos, e_mev))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            return np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0)
        return tuple(np.concatenate(a) for a in zip(*self.parts, strict=True))  # type: ignore[return-value]


# ---------------------------------------------------------------- ranges and tracks


def csda_range_cm(ke_gev: np.ndarray, mass_gev: float) -> np.ndarray:
    """Range of a charged particle of kinetic energy ``ke_gev``, in cm.

    Bragg-Kleeman for protons in water (R = 0.0022 cm * T[MeV]^1.77), scaled to
    the particle's mass, capped by the minimum-ionising estimate T / (dE/dx)_min,
    which it overestimates for relativistic particles.
    """
    t_mev = 1000.0 * np.asarray(ke_gev, dtype=np.float64)
    scale = mass_gev / M_P
    bragg_kleeman = scale * 0.0022 * (t_mev / scale) ** 1.77 / det.DENSITY_G_CM3
    return np.minimum(bragg_kleeman, t_mev / det.DEDX_MIP_MEV_CM)


def _tracks(
    points: _Points,
    event: np.ndarray,
    start: np.ndarray,
    u: np.ndarray,
    ke: np.ndarray,
    mass: float,
    rng: np.random.Generator,
    interacts: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deposit charged tracks; return where and with what (event, end, direction, ke) they interacted."""
    full_range = csda_range_cm(ke, mass)
    length = full_range.copy()
    if interacts:
        length = np.minimum(full_range, rng.exponential(det.INTERACTION_LENGTH_CM, len(ke)))
    # Kinetic energy left at the end; T ~ R^(1/1.77) along the Bragg-Kleeman curve.
    ke_left = ke * np.clip((full_range - length) / np.maximum(full_range, 1e-9), 0, 1) ** (1 / 1.77)
    n_steps = np.maximum(np.ceil(length / TRACK_STEP_CM).astype(np.int64), 1)
    step = np.repeat(np.arange(len(ke)), n_steps)
    k = _local_index(n_steps)
    ds = np.minimum(TRACK_STEP_CM, np.repeat(length, n_steps) - k * TRACK_STEP_CM)
    ds = np.maximum(ds, 1e-3)
    s_mid = k * TRACK_STEP_CM + ds / 2
    residual = np.maximum(full_range[step] - s_mid, 0.5)

    # Bragg rise: dE/dx ~ R_residual^(1/1.77 - 1), never below minimum ionising.
    t_res = ke[step] * (residual / np.maximum(full_range[step], 1e-9)) ** (1 / 1.77)
    dedx = np.maximum(det.DEDX_MIP_MEV_CM, 1000.0 * t_res / (1.77 * residual))
    w = dedx * ds * rng.gamma(3.0, 1 / 3.0, len(step))  # Landau-like skewed fluctuation
    deposit = 1000.0 * (ke - ke_left)
    w *= np.repeat(deposit / np.maximum(np.bincount(step, w, len(ke)), 1e-12), n_steps)

    # Highland multiple scattering, momentum falling along the track.
    p = np.sqrt(t_res * (t_res + 2 * mass))
    beta = p / (t_res + mass)
    x_over_x0 = ds / det.RADIATION_LENGTH_CM
    theta0 = 0.0136 / (beta * p) * np.sqrt(x_over_x0) * (1 + 0.038 * np.log(x_over_x0))
    kicks = rng.normal(size=(len(step), 2)) * np.minimum(theta0, 0.5)[:, None]
    bend = _segment_cumsum(kicks, n_steps)
    e1, e2 = _perpendicular_basis(u)
    direction = _normalise(u[step] + bend[:, :1] * e1[step] + bend[:, 1:] * e2[step])
    pos = (
        start[step]
        + _segment_cumsum(direction * ds[:, None], n_steps)
        - direction * (ds / 2)[:, None]
    )
    points.add(event[step], pos, w)

    ends = _segment_cumsum(direction * ds[:, None], n_steps)[np.cumsum(n_steps) - 1] + start
    last_dir = direction[np.cumsum(n_steps) - 1]
    hit = ke_left > 0.01
    return event[hit], ends[hit], last_dir[hit], ke_left[hit]


# ---------------------------------------------------------------- showers and blobs


def _em_showers(
    points: _Points,
    event: np.ndarray,
    start: np.ndarray,
    u: np.ndarray,
    e_gev: np.ndarray,
    c: float,
    rng: np.random.Generator,
) -> None:
    """EM showers: Gamma longitudinal profile in X0 (t_max = ln(E/Ec) + c), core + halo transverse."""
    b = 0.5
    t_max = np.log(np.maximum(e_gev, 1e-4) / det.CRITICAL_ENERGY_GEV) + c
    a = np.maximum(1.0 + b * t_max, 1.05)
    n_pk = np.maximum(np.ceil(1000.0 * e_gev / SHOWER_PACKET_MEV).astype(np.int64), 1)
    idx = np.repeat(np.arange(len(e_gev)), n_pk)
    t = rng.gamma(a[idx], 1 / b) * det.RADIATION_LENGTH_CM
    # ~90 % of the energy within one Moliere radius: a narrow core and a wide halo.
    sigma = np.where(rng.random(len(idx)) < 0.8, 0.3, 1.0) * det.MOLIERE_RADIUS_CM
    r1, r2 = rng.normal(size=(2, len(idx))) * sigma
    e1, e2 = _perpendicular_basis(u)
    pos = start[idx] + t[:, None] * u[idx] + r1[:, None] * e1[idx] + r2[:, None] * e2[idx]
    points.add(event[idx], pos, np.repeat(1000.0 * e_gev / n_pk, n_pk))


def _hadronic_blobs(
    points: _Points,
    event: np.ndarray,
    centre: np.ndarray,
    u: np.ndarray,
    e_gev: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Hadronic showers: a few clumps (secondaries) spread along and across ``u``."""
    # Part of a hadron shower's energy is invisible (binding, neutrons, slow nuclear fragments).
    e_vis = e_gev * rng.uniform(0.5, 0.85, len(e_gev))
    n_sub = 1 + rng.poisson(e_vis / 0.15)
    sub = np.repeat(np.arange(len(e_gev)), n_sub)
    frac = rng.gamma(0.7, 1.0, len(sub))  # very uneven sharing between clumps: clumpy
    frac /= np.bincount(sub, frac, len(e_gev))[sub]
    e_sub = e_vis[sub] * frac
    e1, e2 = _perpendicular_basis(u)
    along = rng.gamma(2.0, 0.25 * det.INTERACTION_LENGTH_CM, len(sub))
    across = rng.normal(size=(2, len(sub))) * 15.0
    sub_centre = (
        centre[sub]
        + along[:, None] * u[sub]
        + across[0][:, None] * e1[sub]
        + across[1][:, None] * e2[sub]
    )
    n_pk = np.maximum(np.ceil(1000.0 * e_sub / BLOB_PACKET_MEV).astype(np.int64), 1)
    idx = np.repeat(np.arange(len(sub)), n_pk)
    pos = sub_centre[idx] + rng.normal(size=(len(idx), 3)) * 5.0
    points.add(event[sub][idx], pos, np.repeat(1000.0 * e_sub / n_pk, n_pk))


# ---------------------------------------------------------------- kinematics


def _sample_energy(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Neutrino energy (GeV): an off-axis-like peak at ~2 GeV plus a broad tail."""
    n = len(label)
    peak = rng.lognormal(math.log(2.0), 0.22, n)
    tail = rng.lognormal(math.log(3.0), 0.6, n)
    e = np.where(rng.random(n) < 0.8, peak, tail)
    e = np.clip(e, 0.5, 20.0)
    # nu_tau CC needs E > 3.5 GeV; the tau spectrum is what survives above threshold.
    return np.where(label == 3, 3.5 + rng.gamma(2.0, 1.2, n), e)


def _particles(
    label: np.ndarray, vertex: np.ndarray, rng: np.random.Generator
) -> tuple[dict, np.ndarray]:
    """Final-state particles of each event as a flat table, and the neutrino energies."""
    n = len(label)
    e_nu = _sample_energy(label, rng)
    y = 0.03 + 0.94 * rng.beta(1.2, 2.0, n)
    x_bj = np.clip(rng.beta(2.0, 3.0, n), 0.02, 1.0)
    m_lep = np.select([label == 0, label == 1, label == 3], [M_MU, M_E, M_TAU], 0.0)
    e_lep = np.maximum((1 - y) * e_nu, m_lep + 0.05)
    nu = e_nu - e_lep  # energy transfer to the hadronic system
    p_lep = np.sqrt(np.maximum(e_lep**2 - m_lep**2, 1e-12))
    # Q^2 = 2 M x nu = 2 E (E_l - p_l cos theta) - m_l^2
    q2 = 2 * M_NUCLEON * x_bj * nu
    cos_lep = np.clip((e_lep - (q2 + m_lep**2) / (2 * e_nu)) / p_lep, -1.0, 1.0)
    phi = rng.uniform(0, 2 * np.pi, n)
    beam = np.tile([0.0, 0.0, 1.0], (n, 1))
    u_lep = _rotate_about(beam, np.arccos(cos_lep), phi)
    u_had = _normalise(beam * e_nu[:, None] - u_lep * p_lep[:, None] + 1e-9 * beam)

    species, energy, direction, owner = [], [], [], []

    def emit(events: np.ndarray, kind: np.ndarray | int, e: np.ndarray, u: np.ndarray) -> None:
        owner.append(events)
        species.append(np.broadcast_to(kind, len(events)).astype(np.int8))
        energy.append(e)
        direction.append(u)

    events = np.arange(n)
    # The charged lepton. Energies in the table: kinetic for massive particles, total for e/gamma.
    mu = label == 0
    emit(events[mu], MUON, e_lep[mu] - M_MU, u_lep[mu])
    el = label == 1
    emit(events[el], ELECTRON, e_lep[el], u_lep[el])
    tau = np.flatnonzero(label == 3)
    if len(tau):
        mode = rng.random(len(tau))
        f = rng.uniform(0.2, 0.7, len(tau))  # visible fraction; the rest goes to neutrinos
        e_tau = e_lep[tau]
        opening = np.minimum(M_TAU / e_tau, 1.0) * rng.random(len(tau))
        u_d = _rotate_about(u_lep[tau], opening, rng.uniform(0, 2 * np.pi, len(tau)))
        to_mu, to_e = mode < 0.174, (mode >= 0.174) & (mode < 0.352)
        to_h = ~(to_mu | to_e)
        emit(tau[to_mu], MUON, np.maximum(f * e_tau - M_MU, 0.02)[to_mu], u_d[to_mu])
        emit(tau[to_e], ELECTRON, (f * e_tau)[to_e], u_d[to_e])
        # Hadronic decays: a charged pion, half the time with a pi0 (tau -> rho nu).
        with_pi0 = to_h & (rng.random(len(tau)) < 0.5)
        share = np.where(with_pi0, rng.uniform(0.3, 0.7, len(tau)), 1.0)
        emit(tau[to_h], PION, np.maximum(share * f * e_tau - M_PI, 0.02)[to_h], u_d[to_h])
        u_pi0 = _rotate_about(
            u_d, rng.uniform(0, 0.3, len(tau)), rng.uniform(0, 2 * np.pi, len(tau))
        )
        emit(
            tau[with_pi0],
            PI0,
            np.maximum((1 - share) * f * e_tau - M_PI0, 0.01)[with_pi0],
            u_pi0[with_pi0],
        )

    # The hadronic system: multiplicity grows with nu; energy shared with Dirichlet(1) fractions.
    n_had = np.minimum(1 + rng.poisson(1.2 * nu), 8)
    had_event = np.repeat(events, n_had)
    frac = rng.exponential(1.0, len(had_event))
    frac /= np.bincount(had_event, frac, n)[had_event]
    kind = rng.choice(_HADRON_SPECIES, size=len(had_event), p=_HADRON_PROB)
    e_had = frac * nu[had_event]
    spread = rng.normal(0, 0.6, len(had_event))
    u_h = _rotate_about(u_had[had_event], np.abs(spread), rng.uniform(0, 2 * np.pi, len(had_event)))
    emit(had_event, kind, e_had, u_h)

    table = {
        "event": np.concatenate(owner).astype(np.int64),
        "species": np.concatenate(species),
        "energy": np.concatenate(energy),
        "u": np.concatenate(direction),
    }
    table["start"] = vertex[table["event"]]
    return table, e_nu


def _decay_pi0(table: dict, rng: np.random.Generator) -> dict:
    """Replace pi0 by their two photons (isotropic in the pi0 frame, boosted)."""
    is_pi0 = table["species"] == PI0
    if not is_pi0.any():
        return table
    event, u, start = table["event"][is_pi0], table["u"][is_pi0], table["start"][is_pi0]
    e_tot = table["energy"][is_pi0] + M_PI0
    gamma = e_tot / M_PI0
    beta = np.sqrt(1 - 1 / gamma**2)
    cos_star = rng.uniform(-1, 1, len(e_tot))
    phi = rng.uniform(0, 2 * np.pi, len(e_tot))
    e1, e2 = _perpendicular_basis(u)
    photons_e, photons_u = [], []
    for sign in (1.0, -1.0):
        c = sign * cos_star
        e_g = gamma * M_PI0 / 2 * (1 + beta * c)
        pz = gamma * M_PI0 / 2 * (c + beta)
        pt = sign * M_PI0 / 2 * np.sqrt(1 - c**2)
        d = pz[:, None] * u + pt[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
        photons_e.append(e_g)
        photons_u.append(_normalise(d))
    keep = ~is_pi0
    return {
        "event": np.concatenate([table["event"][keep], event, event]),
        "species": np.concatenate(
            [table["species"][keep], np.full(2 * len(event), PHOTON, np.int8)]
        ),
        "energy": np.concatenate([table["energy"][keep], *photons_e]),
        "u": np.concatenate([table["u"][keep], *photons_u]),
        "start": np.concatenate([table["start"][keep], start, start]),
    }


def _deposits(table: dict, rng: np.random.Generator) -> _Points:
    """Energy deposits of every particle in the table, species by species."""
    points = _Points()

    def select(kind: int) -> tuple[np.ndarray, ...]:
        m = table["species"] == kind
        return table["event"][m], table["start"][m], table["u"][m], table["energy"][m]

    ev, start, u, e = select(MUON)
    _tracks(points, ev, start, u, e, M_MU, rng, interacts=False)
    blobs = []
    for kind in (PION, PROTON):
        ev, start, u, e = select(kind)
        blobs.append(_tracks(points, ev, start, u, e, _MASS[kind], rng, interacts=True))
    ev, start, u, e = select(ELECTRON)
    _em_showers(points, ev, start, u, e, -0.5, rng)
    ev, start, u, e = select(PHOTON)
    conversion = rng.exponential(9 / 7 * det.RADIATION_LENGTH_CM, len(e))
    _em_showers(points, ev, start + conversion[:, None] * u, u, e, 0.5, rng)
    # Neutrons: invisible unless they scatter on a proton some distance away.
    ev, start, u, e = select(NEUTRON)
    seen = rng.random(len(e)) < 0.6
    travel = rng.exponential(70.0, len(e))
    blobs.append(
        (
            ev[seen],
            (start + travel[:, None] * u)[seen],
            u[seen],
            (e * rng.uniform(0.2, 0.5, len(e)))[seen],
        )
    )
    ev, centre, u, e = (np.concatenate(parts) for parts in zip(*blobs, strict=True))
    _hadronic_blobs(points, ev, centre, u, e, rng)
    return points


# ---------------------------------------------------------------- driver


def _class_fractions(
    include_nutau: bool, class_fractions: Mapping[str, float] | None
) -> np.ndarray:
    names = CLASS_NAMES if include_nutau else CLASS_NAMES[:3]
    if class_fractions is None:
        return np.full(len(names), 1.0 / len(names))
    unknown = sorted(set(class_fractions) - set(names))
    if unknown:
        hint = " (nutau_cc needs include_nutau / --nutau)" if "nutau_cc" in unknown else ""
        raise ConfigError(f"class_fractions: unknown class {unknown}{hint}; known: {list(names)}")
    f = np.array([float(class_fractions.get(k, 0.0)) for k in names])
    if not np.all(np.isfinite(f)) or np.any(f < 0) or f.sum() <= 0:
        raise ConfigError(
            f"class_fractions: need non-negative numbers with a positive sum, got {dict(class_fractions)}"
        )
    return f / f.sum()


def simulate_chunk(
    n: int,
    fractions: np.ndarray,
    response: det.DetectorResponse,
    physics_rng: np.random.Generator,
    detector_rng: np.random.Generator,
) -> dict[str, np.ndarray | ak.Array]:
    """``n`` events as arrays: jagged ``hit_*`` and flat ``label``, ``nu_energy``, plus ``noise_counts``."""
    label = physics_rng.choice(len(fractions), size=n, p=fractions).astype(np.int32)
    vertex = np.column_stack(
        [
            physics_rng.uniform(0.15, 0.85, n) * det.WIDTH_CM,
            physics_rng.uniform(0.15, 0.85, n) * det.WIDTH_CM,
            physics_rng.uniform(0.02, 0.45, n) * det.LENGTH_CM,
        ]
    )
    table, e_nu = _particles(label, vertex, physics_rng)
    table = _decay_pi0(table, physics_rng)
    event, pos, e_mev = _deposits(table, physics_rng).arrays()
    hits = det.digitise(event, pos[:, 0], pos[:, 1], pos[:, 2], e_mev, n, response, detector_rng)
    counts = hits["counts"]
    return {
        "hit_view": ak.unflatten(hits["view"], counts),
        "hit_plane": ak.unflatten(hits["plane"], counts),
        "hit_cell": ak.unflatten(hits["cell"], counts),
        "hit_e": ak.unflatten(hits["e"], counts),
        "label": label,
        "nu_energy": e_nu.astype(np.float32),
        "noise_counts": hits["noise_counts"],
    }


def generate_neutrino(
    output: str | os.PathLike,
    *,
    variant: Literal["sim", "data"] = "sim",
    n_events: int,
    seed: int,
    include_nutau: bool = False,
    class_fractions: Mapping[str, float] | None = None,
    progress: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> dict:
    """Write ``n_events`` neutrino interactions to ``output`` (tree ``events``, one entry per event).

    Branches: ``hit_view`` (int8: 0 = XZ, 1 = YZ), ``hit_plane``, ``hit_cell``
    (int32), ``hit_e`` (float32, calibrated deposited energy in MeV), ``label``
    (int32: 0 nu_mu CC, 1 nu_e CC, 2 NC, 3 nu_tau CC), ``nu_energy`` (float32,
    GeV), ``weight`` (float32, 1) and ``event_id`` (int64, 0..n-1).

    ``class_fractions`` maps ``numu_cc``, ``nue_cc``, ``nc`` (and ``nutau_cc``
    with ``include_nutau``) to relative fractions; default equal. Labels are
    drawn per event, so the counts fluctuate around the fractions.

    The interactions depend only on ``seed`` (and ``chunk_size``); ``variant``
    changes only the detector response (light yield, attenuation, energy scale,
    noise), so ``sim`` and ``data`` with the same seed hold the same
    interactions seen by two detectors. Returns a JSON-able summary.
    """
    if variant not in det.RESPONSES:
        raise ConfigError(f"variant: must be 'sim' or 'data', got {variant!r}")
    if not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"n_events: must be a positive integer, got {n_events!r}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size: must be a positive integer, got {chunk_size!r}")
    fractions = _class_fractions(include_nutau, class_fractions)
    names = CLASS_NAMES[: len(fractions)]
    response = det.RESPONSES[variant]

    n_chunks = -(-int(n_events) // chunk_size)
    chunk_seeds = np.random.SeedSequence(int(seed)).spawn(n_chunks)
    counts = np.zeros(len(fractions), dtype=np.int64)
    n_hits = n_noise = 0
    sum_e = 0.0
    t0 = time.perf_counter()
    with (
        TreeWriter(output, "events") as out,
        tqdm(
            total=int(n_events), unit="evt", desc="neutrino", disable=not progress, file=sys.stderr
        ) as bar,
    ):
        for i, chunk_seed in enumerate(chunk_seeds):
            n = min(chunk_size, int(n_events) - i * chunk_size)
            # Separate streams: the interactions do not depend on the detector variant.
            physics_seed, detector_seed = chunk_seed.spawn(2)
            detector_seed = np.random.SeedSequence(
                [*detector_seed.generate_state(2), ["sim", "data"].index(variant)]
            )
            chunk = simulate_chunk(
                n,
                fractions,
                response,
                np.random.default_rng(physics_seed),
                np.random.default_rng(detector_seed),
            )
            noise = chunk.pop("noise_counts")
            chunk["weight"] = np.ones(n, dtype=np.float32)
            chunk["event_id"] = np.arange(i * chunk_size, i * chunk_size + n, dtype=np.int64)
            out.extend(chunk)
            counts += np.bincount(chunk["label"], minlength=len(fractions))
            n_hits += int(ak.sum(ak.num(chunk["hit_e"])))
            n_noise += int(noise.sum())
            sum_e += float(ak.sum(chunk["hit_e"]))
            bar.update(n)
    seconds = time.perf_counter() - t0
    return {
        "output": os.fspath(output),
        "tree": "events",
        "variant": variant,
        "n_events": int(n_events),
        "seed": int(seed),
        "chunk_size": int(chunk_size),
        "include_nutau": bool(include_nutau),
        "class_fractions": dict(zip(names, fractions.round(6).tolist(), strict=True)),
        "counts": dict(zip(names, counts.tolist(), strict=True)),
        "labels": {str(i): name for i, name in enumerate(names)},
        "mean_hits_per_event": n_hits / n_events,
        "mean_noise_hits_generated_per_event": n_noise / n_events,
        "mean_hit_energy_sum_mev": sum_e / n_events,
        "hit_e_unit": "MeV (calibrated deposited energy)",
        "nu_energy_unit": "GeV",
        "seconds": round(seconds, 3),
        "events_per_second": round(n_events / max(seconds, 1e-9), 1),
        "detector": det.geometry(),
        "response": response.as_dict(),
        "data_variant_changes": {
            k: {"sim": getattr(det.SIM_RESPONSE, k), "data": getattr(det.DATA_RESPONSE, k)}
            for k in (
                "light_yield_pe_per_mev",
                "attenuation_cm",
                "energy_scale",
                "noise_hits_per_event",
            )
        },
    }
