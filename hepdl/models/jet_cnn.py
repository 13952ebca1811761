"""A configurable CNN jet-image classifier (after de Oliveira et al., "Jet-images — deep learning edition").

``body``: conv blocks (conv -> norm -> ReLU -> pool) then average pooling to a
``spatial_pool`` x ``spatial_pool`` grid (1: global average pooling), giving one feature
vector per jet; ``head``: a small dense network to the class logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.registry import register_model


def dense_head(in_features: int, hidden: Sequence[int], n_outputs: int, dropout: float) -> nn.Sequential:
    """Dense layers with ReLU and dropout, ending in a linear layer of ``n_outputs`` logits."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
        width = int(h)
    layers.append(nn.Linear(width, int(n_outputs)))
    return nn.Sequential(*layers)


#: the settings that decide the conv body's parameters: an encoder initialises a CNN body when they agree
CONV_BODY_SETTINGS = ("in_channels", "channels", "kernel_size", "pool", "norm")


def conv_block(cin: int, cout: int, kernel_size: int, norm: str, pool: str | None, dropout: float) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=(norm != "batch"))
    layers: list[nn.Module] = []
    if norm == "weight":
        layers.append(weight_norm(conv))
    else:
        layers.append(conv)
        if norm == "batch":
            layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU())
    if pool == "max":
        layers.append(nn.MaxPool2d(2))
    elif pool == "mean":
        layers.append(nn.AvgPool2d(2))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


def conv_body(*, in_channels: int, channels: Sequence[int], kernel_size: int, pool: str, norm: str,
              conv_dropout: float) -> nn.Sequential:
    """The convolutional feature extractor of jet images, one block per entry of ``channels``
    (conv -> norm -> ReLU, then 2x2 pooling after every block but the last).

    The jet CNN's body and the image autoencoder's encoder are both this, so an autoencoder's
    encoder fits a CNN body of the same :data:`CONV_BODY_SETTINGS` parameter for parameter.
    """
    if pool not in ("max", "mean", "none"):
        raise ValueError(f"pool must be 'max', 'mean' or 'none', not {pool!r}")
    if norm not in ("batch", "weight", "none"):
        raise ValueError(f"norm must be 'batch', 'weight' or 'none', not {norm!r}")
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, not {kernel_size}")
    if not channels:
        raise ValueError("channels must list at least one conv block")
    blocks = []
    cin = int(in_channels)
    for i, cout in enumerate(channels):
        last = i == len(channels) - 1
        blocks.append(conv_block(cin, int(cout), int(kernel_size), norm, None if (last or pool == "none") else pool,
                                 float(conv_dropout)))
        cin = int(cout)
    return nn.Sequential(*blocks)


@register_model("jet_cnn")
class JetCNN(ModelBase):
    """CNN on jet images ``(N, C, H, W)``; ``forward`` returns logits ``(N,)`` or ``(N, K)``.

    Args:
        in_channels: image channels (from the prepared data, e.g. calo_et, trk_pt, trk_count).
        channels: output channels of each conv block.
        kernel_size: odd kernel size of every convolution ("same" padding).
        pool: "max", "mean" or "none", applied after every block but the last.
        spatial_pool: the last block's maps are averaged onto this many cells per side
            before the head; 1 is global average pooling. In a preprocessed jet image
            *where* the energy sits is physics (the second prong's distance from the
            centre is about 2 m / pT), which a global average throws away.
        norm: "batch", "weight" (weight normalisation) or "none".
        dropout: dropout in the dense head; ``conv_dropout`` in the conv blocks.
        head: widths of the hidden dense layers.
        n_outputs: 1 for a binary classifier (one logit), K for K classes.
        seed: initialisation seed.
    """

    input_keys = ("jet_images",)
    prefers_channels_last = True

    def __init__(
        self,
        *,
        in_channels: int = 3,
        channels: Sequence[int] = (32, 64, 64),
        kernel_size: int = 3,
        pool: str = "max",
        norm: str = "batch",
        dropout: float = 0.2,
        conv_dropout: float = 0.0,
        head: Sequence[int] = (64,),
        n_outputs: int = 1,
        spatial_pool: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if int(spatial_pool) < 1:
            raise ValueError(f"spatial_pool must be >= 1, not {spatial_pool}")
        blocks = conv_body(in_channels=in_channels, channels=channels, kernel_size=kernel_size, pool=pool, norm=norm,
                           conv_dropout=conv_dropout)
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(int(spatial_pool)), nn.Flatten())
        self.body_dim = int(channels[-1]) * int(spatial_pool) ** 2
        self.head = dense_head(self.body_dim, head, n_outputs, dropout)
        self.n_outputs = int(n_outputs)
        initialise_weights(self, seed, output_layers=(self.head[-1],))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(images))
        return logits.squeeze(-1) if self.n_outputs == 1 else logits
