"""HDF5 jet tables: the top-tagging reference dataset's layout (arXiv:1902.09914) read with h5py.

One row per jet, the constituents as zero-padded four-momentum columns ``E_0..E_{n-1}``,
``PX_*``, ``PY_*``, ``PZ_*``, the label in ``is_signal_new``. ``tree`` names the HDF5 group
(``"/"``: the file's top level) holding the table, stored in one of three ways:

* **pandas table** (``DataFrame.to_hdf(path, key=KEY, format="table")``, how the reference
  files are written; ``tree`` is the key, ``"table"`` there): PyTables keeps the rows in one
  compound dataset ``KEY/table`` whose fields are ``index``, ``values_block_0`` (a row of
  every float column), ``values_block_1`` (the integer ones), ... and one field per
  ``data_columns`` column; the column names of a block are in the dataset's attribute
  ``values_block_<i>_kind``.
* **pandas fixed** (``to_hdf`` without ``format``): ``KEY/block<i>_values`` (rows x columns)
  with the names in ``KEY/block<i>_items``.
* **plain h5py**: datasets in the group; a 1-D dataset ``NAME`` of one value per jet is the
  column ``NAME``; a 2-D dataset ``NAME`` of shape ``(jets, n)`` is the columns
  ``NAME_0..NAME_{n-1}`` (so ``E``, ``PX``, ``PY``, ``PZ`` of shape ``(jets, 200)`` and a 1-D
  ``is_signal_new`` is the same table as the pandas one).

The pandas layouts are read with h5py directly, not with ``pandas.read_hdf``: that needs
PyTables besides pandas, and builds a DataFrame of every column per chunk, whereas a slice of
one compound field is one contiguous read. The names pandas stores are protocol-0 pickles of
lists of strings; they are decoded opcode by opcode (:func:`_pickled_names`) without
unpickling, since unpickling a data file could run code from it.
"""

from __future__ import annotations

import pickletools
from collections.abc import Sequence

import awkward as ak
import numpy as np

from hepdl.errors import InputError
from hepdl.io.jet_table import (
    CONSTITUENT_BRANCHES,
    JET_BRANCHES,
    JetTable,
    branch_listing,
    check_finite,
    constituents_from_four_momenta,
    four_momentum_families,
)

#: where a column lives: (dataset path in the group, or compound field, column in it or None)
_Address = tuple[str, int | None]


def open_hdf5_jets(path: str, tree: str) -> TopTaggingJets:
    """Open the jet table in group ``tree`` of the HDF5 file ``path`` (see the module's docstring)."""
    return TopTaggingJets(path, _open(path), tree)


def hdf5_table_names(path: str) -> list[str]:
    """The groups of the HDF5 file ``path`` that hold a jet table (see :func:`hdf5_tables`)."""
    with _open(path) as file:
        return hdf5_tables(file)


def _open(path: str):
    try:
        import h5py
    except ImportError:
        raise InputError(f"{path}: reading HDF5 needs h5py (pip install 'hepdl[layouts]')") from None
    try:
        # registers the compression filters PyTables writes (blosc, blosc2, ...) and h5py lacks
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass  # uncompressed and zlib files still read
    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 file ({' '.join(str(err).split())})") from None
    return file


class TopTaggingJets(JetTable):
    """An HDF5 table of jets; its branches are its columns plus :data:`CONSTITUENT_BRANCHES` and
    :data:`JET_BRANCHES` computed from the ``E_i``/``PX_i``/``PY_i``/``PZ_i`` columns (those
    columns themselves are not listed as branches)."""

    def __init__(self, path: str, file, tree: str) -> None:
        self.path, self._file = path, file
        name = tree.strip("/")
        self.where = f"{path}, table {tree!r}"
        if name and (name not in file or not hasattr(file[name], "keys")):
            tables = hdf5_tables(file)
            raise InputError(f"{path}: no group {tree!r}; tables in the file: {', '.join(tables) or 'none'}"
                             " ('/' for datasets at the top level)")
        self._group = group = file[name] if name else file
        kind = _attr(group, "pandas_type")
        if kind == "frame_table":
            self._columns, self.num_entries = _pandas_table_columns(group, self.where)
        elif kind == "frame":
            self._columns, self.num_entries = _pandas_fixed_columns(group, self.where)
        else:
            self._columns, self.num_entries = _plain_columns(group, self.where)
        self._families = four_momentum_families(list(self._columns), self.where)
        family_columns = {c for cols in (self._families or {}).values() for c in cols}
        self._scalars = {c: a for c, a in self._columns.items() if c not in family_columns}
        derived = CONSTITUENT_BRANCHES + JET_BRANCHES if self._families else ()
        self._keys = branch_listing(self._scalars, derived)
        widths = {source: _dtype(group, (source, None)).itemsize for source in {s for s, _ in self._columns.values()}}
        self.bytes_per_entry = float(sum(widths[s] for s, _ in self._columns.values()))

    def keys(self) -> list[str]:
        return list(self._keys)

    def describe(self) -> list[str]:
        """One line per branch for ``hepdl inspect``: its dtype, or what it is computed from."""
        lines = [f"{c}  {_dtype(self._group, a)}" for c, a in self._scalars.items()]
        if self._families:
            n = len(self._families["E"])
            lines += [f"{b}  computed from E_i, PX_i, PY_i, PZ_i (i < {n}), zero-energy padding dropped"
                      for b in CONSTITUENT_BRANCHES + JET_BRANCHES if b not in self._scalars]
        return lines

    def read(self, branches: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray | ak.Array]:
        sources: dict[str, np.ndarray] = {}
        out: dict[str, np.ndarray | ak.Array] = {}
        for b in branches:
            if b in self._scalars:
                out[b] = self._column(b, start, stop, sources)
                check_finite(self.where, b, out[b], start)
        wanted = [b for b in branches if b not in out]
        if wanted:
            momenta = {}
            for prefix, names in self._families.items():
                momenta[prefix] = self._matrix(names, start, stop, sources)
                check_finite(self.where, prefix, momenta[prefix], start, columns=names)
            computed = constituents_from_four_momenta(momenta["PX"], momenta["PY"], momenta["PZ"], momenta["E"],
                                                      wanted)
            out |= {b: computed[b] for b in wanted}
        return out

    def _matrix(self, names: Sequence[str], start: int, stop: int, sources: dict[str, np.ndarray]) -> np.ndarray:
        """The columns ``names`` as one (rows, columns) array: one gather where they share a dataset or block."""
        where = [self._columns[n] for n in names]
        if len({s for s, _ in where}) == 1 and where[0][1] is not None:
            self._column(names[0], start, stop, sources)  # reads the block once
            data = sources[where[0][0]]
            index = np.array([i for _, i in where])
            step = index[1] - index[0] if len(index) > 1 else 1
            if step > 0 and (np.diff(index) == step).all():  # pandas interleaves E_i, PX_i, ...: one strided copy
                return np.ascontiguousarray(data.reshape(len(data), -1)[:, index[0]:index[-1] + 1:step])
            return data.reshape(len(data), -1)[:, index]
        return np.stack([self._column(c, start, stop, sources) for c in names], axis=1)

    def _column(self, name: str, start: int, stop: int, sources: dict[str, np.ndarray]) -> np.ndarray:
        source, index = self._columns[name]
        if source not in sources:  # each dataset or compound field read once per chunk
            if "/" in source:  # a field of pandas' compound dataset: its rows read whole, once
                dataset, field = source.split("/", 1)
                if dataset not in sources:
                    sources[dataset] = self._group[dataset][start:stop]
                sources[source] = sources[dataset][field]
            else:
                sources[source] = self._group[source][start:stop]
        data = sources[source]
        return data if index is None else data.reshape(len(data), -1)[:, index]


def hdf5_tables(file) -> list[str]:
    """The groups of an open HDF5 file that hold a jet table: pandas keys, and groups with datasets of their own."""
    out = ["/"] if any(_is_column(obj) for obj in file.values()) else []

    def visit(name: str, obj) -> None:
        if not hasattr(obj, "keys") or any(name.startswith(t + "/") for t in out):
            return  # a dataset, or inside a table already found (PyTables' index groups)
        if _attr(obj, "pandas_type") or any(_is_column(child) for child in obj.values()):
            out.append(name)

    file.visititems(visit)
    return out


def _is_column(obj) -> bool:
    return not hasattr(obj, "keys") and obj.dtype.names is None


def _attr(obj, name: str) -> str | None:
    value = obj.attrs.get(name)
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


def _dtype(group, address: _Address) -> np.dtype:
    source, _ = address
    if "/" in source:
        dataset, field = source.split("/", 1)
        return group[dataset].dtype[field].base
    return group[source].dtype


def _pickled_names(raw: bytes, where: str, attribute: str) -> list[str]:
    """The strings of a pickled list of strings (pandas' ``values_block_<i>_kind``), read without unpickling."""
    allowed = {"PROTO", "MARK", "LIST", "EMPTY_LIST", "APPEND", "APPENDS", "PUT", "BINPUT", "LONG_BINPUT",
               "MEMOIZE", "FRAME", "STOP", "UNICODE", "STRING", "SHORT_BINUNICODE", "BINUNICODE",
               "SHORT_BINSTRING", "BINSTRING", "GET", "BINGET"}
    names = []
    try:
        for op, arg, _ in pickletools.genops(raw):
            if op.name not in allowed:
                raise ValueError(f"opcode {op.name}")
            if isinstance(arg, str) and op.name not in ("PUT", "GET"):
                names.append(arg)
    except ValueError as err:
        raise InputError(f"{where}: attribute {attribute!r} is not a pickled list of column names ({err})") from None
    return names


def _pandas_table_columns(group, where: str) -> tuple[dict[str, _Address], int]:
    if "table" not in group:
        raise InputError(f"{where}: a pandas table without its 'table' dataset")
    table = group["table"]
    columns: dict[str, _Address] = {}
    for field in table.dtype.names:
        if field == "index":
            continue
        if field.startswith("values_block_"):
            kind = table.attrs.get(f"{field}_kind")
            if kind is None:
                raise InputError(f"{where}: no attribute '{field}_kind' naming the columns of {field!r}")
            names = _pickled_names(bytes(kind), where, f"{field}_kind")
            width = int(np.prod(table.dtype[field].shape, dtype=np.int64))
            if len(names) != width:
                raise InputError(f"{where}: {field!r} holds {width} columns, its attribute names {len(names)}")
            columns |= {n: (f"table/{field}", i) for i, n in enumerate(names)}
        else:  # a data column: a field of its own
            columns[field] = (f"table/{field}", None)
    return columns, int(table.shape[0])


def _pandas_fixed_columns(group, where: str) -> tuple[dict[str, _Address], int]:
    columns: dict[str, _Address] = {}
    n_rows = None
    i = 0
    while f"block{i}_values" in group:
        values, items = group[f"block{i}_values"], group[f"block{i}_items"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in items[()]]
        if values.ndim != 2 or values.shape[1] != len(names):
            raise InputError(f"{where}: dataset 'block{i}_values' of shape {values.shape} does not match its "
                             f"{len(names)} column names")
        n_rows = values.shape[0]
        columns |= {n: (f"block{i}_values", j) for j, n in enumerate(names)}
        i += 1
    if n_rows is None:
        raise InputError(f"{where}: a pandas frame without 'block0_values'")
    return columns, n_rows


def _plain_columns(group, where: str) -> tuple[dict[str, _Address], int]:
    columns: dict[str, _Address] = {}
    n_rows, first = None, None
    for name, obj in group.items():
        if hasattr(obj, "keys") or obj.dtype.names is not None:
            continue  # a subgroup or a compound dataset: not a column of this table
        if obj.ndim not in (1, 2):
            raise InputError(f"{where}: dataset {name!r} has shape {obj.shape}; a column is (jets,) "
                             "and a family of columns NAME_0..NAME_n-1 is (jets, n)")
        if n_rows is None:
            n_rows, first = obj.shape[0], name
        elif obj.shape[0] != n_rows:
            raise InputError(f"{where}: dataset {name!r} has {obj.shape[0]} rows, {first!r} has {n_rows}; "
                             "every column needs one row per jet")
        if obj.ndim == 1:
            columns[name] = (name, None)
        else:
            columns |= {f"{name}_{j}": (name, j) for j in range(obj.shape[1])}
    if n_rows is None:
        raise InputError(f"{where}: the group holds no datasets")
    return columns, n_rows
