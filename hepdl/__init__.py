"""hepdl: deep learning for particle-physics analyses.

Read events from ROOT files under logical field names, build jet images and
other representations, train models (``train_model``) and apply them, write
scores back as friend trees, export to ONNX. The Snakemake workflow calls the same functions through the
``hepdl`` command.
"""

from hepdl.errors import ConfigError, HepdlError, InputError
from hepdl.io import describe_file, iterate_events, read_events, write_friend, write_tree

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "HepdlError",
    "InputError",
    "PreparedDataset",
    "TrainedModel",
    "__version__",
    "describe_file",
    "export_onnx",
    "iterate_events",
    "jet_images",
    "load_model",
    "nsubjettiness",
    "pixel_maps",
    "prepare_file",
    "read_events",
    "representation",
    "resolve_spec",
    "score_file",
    "track_sequences",
    "train_model",
    "write_friend",
    "write_tree",
]

# Representations, scoring and export need fastjet and torch; import them on first use
# so that ``import hepdl`` and ``hepdl --help`` stay fast.
_LAZY = {
    "PreparedDataset": "hepdl.represent",
    "jet_images": "hepdl.represent",
    "representation": "hepdl.represent",
    "resolve_spec": "hepdl.represent",
    "nsubjettiness": "hepdl.represent",
    "pixel_maps": "hepdl.represent",
    "prepare_file": "hepdl.represent",
    "track_sequences": "hepdl.represent",
    "TrainedModel": "hepdl.scoring",
    "load_model": "hepdl.scoring",
    "score_file": "hepdl.scoring",
    "export_onnx": "hepdl.onnx_export",
    "train_model": "hepdl.train.training_run",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
