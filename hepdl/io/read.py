"""Read TTrees and RNTuples into awkward arrays under logical field names.

A *field spec* maps the names hepdl uses (``calo_e``, ``label``, ...) onto the
branches of a user's file. It is one of

* a mapping ``{logical: branch}``; a value that names a NanoAOD collection
  (``FatJet``: a counter ``nFatJet`` and branches ``FatJet_*``) becomes a
  jagged array of records with one field per ``FatJet_*`` branch;
* a sequence of names, read as themselves;
* a single collection name: the result's fields are that collection's.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import awkward as ak
import numpy as np
import uproot

from hepdl.errors import InputError
from hepdl.io.baskets import locate_damage, one_line
from hepdl.io.layouts import is_layout_file, open_layout

FieldSpec = Mapping[str, str] | Sequence[str] | str
NonFinitePolicy = Literal["error", "drop", "keep"]

#: Default chunk size: large enough that per-chunk overhead vanishes against
#: decompression, small enough that a chunk of jagged calorimeter content stays
#: well under a gigabyte in memory.
DEFAULT_STEP_SIZE = "50 MB"

_TREE_CLASSES = ("TTree", "ROOT::RNTuple")


@dataclass(frozen=True)
class ChunkSource:
    """Where a chunk came from: entries ``[entry_start, entry_stop)`` of ``tree`` in ``path``.

    ``n_selected`` is the number of entries in the chunk after the cut; it equals
    ``entry_stop - entry_start`` when there is no cut and nothing was dropped.
    """

    path: str
    tree: str
    entry_start: int
    entry_stop: int
    n_selected: int


def expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Expand glob patterns and check that every file exists, keeping the given order."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if glob.has_magic(p):
            matches = sorted(glob.glob(p))
            if not matches:
                raise InputError(f"{p}: no file matches this pattern")
            out.extend(matches)
        elif not os.path.exists(p):
            raise InputError(f"{p}: no such file")
        elif os.path.isdir(p):
            raise InputError(f"{p}: is a directory, not a ROOT file")
        else:
            out.append(p)
    if not out:
        raise InputError("no input files given")
    return out


_HEADER = struct.Struct(">4siii")  # magic 'root', fVersion, fBEGIN, fEND (32-bit)


def check_root_header(path: str) -> int:
    """Check ROOT's file header and that the file is as long as the header says; returns fEND.

    ROOT writes the file's end (``fEND``) into the header when it closes the file, so a file
    shorter than that was cut off (an interrupted copy or transfer). uproot reads lazily and
    would only fail later, at the first missing basket. Files larger than 2 GB (``fVersion``
    >= 1000000) store ``fEND`` as a 64-bit integer.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(_HEADER.size + 4)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not a ROOT file")
    if head[:4] != b"root":
        raise InputError(f"{path}: not a ROOT file (it does not start with ROOT's signature)")
    if len(head) < _HEADER.size + 4:
        raise InputError(f"{path}: truncated ROOT file: {size} bytes, shorter than ROOT's file header")
    _, version, _, end = _HEADER.unpack_from(head)
    if version >= 1_000_000:
        end = struct.unpack_from(">q", head, 12)[0]
    if size < end:
        raise InputError(
            f"{path}: truncated ROOT file: its header says it is {end} bytes long, but it has {size} "
            f"bytes ({size / end:.0%}); copy it again from its source"
        )
    return end


def open_root_file(path: str):
    """Open a ROOT file and list its objects, or raise one clear :class:`InputError`.

    Returns the uproot directory and its ``{name: class}`` listing.
    """
    check_root_header(path)
    try:
        file = uproot.open(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as err:  # uproot raises ValueError, OSError, struct.error, ... on bad bytes
        if "not a ROOT file" in str(err):
            raise InputError(f"{path}: not a ROOT file") from None
        raise InputError(f"{path}: cannot be opened as a ROOT file, truncated or corrupt ({one_line(err)})") from None
    try:
        classes = file.classnames()
    except Exception as err:
        raise InputError(f"{path}: the file's directory cannot be read, truncated or corrupt ({one_line(err)})") from None
    return file, classes


def tree_names(path: str) -> list[str]:
    """The names of the TTrees and RNTuples in ``path`` (sorted)."""
    _, classes = open_root_file(path)
    return sorted({k.split(";")[0] for k, c in classes.items() if c in _TREE_CLASSES})


def open_tree(path: str, tree: str):
    """Open ``tree`` (a TTree or RNTuple) in ``path``, or raise one clear :class:`InputError`.

    An HDF5 or Parquet jet table (by suffix) opens as a :class:`hepdl.io.layouts.JetTable`.
    """
    if is_layout_file(path):
        return open_layout(path, tree)
    file, classes = open_root_file(path)
    trees = sorted({k.split(";")[0] for k, c in classes.items() if c in _TREE_CLASSES})
    if tree not in trees:
        hint = f"trees in the file: {', '.join(trees)}" if trees else "the file holds no TTree or RNTuple"
        close = difflib.get_close_matches(tree, trees, n=1)
        if close:
            hint = f"did you mean {close[0]!r}? ({hint})"
        raise InputError(f"{path}: no tree {tree!r}; {hint}")
    try:
        return file[tree]
    except Exception as err:
        raise InputError(f"{path}: tree {tree!r} cannot be read, truncated or corrupt ({one_line(err)})") from None


@dataclass(frozen=True)
class _ReadPlan:
    """Which branches to read from one tree and how they become logical fields."""

    branches: tuple[str, ...]
    plain: dict[str, str]  # logical -> branch
    collections: dict[str, dict[str, str]]  # logical -> {record field -> branch}
    flatten_collection: str | None  # a single-collection spec: its record fields are the result's


def _normalise_spec(fields: FieldSpec) -> tuple[dict[str, str], str | None]:
    if isinstance(fields, str):
        return {fields: fields}, fields
    if isinstance(fields, Mapping):
        return {str(k): str(v) for k, v in fields.items()}, None
    return {str(f): str(f) for f in fields}, None


def _plan(fields: FieldSpec, keys: Sequence[str], where: str) -> _ReadPlan:
    spec, flatten = _normalise_spec(fields)
    if not spec:
        raise InputError(f"{where}: no fields requested")
    key_set = set(keys)
    plain: dict[str, str] = {}
    collections: dict[str, dict[str, str]] = {}
    branches: list[str] = []
    for logical, branch in spec.items():
        if branch in key_set and flatten is None:
            plain[logical] = branch
            branches.append(branch)
            continue
        prefix = branch + "_"
        members = {k[len(prefix):]: k for k in keys if k.startswith(prefix) and "." not in k}
        if members:
            collections[logical] = members
            branches.extend(members.values())
            continue
        close = difflib.get_close_matches(branch, keys, n=3, cutoff=0.6)
        hint = f"; closest branches: {', '.join(close)}" if close else ""
        raise InputError(f"{where}: no branch {branch!r} (for field {logical!r}){hint}")
    return _ReadPlan(tuple(dict.fromkeys(branches)), plain, collections, flatten)


def _assemble(raw: ak.Array, plan: _ReadPlan, where: str) -> ak.Array:
    """Rename branches to logical fields and zip collections; checks jagged counts agree."""
    out: dict[str, ak.Array] = {logical: raw[branch] for logical, branch in plan.plain.items()}
    for logical, members in plan.collections.items():
        parts = {name: raw[branch] for name, branch in members.items()}
        _check_counts(parts, where, names={k: _branch_and_field(b, f"{logical}.{k}") for k, b in members.items()})
        out[logical] = ak.zip(parts)
    if plan.flatten_collection is not None:
        return out[plan.flatten_collection]
    _check_prefix_groups(out, plan, where)
    return ak.zip(out, depth_limit=1)


def _branch_and_field(branch: str, logical: str) -> str:
    return repr(branch) if branch == logical else f"{branch!r} (field {logical!r})"


def _check_counts(parts: Mapping[str, ak.Array], where: str, names: Mapping[str, str]) -> None:
    """``names`` says how to call each part in the message (branch, and field where it differs)."""
    jagged = {k: v for k, v in parts.items() if v.ndim > 1}
    if len(jagged) < 2:
        return
    items = iter(jagged.items())
    first_name, first = next(items)
    first_counts = ak.num(first, axis=1)
    for name, arr in items:
        bad = np.flatnonzero(ak.to_numpy(ak.num(arr, axis=1) != first_counts))
        if bad.size:
            raise InputError(
                f"{where}: jagged branches {names[first_name]} and {names[name]} have different "
                f"lengths in {bad.size} entries (first: chunk entry {bad[0]}); they must describe the "
                "same objects"
            )


def _check_prefix_groups(out: Mapping[str, ak.Array], plan: _ReadPlan, where: str) -> None:
    # Logical fields that share a prefix (calo_eta, calo_phi, calo_e) describe the same
    # objects, so a user's mapping that pairs branches of different collections is an error.
    groups: dict[str, dict[str, ak.Array]] = {}
    for logical, arr in out.items():
        if "_" in logical and logical in plan.plain and arr.ndim > 1:
            groups.setdefault(logical.split("_", 1)[0], {})[logical] = arr
    for group in groups.values():
        _check_counts(group, where, names={k: _branch_and_field(plan.plain[k], k) for k in group})


def _finite_mask(arr: ak.Array) -> np.ndarray | None:
    """Per-entry True where every floating value of ``arr`` is finite; None if nothing is floating."""
    masks = []
    for leaf in _float_leaves(arr):
        ok = np.isfinite(leaf)
        while ok.ndim > 1:
            ok = ak.all(ok, axis=-1)
        masks.append(ak.to_numpy(ok))
    if not masks:
        return None
    return np.logical_and.reduce(masks)


def _float_leaves(arr: ak.Array):
    if arr.fields:
        for f in arr.fields:
            yield from _float_leaves(arr[f])
        return
    layout_type = arr.type.content
    while hasattr(layout_type, "content"):
        layout_type = layout_type.content
    if getattr(layout_type, "primitive", "").startswith("float"):
        yield arr


def describe_branch(branch: str, logical: str) -> str:
    """How errors name what was read: the file's branch, and the logical field where it differs."""
    return f"branch {_branch_and_field(branch, logical)}"


_FIELD = re.compile(r"\bfield '(\w+)'")


def name_branches(message: str, mapping: Mapping[str, str]) -> str:
    """``field 'x'`` in a message from a layer that sees only logical fields, with x's branch added."""
    return _FIELD.sub(lambda m: describe_branch(mapping.get(m.group(1), m.group(1)), m.group(1)), message)


def _branch_arrays(chunk: ak.Array, plan: _ReadPlan) -> Iterator[tuple[str, ak.Array]]:
    """``(description, array)`` per branch read, so that a check names the branch and its field."""
    if plan.flatten_collection is not None:
        members = plan.collections[plan.flatten_collection]
        for name, branch in members.items():
            yield describe_branch(branch, f"{plan.flatten_collection}.{name}"), chunk[name]
        return
    for logical, branch in plan.plain.items():
        yield describe_branch(branch, logical), chunk[logical]
    for logical, members in plan.collections.items():
        for name, branch in members.items():
            yield describe_branch(branch, f"{logical}.{name}"), chunk[logical][name]


def _nonfinite_kinds(values: ak.Array) -> str:
    flat = np.asarray(ak.to_numpy(ak.flatten(values, axis=None)) if values.ndim > 1 or values.fields
                      else ak.to_numpy(values), dtype=np.float64)
    kinds = [k for k, hit in (("NaN", np.isnan(flat).any()), ("+inf", np.isposinf(flat).any()),
                              ("-inf", np.isneginf(flat).any())) if hit]
    return " and ".join(kinds)


def _apply_nonfinite(chunk: ak.Array, plan: _ReadPlan, policy: NonFinitePolicy, where: str,
                     entry_start: int) -> ak.Array:
    if policy == "keep" or len(chunk) == 0:
        return chunk
    masks = {name: m for name, arr in _branch_arrays(chunk, plan) if (m := _finite_mask(arr)) is not None}
    if not masks or all(m.all() for m in masks.values()):
        return chunk
    if policy == "error":
        # the branch with the earliest bad entry: "first: entry N" is then the file's first one
        name, mask = min(((f, m) for f, m in masks.items() if not m.all()), key=lambda fm: np.argmin(fm[1]))
        bad = np.flatnonzero(~mask)
        arr = dict(_branch_arrays(chunk[bad[:1]], plan))[name]
        raise InputError(
            f"{where}: {name} has NaN or infinite values in {bad.size} entries "
            f"(first: entry {entry_start + bad[0]}, {_nonfinite_kinds(arr)}); set nonfinite='drop' to "
            "skip such entries or 'keep' to pass them on"
        )
    return chunk[np.logical_and.reduce(list(masks.values()))]


def apply_cut(chunk: ak.Array, cut: str | None, where: str) -> ak.Array:
    """Entries of ``chunk`` passing ``cut``, an expression in its field names; ``where`` names the source in errors."""
    if cut is None:
        return chunk
    namespace = {f: chunk[f] for f in chunk.fields} if chunk.fields else {}
    namespace.update(np=np, ak=ak, abs=np.abs)
    try:
        # The cut is the user's own config text, written in logical field names.
        mask = eval(compile(cut, "<cut>", "eval"), {"__builtins__": {}}, namespace)  # noqa: S307
    except NameError as err:
        raise InputError(f"{where}: cut {cut!r} uses an unknown name ({one_line(err)}); fields: {chunk.fields}") from None
    except Exception as err:
        raise InputError(f"{where}: cut {cut!r} cannot be evaluated ({one_line(err)})") from None
    mask = ak.Array(mask) if not isinstance(mask, np.ndarray) else mask
    if getattr(mask, "ndim", 0) != 1 or len(mask) != len(chunk):
        raise InputError(f"{where}: cut {cut!r} must give one boolean per entry")
    return chunk[mask]


def iterate_events(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    tree: str,
    fields: FieldSpec,
    *,
    cut: str | None = None,
    step_size: int | str = DEFAULT_STEP_SIZE,
    nonfinite: NonFinitePolicy = "error",
    with_source: bool = False,
) -> Iterator[ak.Array] | Iterator[tuple[ak.Array, ChunkSource]]:
    """Yield the events of ``tree`` in ``paths`` chunk by chunk, under logical field names.

    Memory stays bounded by ``step_size`` (entries, or a size such as ``"50 MB"``),
    whatever the number of files or entries. ``cut`` is a Python expression in the
    logical names (``"(jet_pt > 250) & (abs(jet_eta) < 2)"``). Entries with NaN or
    infinite values raise by default (``nonfinite="error"``); ``"drop"`` skips them.
    With ``with_source=True`` each chunk comes with its :class:`ChunkSource`.
    Raises :class:`~hepdl.errors.InputError` if the cut selects no entry at all.
    """
    if nonfinite not in ("error", "drop", "keep"):
        raise InputError(f"nonfinite must be 'error', 'drop' or 'keep', not {nonfinite!r}")
    files = expand_paths(paths)
    n_total = 0
    for path in files:
        obj = open_tree(path, tree)
        where = f"{path}, tree {tree!r}"
        plan = _plan(fields, list(obj.keys()), where)
        start = 0
        try:
            for raw in obj.iterate(list(plan.branches), step_size=step_size, library="ak"):
                stop = start + len(raw)
                chunk = _assemble(raw, plan, where)
                chunk = _apply_nonfinite(chunk, plan, nonfinite, where, start)
                chunk = apply_cut(chunk, cut, where)
                n_total += len(chunk)
                if with_source:
                    yield chunk, ChunkSource(path, tree, start, stop, len(chunk))
                else:
                    yield chunk
                start = stop
        except InputError:
            raise
        except Exception as err:
            found = locate_damage(obj, plan.branches, start, int(obj.num_entries), where)
            if found is not None:
                raise found from None
            raise InputError(
                f"{where}: reading entries from {start} failed, the file is truncated or corrupt, "
                f"or a branch has a type uproot cannot read ({type(err).__name__}: {one_line(err)})"
            ) from None
    if n_total == 0:
        what = f"cut {cut!r} selects" if cut else "the input has"
        raise InputError(f"tree {tree!r} in {', '.join(files)}: {what} no entries")


def read_events(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    tree: str,
    fields: FieldSpec,
    *,
    cut: str | None = None,
    step_size: int | str = DEFAULT_STEP_SIZE,
    nonfinite: NonFinitePolicy = "error",
) -> ak.Array:
    """Read every selected entry of ``tree`` in ``paths`` into one awkward array.

    Same arguments as :func:`iterate_events`; use that one when the input may not fit in memory.
    """
    chunks = list(iterate_events(paths, tree, fields, cut=cut, step_size=step_size, nonfinite=nonfinite))
    return chunks[0] if len(chunks) == 1 else ak.concatenate(chunks)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_field_names(names: Sequence[str], what: str) -> None:
    """Raise if a name cannot be a ROOT branch name (used before writing)."""
    for n in names:
        if not _NAME.match(n):
            raise InputError(f"{what}: {n!r} is not a valid branch name")
