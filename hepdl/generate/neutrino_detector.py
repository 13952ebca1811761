"""A NOvA-style segmented two-view detector: geometry, light model, calibration and noise.

Coordinates are in cm: ``z`` along the beam, ``x`` horizontal, ``y`` vertical,
the detector occupying ``[0, WIDTH_CM]^2 x [0, LENGTH_CM]``. Planes alternate
views: even planes hold vertical cells that measure ``x`` (view 0, "XZ"), odd
planes hold horizontal cells that measure ``y`` (view 1, "YZ"). A cell is read
out at one end, so the light reaching the photodetector falls with the distance
travelled along the cell, i.e. with the *other* view's coordinate.

:func:`digitise` turns energy deposits (points) into hits: quantise to
(plane, cell), sum per cell, convert to photo-electrons with attenuation and
Poisson statistics, add noise hits, apply the threshold and calibrate back to
MeV with the *simulation's* light model — so that a detector whose true light
model differs ("data") is miscalibrated exactly where the real ones are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Geometry. NOvA's cells are 3.9 cm x 6.6 cm (cross-section along x/y and z);
#: 384 planes x 256 cells (25.3 m x 10 m) is a smaller far detector, still large
#: enough that a 100-plane x 80-cell pixel window per view holds typical events.
N_PLANES = 384
N_CELLS = 256
PLANE_PITCH_CM = 6.6
CELL_WIDTH_CM = 3.9
LENGTH_CM = N_PLANES * PLANE_PITCH_CM
WIDTH_CM = N_CELLS * CELL_WIDTH_CM

#: Material: liquid scintillator in PVC extrusions, averaged. ~1.0 g/cm3 makes a
#: minimum-ionising particle lose ~2 MeV/cm, i.e. a muon travels ~5 m per GeV.
DENSITY_G_CM3 = 1.0
DEDX_MIP_MEV_CM = 2.0 * DENSITY_G_CM3
RADIATION_LENGTH_CM = 40.0
MOLIERE_RADIUS_CM = 10.0
INTERACTION_LENGTH_CM = 80.0
CRITICAL_ENERGY_GEV = 0.085


@dataclass(frozen=True)
class DetectorResponse:
    """Light model, calibration scale and noise of one detector variant.

    ``light_yield_pe_per_mev`` is the photo-electron yield for a deposit at the
    readout end; light from a distance ``d`` along the cell is multiplied by
    ``exp(-d / attenuation_cm)``. ``energy_scale`` is the residual absolute
    calibration error; ``noise_hits_per_event`` the mean number of noise hits in
    the whole detector per readout window; ``threshold_pe`` the per-cell hit
    threshold in photo-electrons.
    """

    light_yield_pe_per_mev: float
    attenuation_cm: float
    energy_scale: float
    noise_hits_per_event: float
    threshold_pe: int
    noise_mean_pe_above_threshold: float = 3.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: The nominal simulation. A MIP crossing a cell (~13 MeV) gives ~30 PE in the
#: middle of a cell and ~16 PE at the far end, close to NOvA's numbers.
SIM_RESPONSE = DetectorResponse(
    light_yield_pe_per_mev=5.0,
    attenuation_cm=700.0,
    energy_scale=1.0,
    noise_hits_per_event=20.0,
    threshold_pe=4,
)

#: The "data" detector: 15 % less light, shorter attenuation length (far hits
#: dimmer, near hits brighter after a calibration that fixes the scale at the
#: cell centre), a 5 % low absolute energy scale, and twice the noise rate.
DATA_RESPONSE = DetectorResponse(
    light_yield_pe_per_mev=4.25,
    attenuation_cm=550.0,
    energy_scale=0.95,
    noise_hits_per_event=40.0,
    threshold_pe=4,
)

RESPONSES = {"sim": SIM_RESPONSE, "data": DATA_RESPONSE}


def geometry() -> dict[str, float]:
    """The detector constants, for summaries and metadata."""
    return {
        "n_planes": N_PLANES,
        "n_cells": N_CELLS,
        "plane_pitch_cm": PLANE_PITCH_CM,
        "cell_width_cm": CELL_WIDTH_CM,
        "length_cm": LENGTH_CM,
        "width_cm": WIDTH_CM,
        "density_g_cm3": DENSITY_G_CM3,
        "dedx_mip_mev_cm": DEDX_MIP_MEV_CM,
        "radiation_length_cm": RADIATION_LENGTH_CM,
        "moliere_radius_cm": MOLIERE_RADIUS_CM,
        "interaction_length_cm": INTERACTION_LENGTH_CM,
        "critical_energy_gev": CRITICAL_ENERGY_GEV,
        "views": "even planes: view 0 (XZ, cell measures x); odd planes: view 1 (YZ, cell measures y)",
    }


def _distance_to_readout(view: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Vertical (view 0) cells are read out at the top, horizontal (view 1) cells at x = WIDTH.
    return np.where(view == 0, WIDTH_CM - y, WIDTH_CM - x)


def _calibration(response: DetectorResponse, d: np.ndarray) -> np.ndarray:
    """MeV per photo-electron, as the calibration assigns it.

    The attenuation correction is the simulation's; the absolute scale is
    fixed for each detector at the cell centre (as a stopping-muon calibration
    would), up to the residual ``energy_scale``.
    """
    sim = SIM_RESPONSE
    centre = WIDTH_CM / 2
    per_pe = 1.0 / (sim.light_yield_pe_per_mev * np.exp(-d / sim.attenuation_cm))
    centre_ratio = (sim.light_yield_pe_per_mev * np.exp(-centre / sim.attenuation_cm)) / (
        response.light_yield_pe_per_mev * np.exp(-centre / response.attenuation_cm)
    )
    return per_pe * centre_ratio * response.energy_scale


def digitise(
    event: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    e_mev: np.ndarray,
    n_events: int,
    response: DetectorResponse,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Turn energy deposits (flat arrays over all events of a chunk) into hits.

    Returns flat hit arrays ``view``, ``plane``, ``cell``, ``e`` (calibrated MeV),
    ordered by event then (plane, cell), plus ``counts`` (hits per event) and
    ``noise_counts`` (noise hits generated per event, before merging and threshold).
    """
    plane = np.floor(z / PLANE_PITCH_CM).astype(np.int64)
    view = plane & 1
    cell = np.floor(np.where(view == 0, x, y) / CELL_WIDTH_CM).astype(np.int64)
    inside = (plane >= 0) & (plane < N_PLANES) & (cell >= 0) & (cell < N_CELLS)
    inside &= (x >= 0) & (x <= WIDTH_CM) & (y >= 0) & (y <= WIDTH_CM)
    event, plane, view, cell, e_mev = (
        event[inside],
        plane[inside],
        view[inside],
        cell[inside],
        e_mev[inside],
    )
    d = _distance_to_readout(view, x[inside], y[inside])

    # Sum the expected light per cell, then draw the photo-electron count once per cell.
    key = (event * N_PLANES + plane) * N_CELLS + cell
    mu_pe = e_mev * response.light_yield_pe_per_mev * np.exp(-d / response.attenuation_cm)
    cells, inverse = np.unique(key, return_inverse=True)
    mu_cell = np.bincount(inverse, weights=mu_pe, minlength=len(cells))
    d_cell = np.bincount(inverse, weights=mu_pe * d, minlength=len(cells)) / np.maximum(
        mu_cell, 1e-30
    )
    pe_cell = rng.poisson(mu_cell).astype(np.float64)

    # Noise: uniform over the detector (dark counts, electronics), with a falling PE spectrum.
    noise_counts = rng.poisson(response.noise_hits_per_event, size=n_events)
    n_noise = int(noise_counts.sum())
    noise_event = np.repeat(np.arange(n_events, dtype=np.int64), noise_counts)
    noise_key = (
        noise_event * N_PLANES + rng.integers(0, N_PLANES, n_noise)
    ) * N_CELLS + rng.integers(0, N_CELLS, n_noise)
    noise_pe = (
        response.threshold_pe
        + rng.geometric(1.0 / (1.0 + response.noise_mean_pe_above_threshold), n_noise)
        - 1.0
    )
    noise_d = rng.uniform(0.0, WIDTH_CM, n_noise)

    all_key = np.concatenate([cells, noise_key])
    all_pe = np.concatenate([pe_cell, noise_pe])
    all_d = np.concatenate([d_cell, noise_d])
    hits, inverse = np.unique(all_key, return_inverse=True)
    pe = np.bincount(inverse, weights=all_pe, minlength=len(hits))
    # Where noise lands on a signal cell, its position along the cell is the light-weighted mean.
    d_hit = np.bincount(inverse, weights=all_pe * all_d, minlength=len(hits)) / np.maximum(
        pe, 1e-30
    )

    keep = pe >= response.threshold_pe
    hits, pe, d_hit = hits[keep], pe[keep], d_hit[keep]
    hit_event = hits // (N_PLANES * N_CELLS)
    hit_plane = (hits // N_CELLS) % N_PLANES
    return {
        "view": (hit_plane & 1).astype(np.int8),
        "plane": hit_plane.astype(np.int32),
        "cell": (hits % N_CELLS).astype(np.int32),
        "e": (pe * _calibration(response, d_hit)).astype(np.float32),
        "counts": np.bincount(hit_event, minlength=n_events),
        "noise_counts": noise_counts,
    }
