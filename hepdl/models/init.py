"""Seeded weight initialisation by layer type.

Kaiming (He) for layers followed by a ReLU (convolutions, hidden dense layers),
Xavier (Glorot) for the last, linear, output layer; biases start at zero, norm
layers at the identity. Weights are never zero-initialised: a zero weight matrix
makes every unit of a layer receive the same gradient and stay identical.
"""

from __future__ import annotations

import torch
from torch import nn


def _weight_of(module: nn.Module) -> torch.Tensor | None:
    # weight_norm keeps the direction in parametrizations.weight.original1
    para = getattr(module, "parametrizations", None)
    if para is not None and "weight" in para:
        return para.weight.original1
    return getattr(module, "weight", None)


@torch.no_grad()
def initialise_weights(model: nn.Module, seed: int, output_layers: tuple[nn.Module, ...] = ()) -> None:
    """Initialise every conv/linear/norm layer of ``model`` from ``seed``.

    ``output_layers`` are initialised with Xavier (they feed a sigmoid/softmax or
    nothing, not a ReLU).
    """
    gen = torch.Generator().manual_seed(int(seed))
    outputs = {id(m) for m in output_layers}
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)):
            weight = _weight_of(module)
            if id(module) in outputs:
                nn.init.xavier_uniform_(weight, generator=gen)
            else:
                nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=gen)
            para = getattr(module, "parametrizations", None)
            if para is not None and "weight" in para:
                # weight_norm: the magnitude g starts as the norm of the new direction
                dims = tuple(range(1, weight.dim()))
                para.weight.original0.copy_(torch.linalg.vector_norm(weight, dim=dims, keepdim=True))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
