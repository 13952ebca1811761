"""Torch modules for hepdl: each model is built from a JSON-able config by name.

Every registered model derives from :class:`ModelBase` (the :class:`HepdlModel` interface:
``input_keys``, ``n_outputs``, ``standardisation_keys``, ...); a classifier keeps a feature
extractor ``model.body`` and a head ``model.head`` as separate submodules
(:class:`BodyAndHead`), so autoencoder pre-training and domain adaptation can reuse the body.
``model.config`` (recorded by ``register_model``) is the config that rebuilds it.

A new model is one module in this package: every module here is imported (and so registers
its models) when :mod:`hepdl.models` is, so nothing else names it.
"""

from hepdl.models.autoencoders import DenseAutoencoder, JetImageAutoencoder
from hepdl.models.combined_tagger import CombinedTagger
from hepdl.models.domain_adversarial import (
    DomainAdversarial,
    GradientReversal,
    PivotAdversarial,
    reversal_schedule,
)
from hepdl.models.expert_mlp import ExpertMLP
from hepdl.models.init import initialise_weights
from hepdl.models.interface import BodyAndHead, HepdlModel, ModelBase
from hepdl.models.jet_cnn import JetCNN
from hepdl.models.model_file import load_model_file, save_model
from hepdl.models.registry import (
    MODEL_REGISTRY,
    build_model,
    complete_model_config,
    model_class,
    model_input_keys,
    model_settings,
    register_model,
)
from hepdl.models.track_rnn import TrackEncoder, TrackRNN
from hepdl.models.two_view_cvn import TwoViewCVN
from hepdl.plugins import import_submodules

__all__ = [
    "MODEL_REGISTRY",
    "BodyAndHead",
    "HepdlModel",
    "ModelBase",
    "model_class",
    "model_settings",
    "CombinedTagger",
    "DomainAdversarial",
    "GradientReversal",
    "PivotAdversarial",
    "DenseAutoencoder",
    "JetImageAutoencoder",
    "ExpertMLP",
    "JetCNN",
    "TwoViewCVN",
    "build_model",
    "complete_model_config",
    "model_input_keys",
    "initialise_weights",
    "load_model_file",
    "register_model",
    "reversal_schedule",
    "save_model",
    "TrackEncoder",
    "TrackRNN",
]

import_submodules(__name__)
