"""Domain-adversarial training (Ganin & Lempitsky 2015, "Unsupervised domain adaptation by backpropagation").

A shared feature extractor (the ``body`` of any registered model) feeds two heads: the
model's own label head, trained on labelled simulation, and a domain head that tells
simulation from data. Between the features and the domain head sits a
:class:`GradientReversal` layer: identity going forward, ``-lambda`` times the gradient
going back. The domain head learns to separate the domains while the body receives the
opposite gradient and learns features in which simulation and data look alike, so the
label head's decision does not depend on which domain an entry came from.

``DomainAdversarial.forward(x)`` returns the label logits exactly as the wrapped model
does, so a trained domain-adversarial network scores, saves and exports to ONNX like a
plain CNN; the domain head is reached only with ``forward(x, domain_lambda=...)``, which
the "adapt" objective of :mod:`hepdl.train.objectives` calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hepdl.models.init import initialise_weights
from hepdl.models.interface import BodyAndHead, ModelBase
from hepdl.models.jet_cnn import dense_head
from hepdl.models.registry import build_model, register_model


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; the incoming gradient times ``-lambda`` backward (no gradient to lambda)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)  # a new tensor node, so autograd routes the gradient through backward()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.neg() * ctx.lambda_, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; back-propagates ``-lambda_ * grad`` (the gradient reversal of Ganin & Lempitsky)."""
    return _ReverseGrad.apply(x, lambda_)


class GradientReversal(nn.Module):
    """Gradient reversal layer: identity forward, ``-lambda_ * grad`` backward.

    ``lambda_`` is a plain attribute (not a parameter) so a schedule can change it
    between steps; see :func:`reversal_schedule`.
    """

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = float(lambda_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}"


def reversal_schedule(progress: float, lambda_max: float = 1.0, gamma: float = 10.0) -> float:
    """The DANN ramp ``lambda_max * (2 / (1 + exp(-gamma p)) - 1)`` for training progress ``p`` in [0, 1].

    It starts at 0, so the domain head first learns on features that already carry the
    label information (an adversary at full strength from step one only adds noise), and
    approaches ``lambda_max`` as ``p -> 1`` (0.987 * lambda_max at ``p = 0.5`` for gamma 10).
    """
    p = min(max(float(progress), 0.0), 1.0)
    return float(lambda_max) * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class _ScaledGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = float(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


class _LearningRateScaled(nn.Module):
    """Wraps a module whose parameters should move ``scale`` times faster under Adam.

    Adam's step is invariant to the gradient's scale, so the parameters are stored divided
    by ``scale`` and multiplied back in the forward pass ("equalised learning rate", Karras et
    al. 2018): the same Adam step on the stored value moves the effective weight ``scale``
    times further. The effective module is identical at initialisation.
    """

    def __init__(self, module: nn.Module, scale: float) -> None:
        super().__init__()
        self.module, self.scale = module, float(scale)
        with torch.no_grad():
            for p in self.module.parameters():
                p.div_(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = {n: p * self.scale for n, p in self.module.named_parameters()}
        buffers = dict(self.module.named_buffers())
        return torch.func.functional_call(self.module, {**params, **buffers}, (x,))


class _WrappedClassifier(ModelBase):
    """A registered model (``self.base``) with an adversary beside it: the engine, scoring and
    export read the base's inputs, layout and body/head off the wrapper."""

    def _adopt(self, base: ModelBase) -> None:
        self.base = base
        self.input_keys = tuple(base.input_keys)
        self.prefers_channels_last = base.prefers_channels_last
        self.n_outputs = base.n_outputs

    @property
    def body(self) -> nn.Module:
        """The shared feature extractor (the base model's body)."""
        return self.base.body

    @property
    def head(self) -> nn.Module:
        """The label head (the base model's head)."""
        return self.base.head


@register_model("domain_adversarial")
class DomainAdversarial(_WrappedClassifier):
    """A registered model with body/head plus a domain head behind a gradient reversal.

    Args:
        base: the registry config of the wrapped model, e.g. ``{"name": "jet_cnn", ...}``
            or ``{"name": "two_view_cvn", ...}``; it must expose ``body``, ``head``
            and ``body_dim``.
        domain_hidden: widths of the domain head's hidden layers (an int for one layer).
        domain_dropout: dropout in the domain head.
        domain_norm: standardise the features at the domain head's input (batch norm without
            affine parameters), so the adversary sees every feature direction at the same scale,
            as an offline domain classifier on standardised features does; without it, a domain
            difference hidden in low-variance features goes almost unseen by the adversary.
        domain_lr_scale: the domain head learns this many times faster than the rest (under
            Adam), so the adversary keeps up with a feature extractor that moves to fool it.
        seed: initialisation seed of the domain head (the base keeps its own seed).

    ``forward(*inputs)`` gives the label logits (as the base model does);
    ``forward(*inputs, domain_lambda=l)`` gives ``(label_logits, domain_logit)`` with the
    domain logit ``(N,)`` (1 = data) computed through a reversal of strength ``l``.
    ``features(*inputs)`` gives the body's output (what the domain metrics look at).
    """

    def __init__(
        self,
        *,
        base: Mapping[str, Any],
        domain_hidden: int | Sequence[int] = 64,
        domain_dropout: float = 0.0,
        domain_norm: bool = False,
        domain_lr_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(base, Mapping) or "name" not in base:
            raise ValueError("base must be a model config with a 'name', e.g. {'name': 'jet_cnn'}")
        if base["name"] == "domain_adversarial":
            raise ValueError("base cannot itself be domain_adversarial")
        wrapped = build_model(base)
        if not isinstance(wrapped, BodyAndHead):
            raise ValueError(f"model {base['name']!r} has no body/head/body_dim: domain adaptation needs them")
        self._adopt(wrapped)
        self.body_dim = int(wrapped.body_dim)
        self.standardisation_keys = tuple(wrapped.standardisation_keys)
        hidden = [int(domain_hidden)] if isinstance(domain_hidden, int) else [int(h) for h in domain_hidden]
        self.reversal = GradientReversal(0.0)
        head = dense_head(int(self.base.body_dim), hidden, 1, float(domain_dropout))
        initialise_weights(head, int(seed), output_layers=(head[-1],))
        if domain_norm:
            head = nn.Sequential(nn.BatchNorm1d(int(self.base.body_dim), affine=False), *head)
        if float(domain_lr_scale) <= 0:
            raise ValueError(f"domain_lr_scale must be > 0, not {domain_lr_scale}")
        self.domain_head = head if float(domain_lr_scale) == 1.0 else _LearningRateScaled(head, float(domain_lr_scale))

    def fit_standardisation(self, *arrays: Any) -> None:
        """The base model's constants (e.g. an MLP's feature scales), from the training split."""
        self.base.fit_standardisation(*arrays)

    def features(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.base.body(*inputs)

    def _label_logits(self, feats: torch.Tensor) -> torch.Tensor:
        logits = self.base.head(feats)
        return logits.squeeze(-1) if self.n_outputs == 1 else logits

    def forward(self, *inputs: torch.Tensor, domain_lambda: float | None = None):
        feats = self.base.body(*inputs)
        logits = self._label_logits(feats)
        if domain_lambda is None:
            return logits
        self.reversal.lambda_ = float(domain_lambda)
        return logits, self.domain_head(self.reversal(feats)).squeeze(-1)


@register_model("pivot_adversarial")
class PivotAdversarial(_WrappedClassifier):
    """A classifier decorrelated from a nuisance (jet mass) by an adversary (Louppe, Kagan, Cranmer,
    "Learning to pivot with adversarial networks", 2017), through the same gradient reversal.

    The adversary reads the classifier's score and predicts the background jet's mass bin
    (``n_mass_bins`` quantile bins of the training background, fitted by the engine through
    ``fit_standardisation``); the reversal makes the classifier's score carry as little
    information about the mass as the label loss allows, so a cut on it sculpts the background
    mass spectrum less.

    Args:
        base: the registry config of the classifier (any registered binary model).
        n_mass_bins: classes of the adversary (mass quantiles of the training background).
        adversary_hidden: widths of the adversary's hidden layers.
        seed: initialisation seed of the adversary.
    """

    standardisation_keys = ("jet_mass", "label")

    def __init__(self, *, base: Mapping[str, Any], n_mass_bins: int = 10,
                 adversary_hidden: int | Sequence[int] = (32, 32), seed: int = 0) -> None:
        super().__init__()
        if not isinstance(base, Mapping) or "name" not in base or base["name"] in ("pivot_adversarial", "domain_adversarial"):
            raise ValueError("base must be the config of a plain registered classifier, e.g. {'name': 'jet_cnn'}")
        if int(n_mass_bins) < 2:
            raise ValueError(f"n_mass_bins must be at least 2, not {n_mass_bins}")
        self._adopt(build_model(base))
        if self.n_outputs != 1:
            raise ValueError("mass decorrelation needs a binary classifier (one logit)")
        self.n_mass_bins = int(n_mass_bins)
        hidden = [int(adversary_hidden)] if isinstance(adversary_hidden, int) else [int(h) for h in adversary_hidden]
        self.reversal = GradientReversal(0.0)
        self.adversary = dense_head(1, hidden, int(n_mass_bins), 0.0)
        initialise_weights(self.adversary, int(seed), output_layers=(self.adversary[-1],))
        # inner bin edges of the mass (n_mass_bins - 1), saved with the model
        self.register_buffer("mass_edges", torch.linspace(0.0, 1.0, int(n_mass_bins) + 1)[1:-1])

    @torch.no_grad()
    def fit_standardisation(self, jet_mass: Any, label: Any) -> None:
        """Mass bin edges: quantiles of the training background's jet mass (equal-population bins)."""
        import numpy as np

        mass = np.asarray(jet_mass, dtype=np.float64)[np.asarray(label) == 0]
        if mass.size < self.n_mass_bins:
            raise ValueError(f"mass decorrelation: {mass.size} background jets for {self.n_mass_bins} mass bins")
        q = np.quantile(mass, np.linspace(0, 1, self.n_mass_bins + 1)[1:-1])
        self.mass_edges.copy_(torch.as_tensor(q, dtype=torch.float32))

    def mass_bin(self, jet_mass: torch.Tensor) -> torch.Tensor:
        return torch.bucketize(jet_mass.float(), self.mass_edges)

    def forward(self, *inputs: torch.Tensor, adversary_lambda: float | None = None):
        logits = self.base(*inputs)
        if adversary_lambda is None:
            return logits
        self.reversal.lambda_ = float(adversary_lambda)
        # the adversary sees the score (a sigmoid: bounded, as the analysis cut sees it)
        return logits, self.adversary(self.reversal(torch.sigmoid(logits.float()).unsqueeze(-1)))
