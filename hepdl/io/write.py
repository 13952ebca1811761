"""Write ROOT TTrees atomically: a temporary name, then a rename on success.

Jagged fields that share a prefix (``calo_eta``, ``calo_phi``, ``calo_e``) are
written as one NanoAOD-style collection with a single counter (``ncalo``), which
is the layout :func:`hepdl.io.read_events` and ROOT's ``TTree::Draw`` expect.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType

import awkward as ak
import numpy as np
import uproot

from hepdl.atomic import output_error
from hepdl.errors import InputError
from hepdl.io.read import check_field_names, open_tree

ArrayLike = np.ndarray | ak.Array


def _group_jagged(arrays: Mapping[str, ArrayLike], where: str) -> dict[str, ArrayLike]:
    check_field_names(list(arrays), where)
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{where}: arrays have different numbers of entries: {lengths}")
    flat: dict[str, ArrayLike] = {}
    groups: dict[str, dict[str, ak.Array]] = {}
    for name, arr in arrays.items():
        if isinstance(arr, ak.Array) and arr.ndim > 1:
            if "_" not in name:
                raise InputError(f"{where}: jagged field {name!r} needs a prefix_field name (e.g. calo_e)")
            prefix, sub = name.split("_", 1)
            groups.setdefault(prefix, {})[sub] = arr
        else:
            arr = np.asarray(arr)
            if arr.dtype == np.float64 and name != "weight":
                # Physics quantities do not need more than float32; halves the files.
                arr = arr.astype(np.float32)
            flat[name] = arr
    for prefix, members in groups.items():
        if prefix in flat:
            raise InputError(f"{where}: {prefix!r} is both a field and the prefix of a jagged collection")
        counts = [ak.num(v, axis=1) for v in members.values()]
        if any(not ak.all(c == counts[0]) for c in counts[1:]):
            raise InputError(f"{where}: jagged fields {prefix}_* have different lengths per entry")
        flat[prefix] = ak.zip(members)
    return flat


class TreeWriter:
    """Stream chunks into one TTree of a new file, renamed into place only on success.

    >>> with TreeWriter("jets.root", "events") as out:  # doctest: +SKIP
    ...     for chunk in chunks:
    ...         out.extend({"jet_pt": ..., "calo_e": ...})
    """

    def __init__(self, path: str | os.PathLike, tree: str, *, compression=None) -> None:
        self.path = os.fspath(path)
        self.tree_name = tree
        self.tmp_path = f"{self.path}.tmp{os.getpid()}"
        self.compression = compression if compression is not None else uproot.ZLIB(1)
        self._file = None
        self._tree = None
        self.n_entries = 0

    def __enter__(self) -> TreeWriter:
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, exist_ok=True)
            self._file = uproot.recreate(self.tmp_path, compression=self.compression)
        except OSError as err:
            self._remove_tmp()
            raise output_error(self.path, err) from None
        return self

    def extend(self, arrays: Mapping[str, ArrayLike]) -> None:
        """Append entries; every call must give the same fields with the same types."""
        where = f"{self.path}, tree {self.tree_name!r}"
        data = _group_jagged(arrays, where)
        try:
            if self._tree is None:
                types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()}
                self._tree = self._file.mktree(self.tree_name, types)
            self._tree.extend(data)
        except OSError as err:  # a full disk: uproot writes as it goes
            raise output_error(self.path, err) from None
        self.n_entries += len(next(iter(data.values())))

    def _remove_tmp(self) -> None:
        if os.path.exists(self.tmp_path):
            os.remove(self.tmp_path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._file.close()  # flushes: a full disk can fail here too
        except OSError as err:
            self._remove_tmp()
            if exc_type is None:
                raise output_error(self.path, err) from None
            return  # the error already raised is the one to report
        if exc_type is None and self._tree is None:
            self._remove_tmp()
            raise InputError(f"{self.path}: nothing was written (no entries)")
        if exc_type is None:
            try:
                os.replace(self.tmp_path, self.path)
            except OSError as err:
                self._remove_tmp()
                raise output_error(self.path, err) from None
        else:
            self._remove_tmp()


def write_tree(path: str | os.PathLike, tree: str, arrays: Mapping[str, ArrayLike]) -> None:
    """Write ``arrays`` (name -> per-entry array) as TTree ``tree`` of a new ROOT file, atomically."""
    with TreeWriter(path, tree) as out:
        out.extend(arrays)


def write_friend(
    path: str | os.PathLike,
    tree: str,
    arrays: Mapping[str, ArrayLike],
    *,
    friend_of: tuple[str, str] | None = None,
) -> None:
    """Write per-entry results (scores) as a tree aligned entry by entry with an input tree.

    ``friend_of=(input_path, input_tree)`` checks that the number of entries
    matches, so that ``TTree::AddFriend`` pairs each score with its own entry.
    """
    if not arrays:
        raise InputError(f"{path}: no arrays to write")
    n = {len(v) for v in arrays.values()}
    if friend_of is not None:
        source = open_tree(*friend_of)
        if n != {source.num_entries}:
            raise InputError(
                f"{path}: {n.pop()} entries to write, but {friend_of[0]} tree {friend_of[1]!r} "
                f"has {source.num_entries}; a friend tree must have one entry per input entry"
            )
    write_tree(path, tree, arrays)
