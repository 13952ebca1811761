"""The community's jet datasets read like a ROOT tree: HDF5 and Parquet jet tables.

A *jet table* is one row per jet. :func:`open_layout` opens one by its file suffix
(``.h5``/``.hdf5``: :mod:`hepdl.io.hdf5_layouts`, ``.parquet``: :mod:`hepdl.io.parquet_layout`)
and returns an object with the part of an uproot tree's interface that hepdl's reading
uses (``keys()``, ``num_entries``, ``iterate(branches, step_size=...)``), so that
:func:`hepdl.io.read.iterate_events`, ``hepdl prepare`` and scoring read it under the
same logical field mapping as a ROOT file. Its "branches" are the table's own columns
plus the constituents and jet kinematics computed from its four-momentum columns.
"""

from __future__ import annotations

import os

from hepdl.errors import InputError
from hepdl.io.hdf5_layouts import hdf5_table_names, open_hdf5_jets
from hepdl.io.jet_table import JetTable
from hepdl.io.parquet_layout import ParquetJets

HDF5_SUFFIXES = (".h5", ".hdf5")
PARQUET_SUFFIXES = (".parquet",)


def is_layout_file(path: str | os.PathLike) -> bool:
    """True for a file that :func:`open_layout` reads (by suffix), not uproot."""
    return os.fspath(path).lower().endswith(HDF5_SUFFIXES + PARQUET_SUFFIXES)


def open_layout(path: str, tree: str) -> JetTable:
    """Open the jet table ``tree`` of an HDF5 file (a group or pandas key) or a Parquet file (``tree`` unused)."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if path.lower().endswith(HDF5_SUFFIXES):
        return open_hdf5_jets(path, tree)
    return ParquetJets(path)


def describe_layout(path: str, filter_name: str | None = None) -> str:
    """``hepdl inspect``'s listing of an HDF5 or Parquet file: its jet tables, entries and branches."""
    lines = [path]
    if path.lower().endswith(HDF5_SUFFIXES):
        tables = [(f"HDF5 table {n!r}", open_hdf5_jets(path, n)) for n in hdf5_table_names(path)]
        if not tables:
            lines.append("  no jet table in this file (a group of datasets, or a pandas key)")
    else:
        tables = [("Parquet table (no tree name needed)", open_layout(path, ""))]
    for title, table in tables:
        branches = [line for line in table.describe() if not filter_name or filter_name in line.split()[0]]
        lines.append(f"  {title}: {table.num_entries} entries, {len(table.keys())} branches")
        width = max((len(b.split("  ")[0]) for b in branches), default=0)
        lines += [f"    {b.split('  ', 1)[0]:<{width}}  {b.split('  ', 1)[1]}" for b in branches]
    return "\n".join(lines)
