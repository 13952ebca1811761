"""A two-view CNN neutrino event classifier (after Aurisano et al., "A Convolutional Neural
Network Neutrino Event Classifier", JINST 11 (2016) P09001, NOvA's CVN).

A segmented detector with alternating planes sees each interaction twice, in the XZ and
the YZ view, at different planes: the two images are not pixel-aligned, so they are not
stacked as channels of one image. Each view goes through its own convolutional tower
(or one tower with shared weights, applied to each view), and the towers' pooled
features are concatenated before the dense head, which is where the views meet.

``body``: the towers and the concatenation, ``(N, V, P, C) -> (N, V * F)``; ``head``: dense
layers to the class logits (numu_cc, nue_cc, nc[, nutau_cc]).

Input: deposited energy per (view, plane, cell), as written by
:func:`hepdl.represent.pixel_maps.pixel_maps` (MeV). Energies span two decades (a
minimum-ionising hit vs a shower core), so ``input_transform="log1p"`` compresses them
(as NOvA's 8-bit charge maps do) before the first convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.jet_cnn import dense_head
from hepdl.models.registry import register_model

INPUT_TRANSFORMS = ("log1p", "none")
GLOBAL_POOLS = ("avg", "max", "avg_max")


def conv_bn_relu(
    cin: int, cout: int, kernel_size: int, stride: int = 1, norm: bool = True
) -> nn.Sequential:
    """Convolution ("same" padding for stride 1), batch norm and ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=not norm)
    ]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class InceptionBlock(nn.Module):
    """GoogLeNet-style inception module: parallel 1x1, 3x3, 5x5 and pooling branches, concatenated.

    The 5x5 branch is two stacked 3x3 convolutions (same receptive field, fewer weights,
    one more non-linearity, as in Inception v2). 1x1 convolutions reduce the width before
    the larger kernels. ``out_channels`` is split over the four branches.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: bool = True) -> None:
        super().__init__()
        if out_channels < 4:
            raise ValueError(
                f"an inception block needs at least 4 output channels, not {out_channels}"
            )
        width = out_channels // 4
        widths = [out_channels - 3 * width, width, width, width]
        reduce = max(width // 2, 1)
        self.branch_1x1 = conv_bn_relu(in_channels, widths[0], 1, norm=norm)
        self.branch_3x3 = nn.Sequential(
            conv_bn_relu(in_channels, reduce, 1, norm=norm),
            conv_bn_relu(reduce, widths[1], 3, norm=norm),
        )
        self.branch_5x5 = nn.Sequential(
            conv_bn_relu(in_channels, reduce, 1, norm=norm),
            conv_bn_relu(reduce, widths[2], 3, norm=norm),
            conv_bn_relu(widths[2], widths[2], 3, norm=norm),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, widths[3], 1, norm=norm)
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch_1x1(x), self.branch_3x3(x), self.branch_5x5(x), self.branch_pool(x)], dim=1
        )


class GlobalPool(nn.Module):
    """Global pooling over the image to one vector: average, maximum, or both concatenated.

    The maximum keeps "is there a dense shower core anywhere", which averaging over a
    mostly empty detector image dilutes.
    """

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "avg":
            return x.mean(dim=(-2, -1))
        if self.mode == "max":
            return x.amax(dim=(-2, -1))
        return torch.cat([x.mean(dim=(-2, -1)), x.amax(dim=(-2, -1))], dim=1)


def view_tower(
    stem_channels: int,
    stem_kernel: int,
    stem_stride: int,
    stem_pool: int,
    channels: Sequence[int],
    inception: bool,
    norm: bool,
    conv_dropout: float,
    global_pool: str,
) -> tuple[nn.Sequential, int]:
    """One view's convolutional tower ``(N, 1, P, C) -> (N, F)`` and its output width ``F``.

    The stem (strided convolution, then pooling) shrinks the 100 x 80 map early: the
    maps are sparse, and the expensive layers then run on a few hundred pixels.
    """
    layers: list[nn.Module] = [
        conv_bn_relu(1, stem_channels, stem_kernel, stride=stem_stride, norm=norm)
    ]
    if stem_pool > 1:
        layers.append(nn.MaxPool2d(stem_pool))
    cin = stem_channels
    for i, cout in enumerate(channels):
        if i > 0:
            layers.append(nn.MaxPool2d(2))
        if inception:
            layers.append(InceptionBlock(cin, int(cout), norm=norm))
        else:
            layers.append(conv_bn_relu(cin, int(cout), 3, norm=norm))
        if conv_dropout > 0:
            layers.append(nn.Dropout2d(conv_dropout))
        cin = int(cout)
    layers.append(GlobalPool(global_pool))
    return nn.Sequential(*layers), cin * (2 if global_pool == "avg_max" else 1)


class TwoViewBody(nn.Module):
    """Apply one tower per view (or one shared tower to every view) and concatenate the features."""

    def __init__(
        self,
        towers: nn.ModuleList,
        n_views: int,
        shared: bool,
        input_transform: str,
        input_scale: float,
    ) -> None:
        super().__init__()
        self.towers = towers
        self.n_views, self.shared = n_views, shared
        self.input_transform, self.input_scale = input_transform, input_scale

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if maps.dim() != 4 or maps.shape[1] != self.n_views:
            raise ValueError(
                f"pixel maps must have shape (N, {self.n_views}, planes, cells), not {tuple(maps.shape)}"
            )
        x = maps / self.input_scale if self.input_scale != 1.0 else maps
        if self.input_transform == "log1p":
            # clamp: augmentation noise may push a small deposit below zero, and log1p(<-1) is NaN
            x = torch.log1p(x.clamp(min=0))
        n = x.shape[0]
        if self.shared:
            # every view through the same weights in one call: views become batch entries
            flat = x.reshape(n * self.n_views, 1, *x.shape[2:])
            return self.towers[0](flat).reshape(n, -1)
        return torch.cat([tower(x[:, v : v + 1]) for v, tower in enumerate(self.towers)], dim=1)


@register_model("two_view_cvn")
class TwoViewCVN(ModelBase):
    """Two-view CNN on neutrino pixel maps ``(N, V, planes, cells)``; ``forward`` returns logits ``(N, K)``.

    Args:
        in_channels: number of views V (axis 1 of the pixel maps: 2, XZ and YZ). The
            trainer fills it from the data.
        shared_towers: one set of tower weights for all views (fewer parameters) instead
            of one tower per view (each view learns its own filters; the default).
        stem_channels, stem_kernel, stem_stride, stem_pool: the first strided convolution
            and the max pooling after it (downsampling of the map).
        channels: output channels of each block after the stem (max pooling 2 between blocks).
        inception: inception blocks instead of plain 3x3 convolutions.
        global_pool: "avg", "max" or "avg_max" pooling of each tower's last feature map.
        norm: "batch" (batch norm after every convolution) or "none".
        input_transform: "log1p" (of the energy / ``input_scale``) or "none".
        input_scale: energy unit for the transform (pixel maps are in MeV).
        dropout: dropout in the dense head; ``conv_dropout`` after each block (Dropout2d).
        head: widths of the hidden dense layers after the concatenation.
        n_outputs: number of classes (3: numu_cc, nue_cc, nc; 4 with nutau_cc).
        seed: initialisation seed.
    """

    input_keys = ("pixel_maps",)
    prefers_channels_last = True

    def __init__(
        self,
        *,
        in_channels: int = 2,
        shared_towers: bool = False,
        stem_channels: int = 16,
        stem_kernel: int = 5,
        stem_stride: int = 2,
        stem_pool: int = 2,
        channels: Sequence[int] = (32, 48),
        inception: bool = False,
        global_pool: str = "avg_max",
        norm: str = "batch",
        input_transform: str = "log1p",
        input_scale: float = 1.0,
        dropout: float = 0.3,
        conv_dropout: float = 0.0,
        head: Sequence[int] = (64,),
        n_outputs: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if int(in_channels) < 1:
            raise ValueError(f"in_channels (views) must be >= 1, not {in_channels}")
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', not {norm!r}")
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(
                f"input_transform must be one of {INPUT_TRANSFORMS}, not {input_transform!r}"
            )
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, not {global_pool!r}")
        if stem_kernel % 2 != 1 or stem_stride < 1 or stem_pool < 1:
            raise ValueError("stem_kernel must be odd, stem_stride and stem_pool >= 1")
        if not float(input_scale) > 0:
            raise ValueError(f"input_scale must be > 0, not {input_scale}")
        if int(n_outputs) < 2:
            raise ValueError(f"n_outputs must be >= 2 classes, not {n_outputs}")
        n_views = int(in_channels)
        towers, width = [], 0
        for _ in range(1 if shared_towers else n_views):
            tower, width = view_tower(
                int(stem_channels),
                int(stem_kernel),
                int(stem_stride),
                int(stem_pool),
                [int(c) for c in channels],
                bool(inception),
                norm == "batch",
                float(conv_dropout),
                global_pool,
            )
            towers.append(tower)
        self.body = TwoViewBody(
            nn.ModuleList(towers), n_views, bool(shared_towers), input_transform, float(input_scale)
        )
        self.body_dim = n_views * width
        self.head = dense_head(self.body_dim, head, n_outputs, dropout)
        self.n_outputs = int(n_outputs)
        initialise_weights(self, seed, output_layers=(self.head[-1],))

    def forward(self, pixel_maps: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(pixel_maps))
