"""hepdl: deep learning for particle-physics analyses.

Read events from ROOT files under logical field names, build jet images and
other representations, train and apply classifiers, write scores back as
friend trees. The Snakemake workflow calls the same functions through the
``hepdl`` command.
"""

from hepdl.errors import ConfigError, HepdlError, InputError
from hepdl.io import describe_file, iterate_events, read_events, write_friend, write_tree

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "HepdlError",
    "InputError",
    "__version__",
    "describe_file",
    "iterate_events",
    "read_events",
    "write_friend",
    "write_tree",
]
