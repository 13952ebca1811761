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
    segment_argmax,
    segment_total,
    wrap_phi,
)

CHANNELS = ("calo_et", "trk_pt", "trk_count")
CENTRES = ("leading_subjet", "centroid")
NORMALISATIONS = ("jet", "sum", "none")


@dataclass(frozen=True)
class JetFrame:
    """Per-jet preprocessing as an affine map of (eta, phi) offsets from the jet axis, (N,) arrays.

    ``u = a x + b y + c``, ``v = d x + e y + f``: translation to the centre, rotation and
    reflections folded into one map, so that placing any constituent costs six gathers.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    e: np.ndarray
    f: np.ndarray
    has_second: np.ndarray  # bool: a second subjet was found

    def apply(self, x: np.ndarray, y: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map flat offsets (phi already wrapped about the jet axis) into the image frame."""
        u = self.a[owner] * x + self.b[owner] * y + self.c[owner]
        v = self.d[owner] * x + self.e[owner] * y + self.f[owner]
        return u, v

    def apply_runs(self, x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply` for constituents stored contiguously per jet, ``counts`` per jet."""
        # np.repeat of the per-jet coefficients is ~5x faster than gathering them by owner.
        a, b, c, d, e, f = (np.repeat(q, counts) for q in (self.a, self.b, self.c, self.d, self.e, self.f))
        return a * x + b * y + c, d * x + e * y + f


def _weighted_centroid(x, y, w, counts, select, fallback_x, fallback_y):
    ws = w * select  # w where selected, else 0: a product vectorises, np.where does not
    sw = segment_total(ws, counts)
    sx = segment_total(ws * x, counts)
    sy = segment_total(ws * y, counts)
    ok = sw > 0
    safe = np.where(ok, sw, 1.0)
    return np.where(ok, sx / safe, fallback_x), np.where(ok, sy / safe, fallback_y)


def _frame_and_coordinates(x, y, w, counts, centre, rotate, flip, subjet_radius):
    if centre not in CENTRES:
        raise ConfigError(f"image centre must be one of {CENTRES}, not {centre!r}")
    n = len(counts)
    r2 = subjet_radius**2
    zeros = np.zeros(n)

    def spread(per_jet):
        # Constituents are contiguous per jet: np.repeat is ~5x faster than gathering by owner.
        return np.repeat(per_jet.astype(x.dtype, copy=False), counts)

    # Offsets are taken about the jet axis with phi wrapped once, so every difference
    # below is between points of one jet and needs no further wrapping.
    h1 = segment_argmax(w, counts)
    has1 = h1 >= 0
    pick = np.maximum(h1, 0)
    seed1x = np.where(has1, x[pick] if x.size else 0.0, 0.0)
    seed1y = np.where(has1, y[pick] if y.size else 0.0, 0.0)
    in1 = (x - spread(seed1x)) ** 2 + (y - spread(seed1y)) ** 2 < r2
    ax1x, ax1y = _weighted_centroid(x, y, w, counts, in1, seed1x, seed1y)
    if centre == "centroid":
        x0, y0 = _weighted_centroid(x, y, w, counts, True, zeros, zeros)
    else:
        x0, y0 = ax1x, ax1y

    rest = w.copy()
    rest[in1 | (w <= 0)] = -np.inf
    h2 = segment_argmax(rest, counts)
    pick = np.maximum(h2, 0)
    has2 = (h2 >= 0) & (np.isfinite(rest[pick]) if x.size else False)
    seed2x = np.where(has2, x[pick] if x.size else 0.0, 0.0)
    seed2y = np.where(has2, y[pick] if y.size else 0.0, 0.0)
    in2 = ~in1 & ((x - spread(seed2x)) ** 2 + (y - spread(seed2y)) ** 2 < r2)
    ax2x, ax2y = _weighted_centroid(x, y, w, counts, in2, seed2x, seed2y)

    theta = np.arctan2(ax2y - y0, ax2x - x0)
    if not has2.all():
        # Principal axis of the E_T distribution about the centre, for one-prong jets.
        dx = x - spread(x0)
        dy = y - spread(y0)
        sw = segment_total(w, counts)
        sw = np.where(sw > 0, sw, 1.0)
        wdx = w * dx
        cxx = segment_total(wdx * dx, counts) / sw
        cyy = segment_total(w * dy * dy, counts) / sw
        cxy = segment_total(wdx * dy, counts) / sw
        theta = np.where(has2, theta, 0.5 * np.arctan2(2 * cxy, cxx - cyy))

    # Rotate by alpha so that direction theta ends up at -pi/2 (straight down).
    alpha = -0.5 * np.pi - theta if rotate else zeros
    cos, sin = np.cos(alpha), np.sin(alpha)
    a, b, c = cos, -sin, -(cos * x0 - sin * y0)
    d, e, f = sin, cos, -(sin * x0 + cos * y0)
    frame = JetFrame(*(q.astype(x.dtype) for q in (a, b, c, d, e, f)), has_second=has2)
    u, v = frame.apply_runs(x, y, counts)
    if not flip:
        return frame, u, v
    flip_x = np.where(segment_total(w * np.sign(u), counts) < 0, -1.0, 1.0)
    # The principal axis has no preferred sense: put the heavier half down, like a second subjet.
    flip_y = np.where(~has2 & (segment_total(w * np.sign(v), counts) > 0), -1.0, 1.0)
    frame = JetFrame(
        *(q.astype(x.dtype) for q in (a * flip_x, b * flip_x, c * flip_x, d * flip_y, e * flip_y, f * flip_y)),
        has_second=has2,
    )
    if not (flip_x < 0).any() and not (flip_y < 0).any():
        return frame, u, v
    return frame, u * spread(flip_x), v * spread(flip_y)


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
    return _frame_and_coordinates(x, y, w, counts, centre, rotate, flip, subjet_radius)[0]


def pixel_index(u: np.ndarray, v: np.ndarray, owner: np.ndarray, shape: Sequence[int], half_width: float):
    """``(inside, flat)``: which constituents fall in the image, and their (jet, row, col) flat index."""
    n, height, width = shape
    col = np.floor((u + half_width) * (width / (2 * half_width))).astype(np.int64)
    row = np.floor((v + half_width) * (height / (2 * half_width))).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    return inside, (owner[inside] * height + row[inside]) * width + col[inside]


def _pixel_slots(u, v, counts, shape: Sequence[int], half_width: float):
    """``(inside, slot)``: which constituents fall in the image, and their flat index into
    ``out.reshape(-1)`` for channel 0 of an ``(N, C, H, W)`` output (add ``c * H * W`` for channel c)."""
    n, n_channels, height, width = shape
    tcol = (u + half_width) * (width / (2 * half_width))
    trow = (v + half_width) * (height / (2 * half_width))
    # floor(t) lies in [0, W) exactly when t does; for t >= 0 truncation is floor.
    inside = (tcol >= 0) & (tcol < width) & (trow >= 0) & (trow < height)
    jet_base = np.repeat(np.arange(n, dtype=np.int64) * (n_channels * height * width), counts)
    slot = jet_base[inside] + trow[inside].astype(np.int64) * width + tcol[inside].astype(np.int64)
    return inside, slot


def _scatter(out: np.ndarray, channel: int, slot: np.ndarray, w: np.ndarray) -> None:
    # Jets light up ~100 of the ~1000 pixels: scatter the sparse sums (1-D add.at with
    # matching dtypes is numpy's fast path), never a dense temporary.
    height, width = out.shape[2:]
    np.add.at(out.reshape(-1), slot + channel * height * width, w.astype(out.dtype, copy=False))


def _weights(w: np.ndarray, inside: np.ndarray, counts: np.ndarray, divisor: np.ndarray | None) -> np.ndarray:
    """Weights of the constituents inside the image; ``divisor`` (per jet) scales them first."""
    if divisor is not None:
        # Normalising the weights before filling spares a pass over the dense images.
        w = w / np.repeat(divisor, counts)
    return w[inside]


def _channel_total(inside, counts, w: np.ndarray) -> np.ndarray:
    total = segment_total(w * inside, counts)
    return np.where(total > 0, total, 1.0)


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
    channels line up. ``normalise="sum"`` (the default) divides each channel by its
    own total (an empty channel stays zero); ``"jet"`` divides the calorimeter and
    track pT channels by the image's calorimeter E_T and keeps track counts as
    counts, so that charged fraction and multiplicity survive (on the default sample
    it trained a worse CNN: validation AUC 0.84 against 0.905 with "sum");
    ``"none"`` keeps GeV / counts.
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
    # Single precision is ample for positions on a 0.075-wide grid and halves memory traffic.
    eta, phi, e = (a.astype(np.float32, copy=False) for a in (eta, phi, e))
    jet_eta = np.asarray(jet_eta, dtype=np.float32)
    jet_phi = np.asarray(jet_phi, dtype=np.float32)
    n = len(counts)
    x = eta - np.repeat(jet_eta, counts)
    y = wrap_phi(phi - np.repeat(jet_phi, counts))
    et = e / np.cosh(eta)
    frame, u, v = _frame_and_coordinates(x, y, et, counts, centre, rotate, flip, subjet_radius)

    shape = (n, len(channels), height, width)
    out = np.zeros(shape, dtype=np.float32)
    inside, slot = _pixel_slots(u, v, counts, shape, half_width)
    jet_total = _channel_total(inside, counts, et) if normalise == "jet" else None
    if "calo_et" in channels:
        divisor = _channel_total(inside, counts, et) if normalise == "sum" else jet_total
        _scatter(out, list(channels).index("calo_et"), slot, _weights(et, inside, counts, divisor))
    track_channels = [c for c in channels if c.startswith("trk_")]
    if track_channels:
        if trk_pt is None or trk_eta is None or trk_phi is None:
            raise ConfigError(f"image channels {track_channels} need the fields trk_pt, trk_eta, trk_phi")
        tpt, tcounts = flat_content(trk_pt, "trk_pt")
        teta, _ = flat_content(trk_eta, "trk_eta")
        tphi, _ = flat_content(trk_phi, "trk_phi")
        teta, tphi, tpt = (a.astype(np.float32, copy=False) for a in (teta, tphi, tpt))
        tu, tv = frame.apply_runs(teta - np.repeat(jet_eta, tcounts), wrap_phi(tphi - np.repeat(jet_phi, tcounts)), tcounts)
        inside, slot = _pixel_slots(tu, tv, tcounts, shape, half_width)
        for c in track_channels:
            weight = tpt if c == "trk_pt" else np.ones_like(tpt)
            if normalise == "sum":
                divisor = _channel_total(inside, tcounts, weight)
            else:
                divisor = jet_total if (normalise == "jet" and c == "trk_pt") else None
            _scatter(out, list(channels).index(c), slot, _weights(weight, inside, tcounts, divisor))
    return out
