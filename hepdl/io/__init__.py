"""ROOT in and out: the only layer of hepdl that opens ROOT files."""

from hepdl.io.check import CheckReport, check_tree
from hepdl.io.inspect import describe_file
from hepdl.io.read import ChunkSource, expand_paths, iterate_events, read_events, tree_names
from hepdl.io.write import TreeWriter, write_friend, write_tree

__all__ = [
    "CheckReport",
    "ChunkSource",
    "check_tree",
    "TreeWriter",
    "describe_file",
    "expand_paths",
    "iterate_events",
    "read_events",
    "tree_names",
    "write_friend",
    "write_tree",
]
