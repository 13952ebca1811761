"""A jet tagger on the calorimeter image and the track sequence together, trained end to end.

``body`` (:class:`ImageTrackBody`) runs the jet CNN's body (conv blocks and global
average pooling, built by :class:`hepdl.models.jet_cnn.JetCNN` from the ``cnn`` settings)
on ``jet_images`` and the track encoder (:class:`hepdl.models.track_rnn.TrackEncoder`,
``rnn`` settings) on ``tracks``/``track_mask``, and concatenates the two feature vectors;
``head`` is one dense network on the concatenation, so the classifier learns from the
correlations between the calorimeter pattern and the tracks (e.g. charged-particle
multiplicity and impact parameters given the image's prong structure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.jet_cnn import JetCNN, dense_head
from hepdl.models.registry import register_model
from hepdl.models.track_rnn import TrackEncoder

#: CNN body settings (JetCNN's, less those of its head) and their defaults
CNN_DEFAULTS: dict[str, Any] = {"channels": [32, 64, 64], "kernel_size": 3, "pool": "max", "norm": "batch",
                                "conv_dropout": 0.0, "spatial_pool": 1}
#: track-encoder settings (TrackEncoder's) and their defaults
RNN_DEFAULTS: dict[str, Any] = {"cell": "gru", "hidden": 32, "layers": 1, "bidirectional": True, "embed": 32,
                                "dropout": 0.0}


def _complete(given: Mapping[str, Any] | None, defaults: Mapping[str, Any], key: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{key}.{unknown[0]} is not a setting (settings: {sorted(defaults)})")
    return {**defaults, **given}


class ImageTrackBody(nn.Module):
    """``(images, tracks, mask)`` -> ``cat(cnn_body(images), track_encoder(tracks, mask))``."""

    def __init__(self, image_body: nn.Module, track_body: TrackEncoder) -> None:
        super().__init__()
        self.image = image_body
        self.tracks = track_body

    def forward(self, images: torch.Tensor, tracks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.image(images), self.tracks(tracks, mask)], dim=1)


@register_model("combined_tagger")
class CombinedTagger(ModelBase):
    """CNN on ``jet_images (N, C, H, W)`` + RNN on ``tracks (N, L, F)``/``track_mask (N, L)``, one head.

    Args:
        in_channels: image channels (from the prepared data).
        n_track_features: features per track (from the prepared data).
        cnn: jet CNN body settings: channels, kernel_size, pool, norm, conv_dropout.
        rnn: track encoder settings: cell, hidden, layers, bidirectional, embed, dropout.
        head: widths of the hidden dense layers on the concatenated features.
        dropout: dropout in the head.
        n_outputs: 1 for a binary classifier (one logit), K for K classes.
        seed: initialisation seed.
    """

    input_keys = ("jet_images", "tracks", "track_mask")
    standardisation_keys = ("tracks", "track_mask")
    prefers_channels_last = True

    def __init__(
        self,
        *,
        in_channels: int = 3,
        n_track_features: int = 6,
        cnn: Mapping[str, Any] | None = None,
        rnn: Mapping[str, Any] | None = None,
        head: Sequence[int] = (64,),
        dropout: float = 0.2,
        n_outputs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        cnn_cfg = _complete(cnn, CNN_DEFAULTS, "cnn")
        rnn_cfg = _complete(rnn, RNN_DEFAULTS, "rnn")
        # the jet CNN builds (and seeds) its body; its own head is not kept
        image = JetCNN(in_channels=in_channels, **cnn_cfg, head=(), n_outputs=1, seed=seed)
        tracks = TrackEncoder(n_features=n_track_features, **rnn_cfg, seed=seed + 7)
        self.body = ImageTrackBody(image.body, tracks)
        self.body_dim = image.body_dim + tracks.out_dim
        self.head = dense_head(self.body_dim, head, n_outputs, dropout)
        self.n_outputs = int(n_outputs)
        initialise_weights(self.head, seed, output_layers=(self.head[-1],))

    @classmethod
    def config_from_data(cls, meta: Mapping[str, Any]) -> dict[str, Any]:
        """``in_channels`` and ``n_track_features`` from a prepared dataset's meta."""
        arrays = meta["arrays"]
        return {"in_channels": int(arrays["jet_images"]["shape"][1]),
                "n_track_features": int(arrays["tracks"]["shape"][2])}

    def set_tbptt_window(self, window: int | None) -> None:
        self.body.tracks.tbptt_window = window

    def fit_standardisation(self, tracks: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> None:
        """Track-feature standardisation from the training split (the images are normalised at preparation)."""
        self.body.tracks.fit_standardisation(tracks, mask)

    def forward(self, jet_images: torch.Tensor, tracks: torch.Tensor, track_mask: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(jet_images, tracks, track_mask))
        return logits.squeeze(-1) if self.n_outputs == 1 else logits
