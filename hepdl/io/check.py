"""Read every basket of chosen branches, to find a damaged file before a long job meets it.

uproot reads lazily: opening a file and listing its trees touches none of the data, so a
basket that no longer decompresses (a flipped bit, a bad copy) shows only when a stage
reaches it. :func:`check_tree` reads each branch chunk by chunk (memory bounded by
``step_size``) and, where a chunk fails, narrows it down to the first basket that fails to
decompress or to deserialise, and names it. Damage inside an uncompressed basket of plain
numbers can read as wrong values without any error; compressed baskets (ROOT's default)
carry a checksum or fail to decompress.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import uproot

from hepdl.errors import InputError
from hepdl.io.baskets import decompress_error, first_bad_basket, one_line
from hepdl.io.read import DEFAULT_STEP_SIZE, open_tree


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_tree` read: branches (fields of an RNTuple), baskets, entries."""

    tree: str
    kind: str
    n_branches: int
    n_baskets: int
    n_entries: int
    not_interpreted: tuple[str, ...]  # decompressed only: uproot cannot deserialise their type

    def summary(self) -> str:
        parts, unit = ("branches", "baskets") if self.kind == "TTree" else ("fields", "entry ranges")
        text = (f"check of {self.kind} {self.tree!r}: {self.n_branches} {parts}, {self.n_baskets} {unit}, "
                f"{self.n_entries} entries read: no error")
        if self.not_interpreted:
            text += (f"; decompressed only, as uproot cannot deserialise their type: "
                     f"{', '.join(self.not_interpreted)}")
        return text


def _entry_ranges(n_entries: int, n_bytes: int, step_size: int | str) -> list[tuple[int, int]]:
    """Entry ranges of about ``step_size`` (entries, or bytes such as "50 MB") of one branch's data."""
    if isinstance(step_size, int):
        step = step_size
    else:
        per_entry = max(n_bytes, 1) / max(n_entries, 1)
        step = int(uproot._util.memory_size(step_size) / per_entry)
    step = max(step, 1)
    return [(start, min(start + step, n_entries)) for start in range(0, n_entries, step)]


def _interpretable(branch) -> bool:
    return not isinstance(branch.interpretation, uproot.interpretation.identify.UnknownInterpretation)


def _ttree_branches(obj, branches: Sequence[str] | None, where: str) -> list[tuple[str, object]]:
    """``(name, branch)`` pairs: the given branches, or every branch that holds baskets."""
    if not branches:
        return [(k, b) for k, b in obj.iteritems(recursive=True) if b.num_baskets > 0]
    keys = list(obj.keys(recursive=True))
    out = []
    for name in branches:
        if name not in keys:
            close = difflib.get_close_matches(name, keys, n=3, cutoff=0.6)
            hint = f"; closest branches: {', '.join(close)}" if close else ""
            raise InputError(f"{where}: no branch {name!r}{hint}")
        out.append((name, obj[name]))
    return out


def check_tree(
    path: str | os.PathLike,
    tree: str,
    branches: Sequence[str] | None = None,
    *,
    step_size: int | str = DEFAULT_STEP_SIZE,
) -> CheckReport:
    """Read every basket of ``branches`` (default: all) of ``tree`` in ``path``, chunk by chunk.

    Raises :class:`~hepdl.errors.InputError` naming the file, tree, branch, basket and its
    entries at the first basket that fails to decompress or deserialise.
    """
    path = os.fspath(path)
    obj = open_tree(path, tree)
    where = f"{path}, tree {tree!r}"
    if not isinstance(obj, uproot.behaviors.TBranch.HasBranches):
        return _check_rntuple(obj, path, tree, branches, step_size)
    chosen = _ttree_branches(obj, branches, where)
    n_entries = int(obj.num_entries)
    skipped = []
    n_baskets = 0
    for name, branch in chosen:
        n_baskets += branch.num_baskets
        if not _interpretable(branch):  # its bytes at least must decompress
            skipped.append(name)
            for i in range(branch.num_baskets):
                found = decompress_error(name, branch, i, where)
                if found is not None:
                    raise found
            continue
        for start, stop in _entry_ranges(n_entries, branch.uncompressed_bytes, step_size):
            try:
                branch.array(entry_start=start, entry_stop=stop, library="ak", array_cache=None)
            except Exception as err:  # noqa: BLE001
                found = first_bad_basket(name, branch, start, stop, where)
                if found is not None:
                    raise found from None
                raise InputError(f"{where}: branch {name!r}, entries {start}..{stop - 1} cannot be read "
                                 f"({type(err).__name__}: {one_line(err)})") from None
    return CheckReport(tree, "TTree", len(chosen), n_baskets, n_entries, tuple(skipped))


def _check_rntuple(obj, path: str, tree: str, fields: Sequence[str] | None, step_size: int | str) -> CheckReport:
    """An RNTuple has pages in clusters, not baskets: each field is read by entry ranges."""
    where = f"{path}, RNTuple {tree!r}"
    keys = [k for k in obj.keys() if "." not in k]
    chosen = list(fields) if fields else keys
    for name in chosen:
        if name not in keys:
            close = difflib.get_close_matches(name, keys, n=3, cutoff=0.6)
            hint = f"; closest fields: {', '.join(close)}" if close else ""
            raise InputError(f"{where}: no field {name!r}{hint}")
    n = int(obj.num_entries)
    # All fields at once per range (a call per field costs ~0.1 s of metadata); field by field
    # only within a range that fails, to name the field.
    if isinstance(step_size, int):
        step = step_size
    else:
        step = max(int(obj.num_entries_for(step_size, filter_name=chosen)), 1)
    ranges = [(start, min(start + step, n)) for start in range(0, n, step)]
    for start, stop in ranges:
        try:
            obj.arrays(filter_name=chosen, entry_start=start, entry_stop=stop, array_cache=None)
            continue
        except Exception as err:  # noqa: BLE001
            failure = err
        for name in chosen:
            try:
                obj.arrays(filter_name=[name], entry_start=start, entry_stop=stop, array_cache=None)
            except Exception as err:  # noqa: BLE001
                raise InputError(f"{where}: field {name!r}, entries {start}..{stop - 1}: cannot be read, the file "
                                 f"is corrupt ({type(err).__name__}: {one_line(err)})") from None
        raise InputError(f"{where}: entries {start}..{stop - 1}: cannot be read, the file is corrupt "
                         f"({type(failure).__name__}: {one_line(failure)})")
    return CheckReport(tree, "RNTuple", len(chosen), len(ranges), n, ())
