"""Event content to tensors: jet images, track sequences, expert variables, neutrino pixel maps.

``representation(chunk, spec)`` turns an awkward chunk (logical field names) into the arrays of
a prepared dataset, building every representation of the spec's task (a registry,
:mod:`hepdl.represent.registry`); ``resolve_spec(task, overrides)`` gives the spec;
``prepare_file`` writes one shard per ROOT file; ``PreparedDataset`` reads shards back.
"""

from hepdl.represent.expert_variables import EXPERT_FEATURES, expert_jet_variables, tower_mass
from hepdl.represent.jet_images import jet_frame, jet_images
from hepdl.represent.nsubjettiness import nsubjettiness
from hepdl.represent.pixel_maps import NEUTRINO_FEATURES, neutrino_variables, pixel_maps
from hepdl.represent.prepared import find_shards, load_array, load_meta, prepare_file
from hepdl.represent.registry import REPRESENTATIONS, register_representation, register_transform
from hepdl.represent.representations import (
    default_spec,
    feature_names,
    representation,
    resolve_spec,
)
from hepdl.represent.split import assign_split
from hepdl.represent.track_sequences import TRACK_FEATURES, track_sequences

__all__ = [
    "EXPERT_FEATURES",
    "NEUTRINO_FEATURES",
    "REPRESENTATIONS",
    "TRACK_FEATURES",
    "PreparedDataset",
    "assign_split",
    "default_spec",
    "expert_jet_variables",
    "feature_names",
    "find_shards",
    "jet_frame",
    "jet_images",
    "load_array",
    "load_meta",
    "neutrino_variables",
    "nsubjettiness",
    "pixel_maps",
    "prepare_file",
    "register_representation",
    "register_transform",
    "representation",
    "resolve_spec",
    "tower_mass",
    "track_sequences",
]


def __getattr__(name: str):
    # torch is heavy to import; only the Dataset needs it.
    if name == "PreparedDataset":
        from hepdl.represent.torch_dataset import PreparedDataset

        return PreparedDataset
    raise AttributeError(name)
