"""Jet images: calorimeter and track content of a jet pixelised on an eta-phi grid.

Following de Oliveira et al. (JHEP 07 (2016) 069) and Baldi et al. (PRD 93, 094034):
the image is centred on the leading subjet, rotated so that the second subjet
points straight down (towards row 0), and flipped so that the half with more
E_T lies at positive column offset. Every step is vectorised over the chunk:
the per-jet frame (centre, angle, reflections) comes from segment reductions of
the flattened towers, and pixels are filled with one ``np.bincount``.

Image axes: ``image[n, c, i, j]``; ``i`` (rows, H) runs along the rotated axis of the
two subjets from ``-half_width`` (second-subjet side) to ``+half_width``; ``j``
(columns, W) across it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError
from hepdl.represent.jagged import (
    flat_content,
    owner_index,
    segment_argmax,
    segment_sum,
    wrap_phi,
)

CHANNELS = ("calo_et", "trk_pt", "trk_count")
CENTRES = ("leading_subjet", "centroid")
NORMALISATIONS = ("sum", "none")


@dataclass(frozen=True)
class JetFrame:
    """Per-jet preprocessing transform, (N,) arrays: centre offset, rotation, reflections."""

    x0: np.ndarray  # centre, in (eta, phi) relative to the jet axis
    y0: np.ndarray
    cos: np.ndarray  # rotation applied after translation
    sin: np.ndarray
    flip_x: np.ndarray  # -1 where columns are mirrored
    flip_y: np.ndarray  # -1 where rows are mirrored (single-subjet jets only)
    has_second: np.ndarray  # bool: a second subjet was found

    def apply(self, x: np.ndarray, y: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map flat relative coordinates of any constituents into the image frame."""
        dx = x - self.x0[owner]
        dy = wrap_phi(y - self.y0[owner])
        c, s = self.cos[owner], self.sin[owner]
        u = (c * dx - s * dy) * self.flip_x[owner]
        v = (s * dx + c * dy) * self.flip_y[owner]
        return u, v


def _weighted_centroid(x, y, w, owner, n, select, fallback_x, fallback_y):
    ws = np.where(select, w, 0.0)
    sw = segment_sum(ws, owner, n)
    sx = segment_sum(ws * x, owner, n)
    sy = segment_sum(ws * y, owner, n)
    ok = sw > 0
    safe = np.where(ok, sw, 1.0)
    return np.where(ok, sx / safe, fallback_x), np.where(ok, sy / safe, fallback_y)


def jet_frame(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    counts: np.ndarray,
    *,
    centre: str = "leading_subjet",
    rotate: bool = True,
    flip: bool = True,
    subjet_radius: float = 0.3,
) -> JetFrame:
    """Compute the preprocessing frame of each jet from flat constituents.

    ``x, y`` are (eta, phi) offsets from the jet axis (phi already wrapped), ``w`` the
    E_T weights, ``counts`` the constituents per jet. Subjets are found as E_T-weighted
    cones of ``subjet_radius`` around the hardest tower, then around the hardest
    tower outside the first cone: a vectorised stand-in for kT subjets of that radius
    (both give the same axes for two well-separated prongs, which is what sets the
    rotation). A jet without a second subjet is rotated along its principal axis.
    """
    if centre not in CENTRES:
        raise ConfigError(f"image centre must be one of {CENTRES}, not {centre!r}")
    n = len(counts)
    owner = owner_index(counts)
    r2 = subjet_radius**2
    zeros = np.zeros(n)
    h1 = segment_argmax(w, counts)
    has1 = h1 >= 0
    seed1x = np.where(has1, x[np.maximum(h1, 0)] if x.size else 0.0, 0.0)
    seed1y = np.where(has1, y[np.maximum(h1, 0)] if y.size else 0.0, 0.0)
    in1 = (x - seed1x[owner]) ** 2 + wrap_phi(y - seed1y[owner]) ** 2 < r2
    ax1x, ax1y = _weighted_centroid(x, y, w, owner, n, in1, seed1x, seed1y)
    if centre == "centroid":
        x0, y0 = _weighted_centroid(x, y, w, owner, n, np.ones_like(in1), zeros, zeros)
    else:
        x0, y0 = ax1x, ax1y

    h2 = segment_argmax(np.where(in1 | (w <= 0), -np.inf, w), counts)
    has2 = h2 >= 0
    if x.size:
        has2 &= np.isfinite(np.where(in1 | (w <= 0), -np.inf, w)[np.maximum(h2, 0)])
    seed2x = np.where(has2, x[np.maximum(h2, 0)] if x.size else 0.0, 0.0)
    seed2y = np.where(has2, y[np.maximum(h2, 0)] if y.size else 0.0, 0.0)
    in2 = ~in1 & ((x - seed2x[owner]) ** 2 + wrap_phi(y - seed2y[owner]) ** 2 < r2)
    ax2x, ax2y = _weighted_centroid(x, y, w, owner, n, in2, seed2x, seed2y)

    # Principal axis of the E_T distribution about the centre, for one-prong jets.
    dx = x - x0[owner]
    dy = wrap_phi(y - y0[owner])
    sw = segment_sum(w, owner, n)
    sw = np.where(sw > 0, sw, 1.0)
    cxx = segment_sum(w * dx * dx, owner, n) / sw
    cyy = segment_sum(w * dy * dy, owner, n) / sw
    cxy = segment_sum(w * dx * dy, owner, n) / sw
    principal = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    theta = np.where(has2, np.arctan2(wrap_phi(ax2y - y0), ax2x - x0), principal)

    if rotate:
        # Rotate by alpha so that direction theta ends up at -pi/2 (straight down).
        alpha = -0.5 * np.pi - theta
        cos, sin = np.cos(alpha), np.sin(alpha)
    else:
        cos, sin = np.ones(n), np.zeros(n)
    ones = np.ones(n)
    frame = JetFrame(x0, y0, cos, sin, ones, ones, has2)
    if not flip:
        return frame
    u, v = frame.apply(x, y, owner)
    flip_x = np.where(segment_sum(w * np.sign(u), owner, n) < 0, -1.0, 1.0)
    # The principal axis has no preferred sense: put the heavier half down, like a second subjet.
    flip_y = np.where(~has2 & (segment_sum(w * np.sign(v), owner, n) > 0), -1.0, 1.0)
    return JetFrame(x0, y0, cos, sin, flip_x, flip_y, has2)


def pixelise(
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    owner: np.ndarray,
    out: np.ndarray,
    channel: int,
    half_width: float,
) -> None:
    """Add weights ``w`` at frame coordinates ``(u, v)`` into ``out[owner, channel]`` (N, C, H, W)."""
    n, _, height, width = out.shape
    col = np.floor((u + half_width) * (width / (2 * half_width))).astype(np.int64)
    row = np.floor((v + half_width) * (height / (2 * half_width))).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    flat = (owner[inside] * height + row[inside]) * width + col[inside]
    filled = np.bincount(flat, weights=w[inside], minlength=n * height * width)
    out[:, channel] += filled.reshape(n, height, width)


def jet_images(
    calo_eta: ak.Array,
    calo_phi: ak.Array,
    calo_e: ak.Array,
    jet_eta: np.ndarray,
    jet_phi: np.ndarray,
    *,
    trk_pt: ak.Array | None = None,
    trk_eta: ak.Array | None = None,
    trk_phi: ak.Array | None = None,
    size: Sequence[int] = (32, 32),
    half_width: float = 1.2,
    channels: Sequence[str] = CHANNELS,
    centre: str = "leading_subjet",
    rotate: bool = True,
    flip: bool = True,
    normalise: str = "sum",
    subjet_radius: float = 0.3,
) -> np.ndarray:
    """Preprocessed jet images, ``(N, len(channels), H, W)`` float32.

    Towers are massless: ``E_T = E / cosh(eta)``. The frame (centre, rotation,
    flips) comes from the calorimeter towers and is applied to tracks too, so all
    channels line up. ``normalise="sum"`` divides each channel of each image by its
    own total (an empty channel stays zero); ``"none"`` keeps GeV / counts.
    """
    for c in channels:
        if c not in CHANNELS:
            raise ConfigError(f"image channel {c!r} unknown; choose from {CHANNELS}")
    if normalise not in NORMALISATIONS:
        raise ConfigError(f"image normalise must be one of {NORMALISATIONS}, not {normalise!r}")
    height, width = (int(size[0]), int(size[1]))
    eta, counts = flat_content(calo_eta, "calo_eta")
    phi, _ = flat_content(calo_phi, "calo_phi")
    e, _ = flat_content(calo_e, "calo_e")
    jet_eta = np.asarray(jet_eta, dtype=np.float64)
    jet_phi = np.asarray(jet_phi, dtype=np.float64)
    n = len(counts)
    owner = owner_index(counts)
    x = eta - jet_eta[owner]
    y = wrap_phi(phi - jet_phi[owner])
    et = e / np.cosh(eta)
    frame = jet_frame(x, y, et, counts, centre=centre, rotate=rotate, flip=flip, subjet_radius=subjet_radius)

    out = np.zeros((n, len(channels), height, width), dtype=np.float32)
    if "calo_et" in channels:
        u, v = frame.apply(x, y, owner)
        pixelise(u, v, et, owner, out, list(channels).index("calo_et"), half_width)
    track_channels = [c for c in channels if c.startswith("trk_")]
    if track_channels:
        if trk_pt is None or trk_eta is None or trk_phi is None:
            raise ConfigError(f"image channels {track_channels} need the fields trk_pt, trk_eta, trk_phi")
        tpt, tcounts = flat_content(trk_pt, "trk_pt")
        teta, _ = flat_content(trk_eta, "trk_eta")
        tphi, _ = flat_content(trk_phi, "trk_phi")
        towner = owner_index(tcounts)
        tu, tv = frame.apply(teta - jet_eta[towner], wrap_phi(tphi - jet_phi[towner]), towner)
        for c in track_channels:
            weight = tpt if c == "trk_pt" else np.ones_like(tpt)
            pixelise(tu, tv, weight, towner, out, list(channels).index(c), half_width)
    if normalise == "sum":
        total = out.sum(axis=(2, 3), keepdims=True)
        np.divide(out, total, out=out, where=total > 0)
    return out
