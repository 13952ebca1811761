"""hepdl: deep learning for particle-physics analyses.

Read events from ROOT files under logical field names, build jet images and
other representations, train and apply classifiers, write scores back as
friend trees, export to ONNX. The Snakemake workflow calls the same functions through the
``hepdl`` command.
"""

from hepdl.errors import ConfigError, HepdlError, InputError
from hepdl.io import describe_file, iterate_events, read_events, write_friend, write_tree

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "HepdlError",
    "InputError",
    "TrainedModel",
    "__version__",
    "describe_file",
    "export_onnx",
    "iterate_events",
    "load_model",
    "read_events",
    "score_file",
    "write_friend",
    "write_tree",
]

# Scoring and export need torch; import them on first use so that ``import hepdl``
# and ``hepdl --help`` stay fast.
_LAZY = {
    "TrainedModel": "hepdl.scoring",
    "load_model": "hepdl.scoring",
    "score_file": "hepdl.scoring",
    "export_onnx": "hepdl.onnx_export",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
