"""Event content to tensors: jet images, track sequences, expert variables, neutrino pixel maps.

``jet_representation(chunk, spec)`` / ``neutrino_representation(chunk, spec)`` turn an
awkward chunk (logical field names) into the arrays of a prepared dataset;
``prepare_file`` writes one shard per ROOT file; ``PreparedDataset`` reads shards back.
"""

from hepdl.represent.expert_variables import EXPERT_FEATURES, expert_jet_variables, tower_mass
from hepdl.represent.jet_images import jet_frame, jet_images
from hepdl.represent.nsubjettiness import nsubjettiness
from hepdl.represent.pixel_maps import NEUTRINO_FEATURES, neutrino_variables, pixel_maps
from hepdl.represent.prepared import load_array, load_meta, prepare_file
from hepdl.represent.representations import (
    default_jet_spec,
    default_neutrino_spec,
    jet_representation,
    neutrino_representation,
    representation,
    resolve_spec,
)
from hepdl.represent.split import assign_split
from hepdl.represent.track_sequences import TRACK_FEATURES, track_sequences

__all__ = [
    "EXPERT_FEATURES",
    "NEUTRINO_FEATURES",
    "TRACK_FEATURES",
    "PreparedDataset",
    "assign_split",
    "default_jet_spec",
    "default_neutrino_spec",
    "expert_jet_variables",
    "jet_frame",
    "jet_images",
    "jet_representation",
    "load_array",
    "load_meta",
    "neutrino_representation",
    "neutrino_variables",
    "nsubjettiness",
    "pixel_maps",
    "prepare_file",
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
