"""On-the-fly augmentation of image batches ``(N, C, H, W)``: batched tensor ops, seeded.

Jet images: the reflections eta -> -eta and phi -> -phi are symmetries of QCD and of
boosted-object decays, so a mirrored jet is as likely as the original. hepdl's
preprocessing (``hepdl.represent.jet_images``) uses them up in part: it rotates the
image so the second subjet points towards row 0, then flips the columns so the half
with more E_T lies at positive column offset. Our choice (``reflect="auto"``):

- with the flip applied, reflect the **rows** only. A row reflection keeps the
  hard-half convention the flip established (the network may use it) and only moves
  the second subjet from below to above the centre, which is the 180-degree rotation of
  the column mirror image: a jet of identical physics. The column reflection would
  undo the flip, so it is not applied;
- without rotation and flip, rows and columns are phi and eta themselves and both
  reflections are symmetries.

Neutrino two-view pixel maps (planes x cells) have no reflection symmetry (the beam
comes from one side), so only small shifts and noise apply there.

Every random choice is drawn from the ``torch.Generator`` passed in, on the CPU,
then applied on the batch's device, so results do not depend on the device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

IMAGE_AXES = ("rows", "columns")


class ImageAugment:
    """Random reflections, ±``max_shift``-pixel rolls and multiplicative noise for image batches.

    Args:
        reflect: image axes to reflect ("rows": dim -2, "columns": dim -1), each with
            probability 1/2 per image.
        max_shift: roll each image by an integer in [-max_shift, max_shift] along each
            axis (pixels leaving one edge re-enter at the other, so the sum is kept).
        noise: relative Gaussian noise on non-empty pixels, ``x * (1 + noise * z)``;
            empty pixels stay empty (noise must not paint energy where none was).
    """

    def __init__(self, reflect: Sequence[str] = ("rows",), max_shift: int = 0, noise: float = 0.0) -> None:
        bad = [a for a in reflect if a not in IMAGE_AXES]
        if bad:
            raise ValueError(f"cannot reflect {bad[0]!r}: image axes are {IMAGE_AXES}")
        self.reflect_dims = tuple(-2 + IMAGE_AXES.index(a) for a in reflect)
        self.max_shift, self.noise = int(max_shift), float(noise)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = images.shape[0]
        out = images
        for dim in self.reflect_dims:
            flip = torch.rand(n, generator=generator) < 0.5
            flip = flip.to(images.device).view(n, 1, 1, 1)
            out = torch.where(flip, out.flip(dim), out)
        if self.max_shift > 0:
            out = self._roll(out, generator)
        if self.noise > 0:
            z = torch.randn(out.shape, generator=generator).to(out.device, out.dtype)
            out = torch.where(out != 0, out * (1 + self.noise * z), out)
        return out

    def _roll(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # a per-image roll as one gather: index (h - dh) mod H along rows, (w - dw) mod W along columns
        n, _, h, w = images.shape
        k = self.max_shift
        dh = torch.randint(-k, k + 1, (n,), generator=generator).to(images.device)
        dw = torch.randint(-k, k + 1, (n,), generator=generator).to(images.device)
        rows = (torch.arange(h, device=images.device).view(1, h) - dh.view(n, 1)) % h
        cols = (torch.arange(w, device=images.device).view(1, w) - dw.view(n, 1)) % w
        batch = torch.arange(n, device=images.device).view(n, 1, 1)
        # images[b, :, rows[b, i], cols[b, j]] -> (n, h, w, c); permute back to (n, c, h, w)
        rolled = images.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
        return rolled.permute(0, 3, 1, 2).contiguous(memory_format=_memory_format(images))


def _memory_format(images: torch.Tensor) -> torch.memory_format:
    if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def auto_reflections(image_spec: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The reflections that stay symmetries after the preprocessing in ``image_spec`` (see module doc)."""
    spec = image_spec or {}
    if spec.get("flip", True):
        return ("rows",)
    if spec.get("rotate", True):
        return ("columns",)  # rotation fixed the rows' direction; nothing fixed the columns
    return ("rows", "columns")


def jet_image_augment(reflect: str | Sequence[str], max_shift: int, noise: float,
                      image_spec: Mapping[str, Any] | None = None) -> ImageAugment:
    """Augmentation for jet images: reflections (physics symmetries), optional shifts and noise.

    ``reflect="auto"`` picks the reflections from the representation's image spec.
    """
    axes = auto_reflections(image_spec) if reflect == "auto" else tuple(reflect)
    return ImageAugment(reflect=axes, max_shift=max_shift, noise=noise)


def pixel_map_augment(max_shift: int, noise: float) -> ImageAugment:
    """Augmentation for neutrino pixel maps: small shifts and noise, never reflections."""
    return ImageAugment(reflect=(), max_shift=max_shift, noise=noise)
