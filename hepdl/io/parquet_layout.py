"""Parquet jet tables in the JetClass layout (arXiv:2202.03772), read with pyarrow in batches.

One row per jet: the constituents as list columns ``part_px``, ``part_py``, ``part_pz``,
``part_energy``, ``part_deta``, ``part_dphi``, ``part_charge``, ``part_d0val``,
``part_dzval``, ``part_is*``, ...; the jet as ``jet_pt``, ``jet_eta``, ``jet_phi``,
``jet_energy``, ``jet_nparticles``, ``jet_sdmass``, ``jet_tau1..4``; the class one-hot in
``label_QCD``, ``label_Hbb``, ..., ``label_Wqq``, ``label_Tbqq``, ``label_Tbl``.

Besides its own columns a file offers these branches (computed per batch):

* ``part_pt``, ``part_eta``, ``part_phi``: from ``part_px``/``part_py``/``part_pz`` (absolute,
  as the jet tasks' ``calo_*``; JetClass's ``part_deta``/``part_dphi`` are relative to the jet);
* ``jet_mass``: from ``jet_pt``, ``jet_eta``, ``jet_phi``, ``jet_energy`` where the file has none;
* ``charged_<x>`` for every constituent branch ``part_<x>``: the constituents with
  ``part_charge != 0`` (the jet tasks' tracks: ``trk_d0`` is ``charged_d0val``);
* ``label_<S>_vs_<B>`` for two classes ``S`` and ``B`` of the file's ``label_*`` columns: 1
  for class ``S``, 0 for ``B``; an entry of a third class is an error (JetClass keeps one
  process per file, so a Wqq-vs-QCD training lists the ``WToQQ_*`` and ``ZJetsToNuNu_*``
  files; a raw ``label_Wqq`` would call every other class background).

A Parquet file holds one table: the ``tree`` of the config is not used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np

from hepdl.errors import InputError
from hepdl.io.jet_table import JetTable, step_rows

_MOMENTUM = ("part_px", "part_py", "part_pz")
_JET_P4 = ("jet_pt", "jet_eta", "jet_phi", "jet_energy")
_CHARGED = "\0charged"  # a chunk's cached charged-constituent mask (no column has this name)


class ParquetJets(JetTable):
    """A JetClass-layout Parquet file with an uproot-tree-like reading interface."""

    def __init__(self, path: str) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{path}: reading Parquet needs pyarrow (pip install 'hepdl[layouts]')") from None
        import pyarrow as pa

        self.path, self.where = path, path
        try:
            # pre_buffer (pyarrow's default) keeps every row group read so far: memory grows with the file
            self._file = pq.ParquetFile(path, pre_buffer=False)
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... on bad bytes
            raise InputError(f"{path}: not a readable Parquet file ({' '.join(str(err).split())})") from None
        schema = self._file.schema_arrow
        self._lists = {f.name for f in schema if pa.types.is_nested(f.type)}
        self._columns = list(schema.names)
        for name in self._columns:
            nested = name in self._lists
            if name.startswith("part_") and not nested:
                raise InputError(f"{path}: column {name!r} holds one value per jet; a constituent column "
                                 "needs a list per jet")
            if name.startswith(("jet_", "label_")) and nested:
                raise InputError(f"{path}: column {name!r} holds a list per jet; a jet column needs one value per jet")
        self.num_entries = int(self._file.metadata.num_rows)
        meta = self._file.metadata
        total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        self.bytes_per_entry = total / max(self.num_entries, 1)
        self._derived = self._derived_sources()

    def _derived_sources(self) -> dict[str, tuple[str, ...]]:
        """Computed branch -> the file's columns it is computed from."""
        have = set(self._columns)
        out: dict[str, tuple[str, ...]] = {}
        # listed where any of their columns is there, so that a missing one is named when asked for
        if set(_MOMENTUM) & have:
            out |= {b: _MOMENTUM for b in ("part_pt", "part_eta", "part_phi") if b not in have}
        if set(_JET_P4) & have and "jet_mass" not in have:
            out["jet_mass"] = _JET_P4
        if "part_charge" in have:
            parts = [c for c in self._columns if c.startswith("part_")] + [b for b in out if b.startswith("part_")]
            for p in parts:
                out[f"charged_{p[len('part_'):]}"] = tuple(dict.fromkeys((*out.get(p, (p,)), "part_charge")))
        classes = [c for c in self._columns if c.startswith("label_")]
        for s in classes:
            for b in classes:
                if s != b:
                    out[f"{s}_vs_{b[len('label_'):]}"] = tuple(classes)
        return out

    def keys(self) -> list[str]:
        return self._columns + [b for b in self._derived if b not in self._columns]

    def describe(self) -> list[str]:
        """One line per branch for ``hepdl inspect``: its Arrow type, or what it is computed from."""
        schema = self._file.schema_arrow
        lines = [f"{c}  {schema.field(c).type}" for c in self._columns]
        for b, sources in self._derived.items():
            what = "1 for the first class, 0 for the second" if b.startswith("label_") else ", ".join(sources)
            lines.append(f"{b}  computed ({what})")
        return lines

    def iterate(self, branches: Sequence[str], *, step_size: int | str = "50 MB",
                library: str = "ak") -> Iterator[ak.Array]:
        if library != "ak":
            raise ValueError(f"a jet table yields awkward arrays, not {library!r}")
        columns: list[str] = []
        for b in branches:
            if b in self._columns:
                columns.append(b)
            elif b in self._derived:
                absent = [c for c in self._derived[b] if c not in self._columns]
                if absent:
                    raise InputError(f"{self.where}: no column {absent[0]!r} (branch {b!r} is computed from "
                                     f"{', '.join(self._derived[b])})")
                columns.extend(self._derived[b])
            else:
                raise InputError(f"{self.where}: no column {b!r}")
        columns = list(dict.fromkeys(columns))
        rows = step_rows(step_size, self.bytes_per_entry)
        start = 0
        for batch in self._file.iter_batches(batch_size=rows, columns=columns, use_threads=False):
            raw = {c: self._checked(c, ak.from_arrow(batch.column(c)), start) for c in columns}
            yield ak.zip({b: self._compute(b, raw, start) for b in branches}, depth_limit=1)
            start += batch.num_rows

    def _checked(self, name: str, values: ak.Array, start: int) -> ak.Array:
        """The column without option types, refusing nulls and non-finite values by name."""
        for what, bad in (("null", self._null_rows(values)), ("NaN or infinite", self._nonfinite_rows(values))):
            if bad is not None and bad.any():
                raise InputError(f"{self.where}: column {name!r} has {what} values "
                                 f"(first: entry {start + int(np.flatnonzero(bad)[0])})")
        return ak.drop_none(values)

    @staticmethod
    def _null_rows(values: ak.Array) -> np.ndarray | None:
        layout = values.layout
        if not layout.is_option and not (values.ndim > 1 and layout.content.is_option):
            return None  # the common case (awkward and pyarrow write non-nullable columns): nothing to scan
        bad = ak.to_numpy(ak.is_none(values, axis=0))
        if values.ndim > 1:
            bad = bad | ak.to_numpy(ak.fill_none(ak.any(ak.is_none(values, axis=1), axis=1), True))
        return bad

    @staticmethod
    def _nonfinite_rows(values: ak.Array) -> np.ndarray | None:
        flat = ak.to_numpy(ak.flatten(ak.drop_none(values), axis=None))
        if flat.dtype.kind != "f" or np.isfinite(flat).all():
            return None
        bad = ~np.isfinite(ak.drop_none(values))
        return ak.to_numpy(ak.fill_none(ak.any(bad, axis=1), False) if values.ndim > 1 else ak.fill_none(bad, False))

    def _same_lengths(self, raw: dict[str, ak.Array], keys: Sequence[str], start: int,
                      names: Sequence[str] | None = None) -> None:
        names = names or keys
        counts = ak.to_numpy(ak.num(raw[keys[0]], axis=1))
        for key, other in zip(keys[1:], names[1:], strict=True):
            bad = np.flatnonzero(ak.to_numpy(ak.num(raw[key], axis=1)) != counts)
            if bad.size:
                raise InputError(f"{self.where}: columns {names[0]!r} and {other!r} have different numbers of "
                                 f"constituents (first: entry {start + bad[0]})")

    def _compute(self, branch: str, raw: dict[str, ak.Array], start: int) -> ak.Array | np.ndarray:
        """A computed branch of the chunk ``raw`` (the file's columns), kept in ``raw`` for the others."""
        import vector

        if branch in raw:
            return raw[branch]
        if branch in ("part_pt", "part_eta", "part_phi"):
            self._same_lengths(raw, _MOMENTUM, start)
            counts = ak.num(raw["part_px"], axis=1)
            p = vector.array({c[len("part_"):]: ak.to_numpy(ak.flatten(raw[c])) for c in _MOMENTUM})
            value = ak.unflatten(np.asarray(getattr(p, branch[len("part_"):])), counts)
        elif branch == "jet_mass":
            jet = vector.array({"pt": ak.to_numpy(raw["jet_pt"]), "eta": ak.to_numpy(raw["jet_eta"]),
                                "phi": ak.to_numpy(raw["jet_phi"]), "E": ak.to_numpy(raw["jet_energy"])})
            value = np.asarray(jet.mass)
        elif branch.startswith("charged_"):
            part = self._compute("part_" + branch[len("charged_"):], raw, start)
            self._same_lengths({"a": part, "b": raw["part_charge"]}, ("a", "b"), start,
                               names=("part_" + branch[len("charged_"):], "part_charge"))
            if _CHARGED not in raw:  # flat mask and counts once per chunk, for every charged_* branch
                charge = raw["part_charge"]
                mask = ak.to_numpy(ak.flatten(charge)) != 0
                edges = np.concatenate([[0], np.cumsum(mask)])[np.concatenate([[0], np.cumsum(ak.num(charge))])]
                raw[_CHARGED] = (mask, np.diff(edges))
            mask, counts = raw[_CHARGED]
            value = ak.unflatten(ak.to_numpy(ak.flatten(part))[mask], counts)
        else:
            value = self._pair_label(branch, raw, start)
        raw[branch] = value
        return value

    def _pair_label(self, branch: str, raw: dict[str, ak.Array], start: int) -> np.ndarray:
        classes = self._derived[branch]
        hot = np.stack([ak.to_numpy(raw[c]) != 0 for c in classes], axis=1)
        n_hot = hot.sum(axis=1)
        if (n_hot != 1).any():
            row = int(np.flatnonzero(n_hot != 1)[0])
            raise InputError(f"{self.where}: entry {start + row} has {n_hot[row]} of the label columns "
                             f"{', '.join(classes)} set; one-hot labels need exactly one")
        signal, background = branch.split("_vs_")
        background = "label_" + background
        which = np.argmax(hot, axis=1)
        is_signal, is_background = which == classes.index(signal), which == classes.index(background)
        other = np.flatnonzero(~(is_signal | is_background))
        if other.size:
            raise InputError(f"{self.where}: entry {start + other[0]} is of class {classes[which[other[0]]]!r}, "
                             f"neither {signal!r} nor {background!r} (for {branch!r}); list only files of "
                             "these two classes")
        return is_signal.astype(np.int32)
