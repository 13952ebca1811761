"""Prepared datasets: one shard directory of memory-mappable ``.npy`` arrays per input file.

See the contract in the project docs ("hepdl-prepared-v1"): ``meta.json`` holds shapes,
the representation spec, the field mapping, provenance and the split settings. A
shard is written chunk by chunk into preallocated memory maps inside a temporary
directory, which replaces the output only when complete.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from numba import njit

from hepdl.atomic import atomic_dir
from hepdl.background import read_ahead
from hepdl.errors import ConfigError, InputError
from hepdl.io.read import DEFAULT_STEP_SIZE, iterate_events, name_branches, open_tree
from hepdl.represent.representations import (
    feature_names,
    half_precision_arrays,
    representation,
    resolve_spec,
    sparse_arrays,
    spec_fields,
)
from hepdl.represent.split import DEFAULT_FRACTIONS, assign_split, check_fractions
from hepdl.result_files import read_json
from hepdl.tasks import get_task

FORMAT = "hepdl-prepared-v1"
#: how the large arrays are stored: as computed, in half precision, or as their non-zero elements
#: (half precision) for the mostly empty images and pixel maps
STORAGE = ("float32", "float16", "sparse")


class SparseWriter:
    """An ``(N, ...)`` array stored as its non-zero elements, row by row (CSR): ``NAME.indptr.npy``
    (int64, N + 1: row i's elements are ``indptr[i]:indptr[i + 1]``), ``NAME.index.npy`` (each
    element's flat position in its row, uint16 where a row has at most 65536 elements) and
    ``NAME.value.npy`` (its value, in the rows' own dtype). Rows arrive in order, block by block.

    A jet image has ~150 of its 3072 pixels lit and a neutrino pixel map ~150 of 16000: stored so,
    a jet takes ~1 kB instead of 13 kB and an event ~0.6 kB instead of 64 kB.
    """

    layout = "sparse"

    def __init__(self, directory: str, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.dtype, self.shape = np.dtype(dtype), shape
        self.index_dtype = np.dtype(np.uint16 if int(np.prod(shape[1:])) <= 1 << 16 else np.uint32)
        self._stem = os.path.join(directory, name)
        self.indptr = np.zeros(shape[0] + 1, np.int64)
        self._index = open(f"{self._stem}.index.raw", "wb")  # noqa: SIM115 -- closed in close()
        self._value = open(f"{self._stem}.value.raw", "wb")  # noqa: SIM115 -- closed in close()
        self.nnz, self._next = 0, 0

    def write_rows(self, first: int, rows: np.ndarray) -> None:
        if first != self._next or rows.dtype != self.dtype or rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"rows {rows.dtype}{rows.shape} at {first} do not continue {self.dtype}{self.shape}")
        flat = rows.reshape(len(rows), -1)
        row, position = np.nonzero(flat)
        self.indptr[first + 1:first + 1 + len(rows)] = self.nnz + np.cumsum(np.bincount(row, minlength=len(rows)))
        self._index.write(position.astype(self.index_dtype).tobytes())
        self._value.write(np.ascontiguousarray(flat[row, position]).tobytes())
        self.nnz += len(row)
        self._next = first + len(rows)

    def discard(self) -> None:
        """Close the files without finishing them (the shard is being abandoned): a full disk
        must not keep them open, holding the space, nor stop the others being closed."""
        for f in (self._index, self._value):
            with contextlib.suppress(OSError):
                f.close()

    def close(self) -> None:
        if self._index.closed:
            return
        self._index.close()
        self._value.close()
        np.save(f"{self._stem}.indptr.npy", self.indptr)
        for part, dtype in (("index", self.index_dtype), ("value", self.dtype)):
            raw = f"{self._stem}.{part}.raw"
            with open(f"{self._stem}.{part}.npy", "wb") as out, open(raw, "rb") as src:
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (self.nnz,)}
                np.lib.format.write_array_header_1_0(out, header)
                shutil.copyfileobj(src, out, 1 << 20)
            os.remove(raw)

    def describe(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": str(self.dtype), "layout": self.layout, "nnz": int(self.nnz),
                "index_dtype": str(self.index_dtype)}


class SparseRows:
    """A sparse shard array (see :class:`SparseWriter`) read back as dense rows: ``a[i]``, ``a[lo:hi]``,
    ``a[indices]`` give the rows with their zeros, gathered and scattered in whole arrays."""

    def __init__(self, shard_dir: str, name: str, entry: Mapping[str, Any]) -> None:
        stem = os.path.join(shard_dir, name)
        self.indptr = np.load(f"{stem}.indptr.npy", mmap_mode="r")
        self.index = np.load(f"{stem}.index.npy", mmap_mode="r")
        self.value = np.load(f"{stem}.value.npy", mmap_mode="r")
        self.shape, self.dtype = tuple(entry["shape"]), np.dtype(entry["dtype"])
        if len(self.indptr) != self.shape[0] + 1 or len(self.index) != len(self.value) or int(self.indptr[-1]) != len(self.value):
            raise InputError(f"{stem}.*.npy: the sparse array's parts disagree with each other or with meta.json")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            rows = np.arange(*key.indices(len(self)))
        elif np.ndim(key) == 0:
            return self[np.array([int(key)])][0]
        else:
            rows = np.asarray(key, dtype=np.int64)
        start, stop = np.asarray(self.indptr[rows]), np.asarray(self.indptr[rows + 1])
        counts = stop - start
        # every element of the asked rows: the runs start..stop laid end to end
        elements = np.repeat(start - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        out = np.zeros((len(rows), int(np.prod(self.shape[1:]))), self.dtype)
        out[np.repeat(np.arange(len(rows)), counts), np.asarray(self.index[elements], np.int64)] = self.value[elements]
        return out.reshape(len(rows), *self.shape[1:])

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        whole = self[slice(None)]
        return whole if dtype is None else whole.astype(dtype)


class _NpyWriter:
    """A ``.npy`` file of known shape filled by rows at any offset, with plain writes.

    Sequential ``write`` calls into the preallocated file cost about half of filling a
    memory map, which takes a page fault per 4 kB.
    """

    def __init__(self, path: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.dtype, self.shape = np.dtype(dtype), shape
        self._row_bytes = self.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        self._file = open(path, "wb+")  # noqa: SIM115 -- closed in close()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._file, header)
        self._data_start = self._file.tell()
        self._file.truncate(self._data_start + self._row_bytes * shape[0])

    def write_rows(self, first: int, rows: np.ndarray) -> None:
        if rows.dtype != self.dtype or rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"rows {rows.dtype}{rows.shape} do not match {self.dtype}{self.shape}")
        self._file.seek(self._data_start + first * self._row_bytes)
        self._file.write(memoryview(np.ascontiguousarray(rows)).cast("B"))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def discard(self) -> None:
        """Close without reporting a failed flush: the shard is being abandoned."""
        with contextlib.suppress(OSError):
            self._file.close()

    def describe(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": str(self.dtype)}


@njit(cache=True, nogil=True)
def _float32_bits_all_finite(bits: np.ndarray) -> bool:
    # A float32 is NaN or infinite exactly when its 8 exponent bits are all set; adding one
    # unit of the exponent's last bit then carries into the sign bit. Integer ORs vectorise,
    # so this is one pass at memory speed (max and min of the floats are two slower ones).
    acc = np.uint32(0)
    for i in range(bits.size):
        acc |= (bits[i] & np.uint32(0x7F800000)) + np.uint32(0x00800000)
    return (acc & np.uint32(0x80000000)) == 0


def _all_finite(a: np.ndarray) -> bool:
    if a.dtype == np.float32 and a.flags.c_contiguous:
        return bool(_float32_bits_all_finite(a.reshape(-1).view(np.uint32)))
    # The extremes are finite exactly when every value is (max/min propagate NaN).
    return bool(np.isfinite(a.max()) and np.isfinite(a.min()))


def _provenance(path: str) -> dict[str, Any]:
    st = os.stat(path)
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime": st.st_mtime, "sha256_first_mb": head}


def _field_mapping(spec: Mapping[str, Any], fields: Mapping[str, str] | None, keys: Sequence[str], where: str) -> dict[str, str]:
    """Logical -> branch mapping: identity by default; optional fields absent from the file are dropped."""
    required, optional = spec_fields(spec)
    user = dict(fields or {})
    unknown = sorted(set(user) - set(required) - set(optional))
    if unknown:
        raise ConfigError(f"field mapping names unknown logical fields {unknown}; known: {list(required + optional)}")
    mapping = {f: user.get(f, f) for f in required}
    key_set = set(keys)
    for f in optional:
        branch = user.get(f, f)
        if branch in key_set:
            mapping[f] = branch
        elif f in user:
            raise InputError(f"{where}: no branch {branch!r} (for field {f!r})")
    return mapping


def prepare_file(
    task: str,
    path: str,
    output: str,
    *,
    tree: str = "events",
    fields: Mapping[str, str] | None = None,
    spec: Mapping[str, Any] | None = None,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    step_size: int | str = DEFAULT_STEP_SIZE,
    domain: str | None = None,
    progress: bool = False,
    block_size: int = 2048,
    threads: int = 1,
    storage: str = "float32",
) -> dict[str, Any]:
    """Write the prepared shard of one ROOT file to the directory ``output``; return its meta.

    ``storage="float16"`` keeps the large arrays that a representation allows (images, pixel
    maps, track sequences) in half precision: half the disk and read bandwidth per entry, the
    loader expanding them to float32 on the fly; tabular arrays stay float32. ``"sparse"`` keeps
    the images and pixel maps as their non-zero pixels (half precision, :class:`SparseWriter`):
    about a twelfth of the disk per jet, the loader filling in the zeros.

    ``spec`` overrides the task's default representation settings (nested keys);
    ``fields`` maps logical field names onto the file's branches. Memory is bounded by
    ``step_size``. The shard appears atomically: a failure leaves no ``output`` behind
    (and an older ``output`` untouched). ``threads`` > 1 reads the next chunk and writes
    the last block in background threads and computes N-subjettiness on ``threads``
    threads alongside the images; the shard is byte-identical whatever it is.
    """
    if int(threads) < 1:
        raise ConfigError(f"threads must be >= 1, not {threads}")
    threads = int(threads)
    spec = resolve_spec(task, spec)
    fractions = check_fractions(fractions)
    if domain not in (None, "sim", "data"):
        raise ConfigError(f"domain must be 'sim' or 'data', not {domain!r}")
    if storage not in STORAGE:
        raise ConfigError(f"storage must be one of {list(STORAGE)}, not {storage!r}")
    half = set(half_precision_arrays(spec)) if storage != "float32" else set()
    sparse = set(sparse_arrays(spec)) if storage == "sparse" else set()
    obj = open_tree(path, tree)
    where = f"{path}, tree {tree!r}"
    mapping = _field_mapping(spec, fields, list(obj.keys()), where)
    n_entries = int(obj.num_entries)
    if n_entries == 0:
        raise InputError(f"{where}: the tree has no entries")
    source = os.path.basename(path)

    with atomic_dir(output) as tmp:
        arrays: dict[str, _NpyWriter] = {}
        bar = None
        # One writer thread (a file is written by one thread only); the main thread waits for a
        # block's writes before handing it the next, so at most one block waits in memory.
        writer = ThreadPoolExecutor(1, thread_name_prefix="hepdl-write") if threads > 1 else None
        writes: list[Future] = []
        chunks = iterate_events(path, tree, mapping, step_size=step_size, with_source=True)
        if threads > 1:
            chunks = read_ahead(chunks)
        try:
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=n_entries, unit="entry", desc=f"prepare {source}", leave=False)
            filled = 0
            for chunk, where_from in chunks:
                if len(chunk) != where_from.entry_stop - where_from.entry_start:
                    raise InputError(f"{where}: entries were dropped while reading; prepare needs every entry")
                # Blocks of a few thousand entries keep the flat per-constituent arrays in cache;
                # a 50 MB chunk in one go runs ~2x slower. (A loop over blocks, not entries.)
                for lo in range(0, len(chunk), block_size):
                    block = chunk[lo:lo + block_size]
                    first = where_from.entry_start + lo
                    try:
                        rep = representation(block, spec, threads=threads)
                    except InputError as err:  # it sees logical fields only: add the file, entries, branch
                        raise InputError(f"{where}, entries {first}..{first + len(block) - 1}: "
                                         f"{name_branches(str(err), mapping)}") from None
                    with np.errstate(over="ignore"):  # an overflow gives inf, named by the check below
                        rep |= {name: rep[name].astype(np.float16) for name in half if name in rep}
                    entries = np.arange(first, first + len(block), dtype=np.int64)
                    rep["split"] = assign_split(source, entries, seed, fractions)
                    if not arrays:
                        for name, a in rep.items():
                            shape = (n_entries,) + a.shape[1:]
                            arrays[name] = (SparseWriter(tmp, name, a.dtype, shape) if name in sparse else
                                            _NpyWriter(os.path.join(tmp, f"{name}.npy"), a.dtype, shape))
                    for name, a in rep.items():
                        if a.dtype.kind == "f" and a.size and not _all_finite(a):
                            overflow = f" (beyond float16's range: prepare with storage float32, not {storage})" if name in half else ""
                            raise InputError(
                                f"{where}: non-finite values in the {name!r} representation (entries "
                                f"{entries[0]}..{entries[-1]}){overflow}"
                            )
                    for w in writes:
                        w.result()
                    writes = []
                    for name, a in rep.items():
                        if writer is None:
                            arrays[name].write_rows(first, a)
                        else:
                            writes.append(writer.submit(arrays[name].write_rows, first, a))
                filled += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            for w in writes:
                w.result()
            if filled != n_entries:
                raise InputError(f"{where}: read {filled} entries, the tree reports {n_entries}")
            meta = {
                "format": FORMAT,
                "task": task,
                "n_entries": n_entries,
                "arrays": {name: a.describe() for name, a in arrays.items()},
                "feature_names": feature_names(spec),
                "targets": get_task(task).targets.to_meta(),
                "spec": spec,
                "storage": storage,
                "fields": mapping,
                "source": {"tree": tree, "entries": n_entries, "domain": domain, **_provenance(path)},
                "split": {"seed": int(seed), "fractions": list(fractions), "key": "blake2b(seed, basename) + splitmix64(entry)"},
                "hepdl_version": _version(),
            }
            for a in arrays.values():
                a.close()
            arrays.clear()
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                json.dump(meta, f, indent=1)
            return meta
        except BaseException:
            # Writes finished and files closed before atomic_dir removes the temporary directory.
            if writer is not None:
                writer.shutdown(wait=True, cancel_futures=True)
            for a in arrays.values():
                a.discard()
            arrays.clear()
            raise
        finally:
            chunks.close()  # stops the read-ahead thread when leaving early
            if writer is not None:
                writer.shutdown(wait=True)
            if bar is not None:
                bar.close()


def _version() -> str:
    from hepdl import __version__

    return __version__


def load_meta(shard_dir: str) -> dict[str, Any]:
    """Read and check a shard's ``meta.json``."""
    path = os.path.join(shard_dir, "meta.json")
    if not os.path.isfile(path):
        raise InputError(f"{shard_dir}: not a prepared shard (no meta.json)")
    meta = read_json(path)
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_array(shard_dir: str, name: str, meta: Mapping[str, Any] | None = None) -> np.ndarray | SparseRows:
    """Memory-map one array of a shard, checking it against the meta (a sparse one as :class:`SparseRows`)."""
    meta = meta or load_meta(shard_dir)
    if name not in meta["arrays"]:
        raise InputError(f"{shard_dir}: no array {name!r}; arrays: {sorted(meta['arrays'])}")
    entry = meta["arrays"][name]
    if entry.get("layout") == "sparse":
        return SparseRows(shard_dir, name, entry)
    a = np.load(os.path.join(shard_dir, f"{name}.npy"), mmap_mode="r")
    if list(a.shape) != entry["shape"]:
        raise InputError(f"{shard_dir}/{name}.npy: shape {list(a.shape)} disagrees with meta.json")
    return a


def find_shards(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Shard directories in the given order; a directory without meta.json contributes its sub-shards (sorted)."""
    out: list[str] = []
    for path in map(os.fspath, paths):
        if os.path.isfile(os.path.join(path, "meta.json")):
            out.append(path)
            continue
        subs = sorted(os.path.dirname(m) for m in glob.glob(os.path.join(glob.escape(path), "*", "meta.json")))
        if not subs:
            raise InputError(f"{path}: not a prepared shard directory (no meta.json) and holds none")
        out += subs
    return out

