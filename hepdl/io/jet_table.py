"""What every jet table shares (see :mod:`hepdl.io.layouts`): the tree-like reading interface,
chunk sizes, the check of non-finite values by column, constituents from four-momenta."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence

import awkward as ak
import numpy as np

from hepdl.errors import InputError

#: constituent branches computed from the four-momenta (jagged, padding dropped)
CONSTITUENT_BRANCHES = ("part_px", "part_py", "part_pz", "part_energy", "part_pt", "part_eta", "part_phi")
#: jet branches computed from the sum of the constituents' four-momenta
JET_BRANCHES = ("jet_pt", "jet_eta", "jet_phi", "jet_mass", "jet_energy", "jet_nparticles")


class JetTable:
    """A table of jets with the part of an uproot tree's interface that hepdl reads through.

    Subclasses set ``path``, ``where`` (how errors name the table), ``num_entries`` and
    ``bytes_per_entry``, and implement :meth:`keys` and :meth:`read` (rows ``[start, stop)``
    of the asked branches, as ``{branch: array}``).
    """

    path: str
    where: str
    num_entries: int
    bytes_per_entry: float

    def keys(self) -> list[str]:
        raise NotImplementedError

    def describe(self) -> list[str]:
        """``"branch  what it is"`` per branch, for ``hepdl inspect``."""
        raise NotImplementedError

    def read(self, branches: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray | ak.Array]:
        raise NotImplementedError

    def iterate(self, branches: Sequence[str], *, step_size: int | str = "50 MB",
                library: str = "ak") -> Iterator[ak.Array]:
        """Yield the rows of ``branches`` chunk by chunk (``step_size``: rows, or a size such as ``"50 MB"``)."""
        if library != "ak":
            raise ValueError(f"a jet table yields awkward arrays, not {library!r}")
        known = set(self.keys())
        missing = [b for b in branches if b not in known]
        if missing:
            raise InputError(f"{self.where}: no column {missing[0]!r}")
        rows = step_rows(step_size, self.bytes_per_entry)
        for start in range(0, self.num_entries, rows):
            stop = min(start + rows, self.num_entries)
            arrays = self.read(list(branches), start, stop)
            yield ak.zip({b: arrays[b] for b in branches}, depth_limit=1)


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kMGT]?i?B)\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
          "tib": 1 << 40}


def step_rows(step_size: int | str, bytes_per_entry: float) -> int:
    """Rows per chunk for ``step_size``: a row count, or a size (``"50 MB"``) as uproot takes it."""
    if isinstance(step_size, (int, np.integer)):
        if step_size < 1:
            raise InputError(f"step_size must be >= 1 entry, not {step_size}")
        return int(step_size)
    match = _SIZE.match(str(step_size))
    if not match:
        raise InputError(f"step_size {step_size!r} is neither a number of entries nor a size such as '50 MB'")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    return max(1, int(size // max(bytes_per_entry, 1.0)))


def check_finite(where: str, name: str, values: np.ndarray, start: int, columns: Sequence[str] | None = None) -> None:
    """Raise naming the column and the first entry where ``values`` (rows, or rows x columns) is NaN or infinite.

    Checked on the file's own columns, so that the message names the column at fault rather
    than a field computed from it. ``columns`` names the columns of a 2-D ``values``.
    """
    if values.dtype.kind != "f":
        return
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    row = int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
    if columns is not None and values.ndim == 2:
        name = columns[int(np.flatnonzero(bad[row])[0])]
    raise InputError(f"{where}: column {name!r} has NaN or infinite values (first: entry {start + row})")


def constituents_from_four_momenta(px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray,
                                   wanted: Collection[str] | None = None) -> dict[str, ak.Array | np.ndarray]:
    """Constituents and jet kinematics from zero-padded ``(jets, slots)`` four-momentum arrays.

    A slot with zero energy is padding and is dropped (wherever it stands); the jet is the
    four-momentum sum of the rest. Returns those of :data:`CONSTITUENT_BRANCHES` (jagged) and
    :data:`JET_BRANCHES` (one value per jet) in ``wanted`` (None: all); the jet mass is signed
    as ROOT's ``M()`` (a negative mass squared from rounding gives ``-sqrt(-m2)``, not NaN).
    """
    import vector

    wanted = set(CONSTITUENT_BRANCHES + JET_BRANCHES if wanted is None else wanted)
    real = energy != 0
    counts = real.sum(axis=1)
    out: dict[str, ak.Array | np.ndarray] = {}
    if wanted & set(CONSTITUENT_BRANCHES):
        flat = vector.array({"px": px[real], "py": py[real], "pz": pz[real], "E": energy[real]})
        names = {"part_px": "px", "part_py": "py", "part_pz": "pz", "part_energy": "E", "part_pt": "pt",
                 "part_eta": "eta", "part_phi": "phi"}
        out |= {b: ak.unflatten(np.asarray(getattr(flat, names[b])), counts) for b in CONSTITUENT_BRANCHES
                if b in wanted}
    if wanted & set(JET_BRANCHES):
        jet = vector.array({"px": px.sum(axis=1), "py": py.sum(axis=1), "pz": pz.sum(axis=1), "E": energy.sum(axis=1)})
        names = {"jet_pt": "pt", "jet_eta": "eta", "jet_phi": "phi", "jet_mass": "mass", "jet_energy": "E"}
        out |= {b: np.asarray(getattr(jet, names[b])) for b in names if b in wanted}
        if "jet_nparticles" in wanted:
            out["jet_nparticles"] = counts.astype(np.int32)
    return out


def four_momentum_families(columns: Sequence[str], where: str) -> dict[str, list[str]] | None:
    """The top-tagging layout's ``E_i``, ``PX_i``, ``PY_i``, ``PZ_i`` columns, each family in slot order.

    None if the table has none of them; an error naming the first missing column if some are
    there and others are not (every slot needs all four).
    """
    slots: dict[str, dict[int, str]] = {p: {} for p in ("E", "PX", "PY", "PZ")}
    for c in columns:
        m = _FAMILY.match(c)
        if m:
            slots[m.group(1)][int(m.group(2))] = c
    if not any(slots.values()):
        return None
    n = max(max(s) for s in slots.values() if s) + 1
    for prefix, found in slots.items():
        for i in range(n):
            if i not in found:
                raise InputError(f"{where}: no column '{prefix}_{i}' (the four-momentum columns E_i, PX_i, PY_i, "
                                 f"PZ_i must all be there for i = 0..{n - 1})")
    return {p: [found[i] for i in range(n)] for p, found in slots.items()}


_FAMILY = re.compile(r"^(E|PX|PY|PZ)_(\d+)$")


def branch_listing(columns: Mapping[str, object], derived: Sequence[str]) -> list[str]:
    """The table's branches: its own columns, then the computed ones it does not have itself."""
    return list(columns) + [d for d in derived if d not in columns]
