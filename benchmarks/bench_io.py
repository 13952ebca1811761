"""Reader benchmark: hepdl.iterate_events against bare uproot.iterate, and peak memory vs input size.

    python benchmarks/bench_io.py [--jets 20000] [--repeat 3]

Writes a jet-like file (jagged calorimeter and track branches, ZLIB level 1 as the
generators write) of N jets and one of 10 N jets, then, in the same run:
  * throughput of ``uproot.iterate`` on the branches (the baseline) and of
    ``hepdl.iterate_events`` on the same branches under logical names, best of
    ``--repeat``; the ratio is what the target (>= 0.9) is about;
  * peak resident memory of a fresh process that streams the 1x and the 10x file
    through ``hepdl.iterate_events`` (target: 10x within 1.3x of 1x).
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
import numpy as np
import uproot

from hepdl.io import TreeWriter, iterate_events

FIELDS = {
    "calo_eta": "calo_eta", "calo_phi": "calo_phi", "calo_e": "calo_e",
    "trk_pt": "trk_pt", "trk_eta": "trk_eta", "trk_phi": "trk_phi",
    "jet_pt": "jet_pt", "jet_eta": "jet_eta", "label": "label",
}
STEP = "50 MB"


def write_sample(path: str, n_jets: int, seed: int = 1) -> None:
    """Jet-sized content: ~60 towers and ~15 tracks per jet, written in chunks of 20k."""
    rng = np.random.default_rng(seed)
    with TreeWriter(path, "events") as out:
        for start in range(0, n_jets, 20_000):
            n = min(20_000, n_jets - start)
            n_calo = rng.poisson(60, n)
            n_trk = rng.poisson(15, n)
            chunk = {f"calo_{k}": ak.unflatten(rng.normal(size=n_calo.sum()).astype(np.float32), n_calo)
                     for k in ("eta", "phi", "e")}
            chunk |= {f"trk_{k}": ak.unflatten(rng.normal(size=n_trk.sum()).astype(np.float32), n_trk)
                      for k in ("pt", "eta", "phi")}
            chunk |= {"jet_pt": rng.uniform(250, 350, n), "jet_eta": rng.uniform(-2, 2, n),
                      "label": rng.integers(0, 2, n).astype(np.int32)}
            out.extend(chunk)


def time_bare(path: str) -> float:
    t0 = time.perf_counter()
    n = 0
    for chunk in uproot.iterate(f"{path}:events", list(FIELDS.values()), step_size=STEP, library="ak"):
        n += len(chunk)
    return n / (time.perf_counter() - t0)


def time_hepdl(path: str) -> float:
    t0 = time.perf_counter()
    n = 0
    for chunk in iterate_events(path, "events", FIELDS, step_size=STEP):
        n += len(chunk)
    return n / (time.perf_counter() - t0)


def peak_memory_mb(path: str) -> float:
    """Peak RSS of a fresh process streaming ``path`` (so earlier runs do not count)."""
    code = (
        "import resource, sys\n"
        "from hepdl.io import iterate_events\n"
        f"FIELDS = {FIELDS!r}\n"
        f"n = sum(len(c) for c in iterate_events(sys.argv[1], 'events', FIELDS, step_size={STEP!r}))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jets", type=int, default=20_000, help="jets in the 1x file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = os.path.join(tmp, "1x.root"), os.path.join(tmp, "10x.root")
        write_sample(small, args.jets)
        write_sample(large, 10 * args.jets)
        time_bare(small), time_hepdl(small)  # warm the page cache and imports
        # Interleave the two readers so that load from other processes hits both alike.
        bare, ours = [], []
        for _ in range(args.repeat):
            bare.append(time_bare(large))
            ours.append(time_hepdl(large))
        mem_small, mem_large = peak_memory_mb(small), peak_memory_mb(large)
    result = {
        "jets_1x": args.jets,
        "uproot_iterate_jets_per_s": round(max(bare)),
        "hepdl_iterate_events_jets_per_s": round(max(ours)),
        "throughput_ratio": round(max(ours) / max(bare), 3),
        "peak_rss_mb_1x": round(mem_small, 1),
        "peak_rss_mb_10x": round(mem_large, 1),
        "memory_ratio_10x_vs_1x": round(mem_large / mem_small, 3),
    }
    print(json.dumps(result, indent=1))
    ok = result["throughput_ratio"] >= 0.9 and result["memory_ratio_10x_vs_1x"] <= 1.3
    print("targets (>= 0.9x throughput, <= 1.3x memory):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
