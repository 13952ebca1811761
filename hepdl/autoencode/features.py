"""Autoencoder features: latent code plus reconstruction errors, per entry, as a table for XGBoost.

For an image autoencoder the columns are ``code_0..code_{k-1}``, ``recon_mse`` (all pixels),
``recon_mse_<channel>`` per image channel and ``recon_mse_core`` / ``recon_mse_periphery``
(pixels inside / outside the model's ``core_radius``). For a dense autoencoder: the code,
``recon_mse`` and ``recon_mse_<feature>`` per input feature. Errors are squared differences in the
model's standardised units, so channels and features weigh alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hepdl.errors import InputError
from hepdl.models.autoencoders import DenseAutoencoder, JetImageAutoencoder


def feature_names(model: nn.Module, input_names: Sequence[str]) -> list[str]:
    """Column names of :func:`encode`'s table; ``input_names`` names the image channels / input features."""
    names = [f"code_{i}" for i in range(model.latent_dim)] + ["recon_mse"]
    names += [f"recon_mse_{n}" for n in input_names]
    if isinstance(model, JetImageAutoencoder):
        names += ["recon_mse_core", "recon_mse_periphery"]
    return names


@torch.no_grad()
def encode(model: nn.Module, x: np.ndarray | torch.Tensor, *, with_reconstruction: bool = False
           ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The feature table ``(N, F)`` float32 of one batch of inputs (model in eval mode, no corruption).

    With ``with_reconstruction`` also the reconstruction in the input's own (unstandardised) units,
    for pictures.
    """
    if not isinstance(model, (JetImageAutoencoder, DenseAutoencoder)):
        raise InputError(f"features need an autoencoder model, not {type(model).__name__}")
    model.eval()
    param = next(model.parameters())
    xt = torch.as_tensor(np.array(x, dtype=np.float32), device=param.device)  # a copy: inputs may be read-only memory maps
    target = model.target(xt)
    code = model.encode_standardised(target)
    recon = model.decode(code)
    sq = (recon - target) ** 2
    columns = [code, sq.flatten(1).mean(1, keepdim=True)]
    if isinstance(model, JetImageAutoencoder):
        columns.append(sq.mean(dim=(2, 3)))  # per channel
        for mask in model.region_masks().values():  # core, periphery
            m = mask.to(sq.device)
            columns.append((sq * m).sum(dim=(1, 2, 3), keepdim=False).unsqueeze(1) / (m.sum() * sq.shape[1]))
    else:
        columns.append(sq)  # per feature
    table = torch.cat(columns, dim=1).cpu().numpy().astype(np.float32)
    if not np.all(np.isfinite(table)):
        raise InputError("autoencoder features are not finite (non-finite inputs or a diverged model)")
    if not with_reconstruction:
        return table
    if isinstance(model, JetImageAutoencoder):
        original_units = recon * model.standardise.std.view(1, -1, 1, 1)
    else:
        original_units = recon * model.standardise.std + model.standardise.mean
    return table, original_units.cpu().numpy()


def encode_blocks(model: nn.Module, array: np.ndarray, batch_size: int = 1024, *, with_reconstruction: bool = False
                  ) -> Iterator[tuple[int, np.ndarray] | tuple[int, np.ndarray, np.ndarray]]:
    """``(first_row, table[, reconstruction])`` per block of ``batch_size`` rows of a (memory-mapped) array."""
    for lo in range(0, len(array), batch_size):
        out = encode(model, np.asarray(array[lo:lo + batch_size]), with_reconstruction=with_reconstruction)
        yield (lo, *out) if with_reconstruction else (lo, out)


def pca_projection(codes: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project codes onto their first principal components (via SVD); returns (projection, explained variance ratio)."""
    x = np.asarray(codes, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    var = s**2
    ratio = var[:n_components] / var.sum() if var.sum() > 0 else np.zeros(min(n_components, len(s)))
    return x @ vt[:n_components].T, ratio
