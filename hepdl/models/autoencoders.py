"""Autoencoders for unsupervised jet features: convolutional on jet images, dense on expert variables.

Three flavours share one class each, chosen by settings rather than by subclass:

- plain bottleneck: ``sparsity = 0``, no corruption;
- sparse: ``sparsity > 0``, the ``autoencode`` objective adds ``sparsity * mean |code|`` to the loss;
- denoising: ``noise_std > 0`` (Gaussian noise, in standardised units) and/or ``input_dropout > 0``
  (pixels/features zeroed) corrupt the input in training mode only; the target is the clean input.

The image autoencoder's encoder is built from exactly the conv blocks of :class:`~hepdl.models.jet_cnn.JetCNN`
(same module layout), so :func:`init_body_from` can copy it into a CNN's ``body`` for pre-training.
Inputs are standardised by constants stored as buffers (fitted on the training split by the engine
through ``fit_standardisation``), so reconstruction errors are comparable across channels and a saved
model applies them itself. ``forward`` returns ``(reconstruction, code)`` with the reconstruction in
standardised units; :meth:`target` gives the clean standardised input to compare it with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hepdl.errors import ConfigError, HepdlError
from hepdl.models.expert_mlp import Standardise
from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.jet_cnn import CONV_BODY_SETTINGS, JetCNN, conv_body
from hepdl.models.registry import register_model


def _corrupt(x: torch.Tensor, noise_std: float, input_dropout: float) -> torch.Tensor:
    """Denoising corruption (training only): additive Gaussian noise and/or zeroed inputs.

    Draws from torch's global RNG, which the engine reseeds per epoch, so runs repeat.
    """
    if noise_std > 0:
        x = x + noise_std * torch.randn_like(x)
    if input_dropout > 0:
        x = x * (torch.rand_like(x) >= input_dropout)
    return x


class _AutoencoderMixin:
    """Shared behaviour: corruption in training mode, ``forward -> (reconstruction, code)``."""

    sparsity: float
    noise_std: float
    input_dropout: float

    def _set_flavour(self, latent_dim: int, sparsity: float, noise_std: float, input_dropout: float) -> None:
        """The bottleneck and the plain/sparse/denoising settings, checked."""
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, not {latent_dim}")
        for key, value in (("sparsity", sparsity), ("noise_std", noise_std)):
            if value < 0:
                raise ValueError(f"{key} must be >= 0, not {value}")
        if not 0 <= input_dropout < 1:
            raise ValueError(f"input_dropout must be in [0, 1), not {input_dropout}")
        self.latent_dim = int(latent_dim)
        self.sparsity, self.noise_std, self.input_dropout = float(sparsity), float(noise_std), float(input_dropout)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # type: ignore[attr-defined]
            return x
        return _corrupt(x, self.noise_std, self.input_dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encode_standardised(self.corrupt(self.target(x)))
        return self.decode(code), code

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code of clean inputs (no corruption, whatever the mode)."""
        return self.encode_standardised(self.target(x))


@register_model("jet_image_autoencoder")
class JetImageAutoencoder(_AutoencoderMixin, ModelBase):
    """Convolutional autoencoder on jet images ``(N, C, H, W)``.

    Encoder: the :class:`JetCNN` conv blocks (``channels``, ``kernel_size``, ``pool``, ``norm``), then a
    linear map of the flattened last feature map to ``latent_dim``. Decoder: linear back to that feature
    map, then per block a 2x nearest-neighbour upsampling (where the encoder pooled) and a convolution,
    a final 3x3 convolution to ``in_channels``, resized to ``image_size`` if pooling floored an odd size.

    Args:
        in_channels, image_size: from the prepared data (the train CLI fills them in).
        channels, kernel_size, pool, norm, conv_dropout: as in ``jet_cnn`` (match them to pre-train a CNN).
        latent_dim: size of the code.
        sparsity: L1 coefficient on the code (sparse autoencoder), applied by the objective.
        noise_std, input_dropout: denoising corruption in training mode.
        output: "linear", or "relu" (jet images are non-negative: empty pixels are reconstructed as
            exactly zero instead of a small offset that sums up over the large empty periphery).
        core_radius: radius (fraction of the image half-width) of the "core" region whose
            reconstruction error is reported separately from the periphery.
        n_outputs: filled in by the train CLI for every model; unused (an autoencoder has no class outputs).
        seed: initialisation seed.
    """

    input_keys = ("jet_images",)
    prefers_channels_last = True
    standardisation_keys = ("jet_images",)

    def __init__(
        self,
        *,
        in_channels: int = 3,
        image_size: Sequence[int] = (32, 32),
        channels: Sequence[int] = (32, 64, 64),
        kernel_size: int = 3,
        pool: str = "max",
        norm: str = "batch",
        conv_dropout: float = 0.0,
        latent_dim: int = 16,
        sparsity: float = 0.0,
        noise_std: float = 0.0,
        input_dropout: float = 0.0,
        core_radius: float = 0.35,
        output: str = "linear",
        n_outputs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if output not in ("linear", "relu"):
            raise ValueError(f"output must be 'linear' or 'relu', not {output!r}")
        self._set_flavour(latent_dim, sparsity, noise_std, input_dropout)
        height, width = (int(s) for s in image_size)
        self.in_channels, self.output, self.core_radius = int(in_channels), output, float(core_radius)
        # the jet CNN's body itself (its settings named alike): an encoder initialises a CNN body
        self.encoder_body = conv_body(in_channels=in_channels, channels=channels, kernel_size=kernel_size, pool=pool,
                                      norm=norm, conv_dropout=conv_dropout)
        pooled = [i < len(channels) - 1 and pool != "none" for i in range(len(channels))]
        h, w = height >> sum(pooled), width >> sum(pooled)
        if h < 1 or w < 1:
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} conv blocks with pooling")
        cin = int(channels[-1])
        self._feature_shape = (cin, h, w)
        self.to_code = nn.Linear(cin * h * w, int(latent_dim))
        self.from_code = nn.Linear(int(latent_dim), cin * h * w)
        up: list[nn.Module] = []
        widths = [int(c) for c in channels]
        for i in range(len(widths) - 1, -1, -1):
            cout = widths[i - 1] if i > 0 else widths[0]
            if pooled[i]:
                up.append(nn.Upsample(scale_factor=2, mode="nearest"))
            up += [nn.Conv2d(widths[i], cout, kernel_size, padding=kernel_size // 2), nn.ReLU()]
        self.decoder_body = nn.Sequential(*up)
        self.to_image = nn.Conv2d(widths[0], int(in_channels), 3, padding=1)
        self.image_size = (height, width)
        self.standardise = Standardise(int(in_channels))
        initialise_weights(self, seed, output_layers=(self.to_code, self.to_image))

    @classmethod
    def config_from_data(cls, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Input channels and image size from a prepared dataset's meta."""
        shape = meta["arrays"][cls.input_keys[0]]["shape"]
        return {"in_channels": int(shape[1]), "image_size": [int(shape[2]), int(shape[3])]}

    @torch.no_grad()
    def fit_standardisation(self, images: np.ndarray | torch.Tensor) -> None:
        """Per-channel scale: the RMS pixel value of the training images (no shift).

        Only a scale: empty pixels stay exactly zero, and the encoder's first convolution can
        absorb it when its weights initialise a CNN that reads unscaled images.
        """
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"images have shape {x.shape}, model expects (N, {self.in_channels}, H, W)")
        # RMS per channel, accumulated over entries in float64 without copying the images
        rms = np.sqrt(np.einsum("nchw,nchw->c", x, x, dtype=np.float64) / (x.shape[0] * x.shape[2] * x.shape[3]))
        rms = np.where(rms > 1e-12, rms, 1.0)  # an empty channel is left unscaled
        self.standardise.std.copy_(torch.as_tensor(rms, dtype=torch.float32))
        self.standardise.mean.zero_()

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The clean input in standardised units: what the reconstruction is compared with."""
        return x / self.standardise.std.view(1, -1, 1, 1)

    def encode_standardised(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder_body(x).flatten(1))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Reconstruction in standardised units ``(N, C, H, W)``."""
        z = F.relu(self.from_code(code)).view(-1, *self._feature_shape)
        out = self.to_image(self.decoder_body(z))
        if self.output == "relu":
            out = F.relu(out)
        if tuple(out.shape[-2:]) != self.image_size:  # pooling floored an odd size
            out = F.interpolate(out, size=self.image_size, mode="nearest")
        return out

    def region_masks(self) -> dict[str, torch.Tensor]:
        """Boolean (H, W) masks of the image regions whose errors are reported: core and periphery."""
        h, w = self.image_size
        yy = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
        xx = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
        r = torch.sqrt(yy[:, None] ** 2 + xx[None, :] ** 2)
        core = r <= self.core_radius
        return {"core": core, "periphery": ~core}


@register_model("dense_autoencoder")
class DenseAutoencoder(_AutoencoderMixin, ModelBase):
    """Dense autoencoder on ``(N, F)`` features (expert variables), standardised by stored buffers.

    Encoder ``F -> hidden... -> latent_dim``, decoder mirrored. Arguments as for the image autoencoder.
    """

    input_keys = ("expert",)
    standardisation_keys = ("expert",)

    def __init__(
        self,
        *,
        n_features: int = 9,
        hidden: Sequence[int] = (32, 16),
        latent_dim: int = 4,
        sparsity: float = 0.0,
        noise_std: float = 0.0,
        input_dropout: float = 0.0,
        n_outputs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self._set_flavour(latent_dim, sparsity, noise_std, input_dropout)
        self.n_features = int(n_features)
        self.standardise = Standardise(int(n_features))
        widths = [int(n_features), *(int(h) for h in hidden)]
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            enc += [nn.Linear(a, b), nn.ReLU()]
        self.encoder_body = nn.Sequential(*enc)
        self.to_code = nn.Linear(widths[-1], int(latent_dim))
        dec: list[nn.Module] = []
        back = [int(latent_dim), *reversed(widths[1:])]
        for a, b in zip(back[:-1], back[1:], strict=True):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder_body = nn.Sequential(*dec)
        self.to_features = nn.Linear(back[-1], int(n_features))
        initialise_weights(self, seed, output_layers=(self.to_code, self.to_features))

    @torch.no_grad()
    def fit_standardisation(self, features: np.ndarray | torch.Tensor) -> None:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"features have shape {x.shape}, model expects (N, {self.n_features})")
        std = x.std(axis=0)
        self.standardise.mean.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
        self.standardise.std.copy_(torch.as_tensor(np.where(std > 1e-12, std, 1.0), dtype=torch.float32))

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardise(x)

    def encode_standardised(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder_body(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.to_features(self.decoder_body(code))


def is_autoencoder(model: nn.Module) -> bool:
    return isinstance(getattr(model, "module", model), (JetImageAutoencoder, DenseAutoencoder))


# --------------------------------------------------------------------------- pre-training


@torch.no_grad()
def copy_encoder_into_cnn(autoencoder: JetImageAutoencoder, cnn: JetCNN, where: str = "init_body_from") -> None:
    """Initialise ``cnn.body``'s conv blocks from the autoencoder's encoder (in place).

    The autoencoder reads images divided by its per-channel scale, the CNN raw images: the scale is
    folded into the first convolution's weights, so the CNN's body computes exactly the encoder's
    conv features. Any difference in the conv architecture is a :class:`ConfigError` naming ``where``.
    """
    if not isinstance(autoencoder, JetImageAutoencoder):
        raise ConfigError(f"{where}: needs a jet_image_autoencoder model, not {type(autoencoder).__name__}")
    if not isinstance(cnn, JetCNN):
        raise ConfigError(f"{where}: only a jet_cnn body can be initialised from an autoencoder, not {type(cnn).__name__}")
    for key in CONV_BODY_SETTINGS:
        if autoencoder.config[key] != cnn.config[key]:
            raise ConfigError(f"{where}: the autoencoder's {key} {autoencoder.config[key]!r} differs from the "
                              f"CNN's model.{key} {cnn.config[key]!r}; the encoder cannot initialise this body")
    source = autoencoder.encoder_body.state_dict()
    target = cnn.body.state_dict()
    for name, value in source.items():
        if name not in target or target[name].shape != value.shape:
            got = tuple(target[name].shape) if name in target else "no such parameter"
            raise ConfigError(f"{where}: encoder parameter {name} {tuple(value.shape)} does not fit the CNN body ({got})")
    cnn.body.load_state_dict({**target, **source})
    scale = autoencoder.standardise.std.view(1, -1, 1, 1)
    first = cnn.body[0][0]
    para = getattr(first, "parametrizations", None)
    if para is not None and "weight" in para:  # weight_norm: set direction and magnitude of weight / scale
        w = first.weight / scale
        para.weight.original1.copy_(w)
        para.weight.original0.copy_(torch.linalg.vector_norm(w, dim=(1, 2, 3), keepdim=True))
    else:
        first.weight.div_(scale)


def init_body_from(model: nn.Module, path: str | os.PathLike) -> None:
    """``init_body_from`` setting: load the autoencoder model file ``path`` and copy its encoder into ``model``."""
    from hepdl.models.model_file import load_model_file

    try:
        autoencoder, _ = load_model_file(path)
    except HepdlError as err:
        raise ConfigError(f"init_body_from: {err}") from err
    copy_encoder_into_cnn(autoencoder, getattr(model, "module", model), where=f"init_body_from ({os.fspath(path)})")
