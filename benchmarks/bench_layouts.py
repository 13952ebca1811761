"""Community-layout reader benchmark: hepdl against bare h5py / pyarrow, and peak memory vs input size.

    python benchmarks/bench_layouts.py [--jets 5000] [--repeat 3]

Writes a top-tagging-layout HDF5 file (pandas ``to_hdf(format="table")``, 200 zero-padded
slots, ~50 real constituents per jet) and a JetClass-layout Parquet file, each of N and
of 10 N jets, then, in the same run:
  * throughput (jets/s) of the bare read of the same bytes in the same chunks (h5py row
    slices of PyTables' table; pyarrow record batches turned into awkward arrays) and of
    ``hepdl.iterate_events`` building constituents and jet kinematics under logical names;
  * peak resident memory of a fresh process that streams the 1x and the 10x file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from hepdl.io import iterate_events

SLOTS = 200
STEP = "10 MB"  # so that the 1x file is already several chunks
TOP = ("table", {"calo_eta": "part_eta", "calo_phi": "part_phi", "calo_e": "part_energy", "jet_pt": "jet_pt",
                 "jet_mass": "jet_mass", "label": "is_signal_new"})
JETCLASS = ("tree", {"calo_eta": "part_eta", "calo_phi": "part_phi", "calo_e": "part_energy",
                     "trk_pt": "charged_pt", "trk_d0": "charged_d0val", "jet_mass": "jet_mass",
                     "label": "label_Wqq_vs_QCD"})
JETCLASS_COLUMNS = ["part_px", "part_py", "part_pz", "part_energy", "part_charge", "part_d0val", "jet_pt",
                    "jet_eta", "jet_phi", "jet_energy", "label_QCD", "label_Wqq"]


def write_top(path: str, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    first = True
    for start in range(0, n, 10_000):
        m = min(10_000, n - start)
        real = np.arange(SLOTS) < rng.poisson(50, m)[:, None]
        px, py, pz = (rng.normal(0, 20, (m, SLOTS)) * real for _ in range(3))
        e = np.sqrt(px**2 + py**2 + pz**2) * real
        cols = {f"{p}_{i}": a[:, i] for i in range(SLOTS) for p, a in (("E", e), ("PX", px), ("PY", py), ("PZ", pz))}
        cols["is_signal_new"] = rng.integers(0, 2, m)
        pd.DataFrame(cols).to_hdf(path, key="table", format="table", mode="w" if first else "a", append=not first)
        first = False


def write_jetclass(path: str, n: int, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(40, n)
    total = int(counts.sum())
    arrays = {c: ak.unflatten(rng.normal(0, 20, total).astype(np.float32), counts) for c in JETCLASS_COLUMNS[:3]}
    arrays["part_energy"] = ak.unflatten(rng.uniform(40, 60, total).astype(np.float32), counts)
    arrays["part_charge"] = ak.unflatten(rng.integers(-1, 2, total).astype(np.float32), counts)
    arrays["part_d0val"] = ak.unflatten(rng.normal(0, 0.1, total).astype(np.float32), counts)
    arrays |= {"jet_pt": rng.uniform(500, 1000, n), "jet_eta": rng.normal(0, 1, n), "jet_phi": rng.uniform(-3, 3, n),
               "jet_energy": rng.uniform(1500, 2000, n)}
    w = rng.integers(0, 2, n).astype(bool)
    arrays |= {"label_QCD": ~w, "label_Wqq": w}
    # pyarrow decodes a row group whole: memory is bounded by a row group as well as by the chunk
    ak.to_parquet(ak.Array(arrays), path, row_group_size=2_000)


def time_bare_top(path: str) -> float:
    t0 = time.perf_counter()
    with h5py.File(path) as f:
        table = f["table/table"]
        rows = max(1, int(10e6 // table.dtype.itemsize))
        n = sum(len(table[s:s + rows]) for s in range(0, table.shape[0], rows))
    return n / (time.perf_counter() - t0)


def time_bare_jetclass(path: str) -> float:
    t0 = time.perf_counter()
    file = pq.ParquetFile(path, pre_buffer=False)  # as hepdl opens it
    meta = file.metadata
    rows = max(1, int(10e6 * meta.num_rows // sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))))
    n = sum(len(ak.from_arrow(b)) for b in file.iter_batches(batch_size=rows, columns=JETCLASS_COLUMNS))
    return n / (time.perf_counter() - t0)


def time_hepdl(path: str, layout: tuple[str, dict]) -> float:
    t0 = time.perf_counter()
    n = sum(len(c) for c in iterate_events(path, layout[0], layout[1], step_size=STEP))
    return n / (time.perf_counter() - t0)


def peak_memory_mb(path: str, layout: tuple[str, dict]) -> float:
    """Peak RSS of a fresh process streaming ``path``: VmHWM, since Linux carries ``ru_maxrss`` over
    ``exec`` from the forking parent (this benchmark, after writing the 10x file)."""
    code = ("import re, sys\nfrom hepdl.io import iterate_events\n"
            f"n = sum(len(c) for c in iterate_events(sys.argv[1], {layout[0]!r}, {layout[1]!r}, step_size={STEP!r}))\n"
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jets", type=int, default=5_000, help="jets in the 1x HDF5 file")
    parser.add_argument("--jetclass-jets", type=int, default=25_000,
                        help="jets in the 1x Parquet file (a JetClass row is ~5x smaller: several chunks too)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, writer, bare, layout, suffix, n in (
                ("top_tagging_hdf5", write_top, time_bare_top, TOP, ".h5", args.jets),
                ("jetclass_parquet", write_jetclass, time_bare_jetclass, JETCLASS, ".parquet", args.jetclass_jets)):
            small, large = os.path.join(tmp, "1x" + suffix), os.path.join(tmp, "10x" + suffix)
            writer(small, n)
            writer(large, 10 * n)
            bare(small), time_hepdl(small, layout)  # page cache and imports
            ours, base = [], []
            for _ in range(args.repeat):  # interleaved, so that other load hits both alike
                base.append(bare(large))
                ours.append(time_hepdl(large, layout))
            mem_small, mem_large = peak_memory_mb(small, layout), peak_memory_mb(large, layout)
            result[name] = {
                "jets_1x": n, "bare_jets_per_s": round(max(base)), "hepdl_jets_per_s": round(max(ours)),
                "throughput_ratio": round(max(ours) / max(base), 3), "peak_rss_mb_1x": round(mem_small, 1),
                "peak_rss_mb_10x": round(mem_large, 1), "memory_ratio_10x_vs_1x": round(mem_large / mem_small, 3)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
