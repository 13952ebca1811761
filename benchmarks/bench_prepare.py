"""Throughput of ``hepdl prepare jets`` against reading the same branches with bare uproot.

    python benchmarks/bench_prepare.py [--input jets.root] [--n-jets 20000] [--workdir DIR] [--threads 2]

Without ``--input`` it generates a small Pythia sample with hepdl's generator (a
minute) and tiles it to ``--n-jets`` entries in a ZLIB(1) file, as the generator
writes. Prints jets/s of: reading (uproot.iterate, the baseline; and the same with
uproot's ``decompression_executor`` on ``--threads`` threads, the fair baseline for a
multi-threaded prepare), building images + track sequences, writing the shard's arrays
(built once beforehand, written as ``prepare_file`` writes them), N-subjettiness, and the
whole preparation (read, all arrays, writing the shard, for each N-subjettiness axes
choice, on one thread and on ``--threads``), each as a ratio to the single-threaded read
rate, in wall time and in CPU time of this process (all its threads; fairer on a shared
machine). Every line is the best of ``--rounds`` passes, the passes of all lines
interleaved, so that a change of load on a shared machine hits them alike. The one-thread
CPU ratio says what a prepare costs; the multi-thread wall ratio is what a job with that
many cores sees, and is only meaningful on an otherwise idle machine (the load average is
printed). fastjet-contrib's own Nsubjettiness on the same chunks is timed once for
comparison when the ``fastjet`` package is installed. The first compiled call (numba's
cache load, or compilation) is timed separately. Not part of the tests.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import awkward as ak
import numpy as np
import uproot

from hepdl.io import iterate_events, read_events
from hepdl.io.write import TreeWriter
from hepdl.represent import jet_images, prepare_file, representation, resolve_spec, track_sequences
from hepdl.represent.nsubjettiness import nsubjettiness
from hepdl.represent.prepared import _NpyWriter

FIELDS = ["calo_eta", "calo_phi", "calo_e", "trk_pt", "trk_eta", "trk_phi", "trk_d0", "trk_z0",
          "trk_charge", "jet_pt", "jet_eta", "jet_phi", "jet_mass", "label", "weight"]


def make_input(workdir: str, n_jets: int) -> str:
    from hepdl.generate import generate_jets

    seed_file = os.path.join(workdir, "seed_jets.root")
    if not os.path.exists(seed_file):
        print("generating 400 Pythia jets for the benchmark input ...", file=sys.stderr)
        generate_jets(seed_file, variant="sim", n_signal=200, n_background=200, seed=1)
    path = os.path.join(workdir, f"bench_jets_{n_jets}.root")
    if not os.path.exists(path):
        seed = read_events(seed_file, "events", FIELDS)
        with TreeWriter(path, "events") as out:  # ZLIB(1), like the generator
            written = 0
            while written < n_jets:
                part = seed[: min(len(seed), n_jets - written)]
                out.extend({f: part[f] for f in FIELDS})
                written += len(part)
    return path


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds: the machine may be shared, and CPU time is what each stage costs."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="jet ROOT file (tree 'events', logical field names)")
    ap.add_argument("--n-jets", type=int, default=20000)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hepdl-bench-prepare"))
    ap.add_argument("--step-size", default="50 MB")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved read/build passes (best of)")
    ap.add_argument("--threads", type=int, default=2, help="threads of the multi-threaded lines")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    path = args.input or make_input(args.workdir, args.n_jets)
    n = uproot.open(path)["events"].num_entries
    branches = FIELDS

    def read() -> None:
        for _ in uproot.iterate(f"{path}:events", branches, step_size=args.step_size, library="ak"):
            pass

    read()  # warm the page cache: every pass below then reads from memory alike
    # In blocks of 2048 jets, as prepare_file works (cache-sized flat arrays).
    chunks = [c[lo:lo + 2048] for c in iterate_events(path, "events", FIELDS, step_size=args.step_size)
              for lo in range(0, len(c), 2048)]

    def build() -> None:
        for c in chunks:
            jeta, jphi, jpt = (ak.to_numpy(c[f]) for f in ("jet_eta", "jet_phi", "jet_pt"))
            jet_images(c["calo_eta"], c["calo_phi"], c["calo_e"], jeta, jphi,
                       trk_pt=c["trk_pt"], trk_eta=c["trk_eta"], trk_phi=c["trk_phi"])
            track_sequences({f: c[f] for f in FIELDS if f.startswith("trk_")}, jpt, jeta, jphi)

    def taus(axes: str, threads: int = 1):
        def run() -> None:
            for c in chunks:
                nsubjettiness(c["calo_eta"], c["calo_phi"], c["calo_e"], axes=axes, threads=threads)
        return run

    def contrib_taus() -> None:
        import fastjet

        jetdef = fastjet.JetDefinition(fastjet.kt_algorithm, 1.0)
        for c in chunks:
            eta, phi, e = (ak.values_astype(c[f], np.float64) for f in ("calo_eta", "calo_phi", "calo_e"))
            pt = e / np.cosh(eta)
            vectors = ak.zip({"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": e},
                             with_name="Momentum4D")
            fastjet.ClusterSequence(vectors, jetdef).njettiness(njets=[1, 2, 3], R0=1.0, beta=1.0)

    # numba's first call in a process loads the compiled kernels from its cache (or compiles
    # them once per installation): a fixed cost per `hepdl prepare` job, timed apart.
    tiny = chunks[0][:4]
    first = {}
    for threads in (1, args.threads):
        t = time.perf_counter()
        for axes in ("onepass_kt", "kt"):
            nsubjettiness(tiny["calo_eta"], tiny["calo_phi"], tiny["calo_e"], axes=axes, threads=threads)
        first[threads] = time.perf_counter() - t

    def prepare(axes: str, threads: int = 1):
        out = os.path.join(args.workdir, f"shard_{axes}_{threads}")
        spec = {"expert": {"nsubjettiness": {"axes": axes}}}
        return lambda: prepare_file("jets", path, out, seed=1, step_size=args.step_size, spec=spec, threads=threads)

    def read_pooled() -> None:
        with ThreadPoolExecutor(args.threads) as pool:
            for _ in uproot.iterate(f"{path}:events", branches, step_size=args.step_size, library="ak",
                                    decompression_executor=pool):
                pass

    # The shard's arrays of every block, built once (cone axes: only the shapes matter here),
    # to time writing them as prepare_file does: the dense float32 images are ~12 kB per jet,
    # several times the compressed input.
    reps = [representation(c, resolve_spec("jets", {"expert": {"nsubjettiness": {"axes": "cone"}}})) for c in chunks]
    shard_mb = sum(a.nbytes for rep in reps for a in rep.values()) / 1e6

    def write() -> None:
        out = os.path.join(args.workdir, "shard_write")
        os.makedirs(out, exist_ok=True)
        writers = {k: _NpyWriter(os.path.join(out, f"{k}.npy"), a.dtype, (n,) + a.shape[1:]) for k, a in reps[0].items()}
        first = 0
        for rep in reps:
            for k, a in rep.items():
                writers[k].write_rows(first, a)
            first += len(rep["label"])
        for w in writers.values():
            w.close()

    stages = {"read (uproot.iterate)": read,
              f"read, {args.threads}-thread decompression": read_pooled,
              "images + track sequences": build,
              "write the shard's arrays": write}
    for axes in ("onepass_kt", "kt", "cone"):
        stages[f"N-subjettiness ({axes} axes)"] = taus(axes)
    for axes in ("onepass_kt", "kt"):
        stages[f"N-subjettiness ({axes}, {args.threads} threads)"] = taus(axes, args.threads)
    for axes in ("onepass_kt", "kt", "cone"):
        stages[f"whole prepare ({axes} axes)"] = prepare(axes)
    for axes in ("onepass_kt", "kt"):
        stages[f"whole prepare ({axes}, {args.threads} threads)"] = prepare(axes, args.threads)
    # Every stage once per round, rounds interleaved, best of the rounds (the least disturbed
    # pass) in wall and in CPU time separately.
    # Each shard is deleted after its pass, untimed: a prepare job writes one new shard (a
    # pass that replaced an old one would also pay for deleting it, and a growing pile of
    # unflushed shards slows every write).
    passes: dict[str, list[tuple[float, float]]] = {k: [] for k in stages}
    for _ in range(args.rounds):
        for k, fn in stages.items():
            passes[k].append(timed(fn))
            for shard in glob.glob(os.path.join(args.workdir, "shard_*")):
                shutil.rmtree(shard, ignore_errors=True)
    times = {k: (min(p[0] for p in v), min(p[1] for p in v)) for k, v in passes.items()}
    try:
        times["N-subjettiness (FastJet contrib)"] = timed(contrib_taus)
    except ImportError:
        print("fastjet is not installed: no contrib comparison", file=sys.stderr)
    t_read = times["read (uproot.iterate)"]

    towers = float(np.mean(ak.to_numpy(ak.num(chunks[0]["calo_e"]))))
    tracks = float(np.mean(ak.to_numpy(ak.num(chunks[0]["trk_pt"]))))
    print(f"{path}: {n} jets, {towers:.0f} towers and {tracks:.0f} tracks per jet, step {args.step_size}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"first compiled call (cache load or compile): {first[1]:.2f} s on 1 thread, "
          f"{first[args.threads]:.2f} s more for {args.threads} threads")
    print(f"{'stage':44s} {'jets/s wall':>12s} {'x read':>7s} {'jets/s CPU':>11s} {'x read':>7s}")
    result = {}
    for k, (wall, cpu) in times.items():
        rw, rc = t_read[0] / wall, t_read[1] / cpu
        result[k] = {"jets_per_s_wall": n / wall, "ratio_wall": rw, "jets_per_s_cpu": n / cpu, "ratio_cpu": rc}
        print(f"{k:44s} {n / wall:12.0f} {rw:7.2f} {n / cpu:11.0f} {rc:7.2f}")
    # Where the whole default prepare's CPU goes, per jet (the rest: reading's field mapping
    # and checks, the mass, split, finiteness checks).
    us = {k: 1e6 * cpu / n for k, (_, cpu) in times.items()}
    whole, build = us["whole prepare (onepass_kt axes)"], us["images + track sequences"]
    nsub, read_us = us["N-subjettiness (onepass_kt axes)"], us["read (uproot.iterate)"]
    write_us = us["write the shard's arrays"]
    print(f"whole default prepare, CPU us/jet: {whole:.1f} = read {read_us:.1f} + images/tracks {build:.1f}"
          f" + N-subjettiness {nsub:.1f} + writing {write_us:.1f} + rest {whole - read_us - build - nsub - write_us:.1f}")
    write_wall = times["write the shard's arrays"][0]
    print(f"shard: {shard_mb / n * 1e3:.1f} kB per jet, written at {shard_mb / write_wall:.0f} MB/s "
          f"({1e6 * write_wall / n:.1f} us per jet of wall time)")
    walls = {k: wall for k, (wall, _) in times.items()}
    threaded = walls[f"whole prepare (onepass_kt, {args.threads} threads)"]
    single = walls["whole prepare (onepass_kt axes)"]
    pooled = walls[f"read, {args.threads}-thread decompression"]
    print(f"default prepare on {args.threads} threads: wall time {threaded / single:.2f} of one thread's; "
          f"{t_read[0] / threaded:.2f}x the one-thread read rate, {pooled / threaded:.2f}x the "
          f"{args.threads}-thread-decompression read rate")
    print(json.dumps({"n_jets": n, "first_call_s": first, "stages": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
