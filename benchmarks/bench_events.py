"""jets-from-events benchmark: peak memory on 10x the events against 1x, throughput against bare uproot.

    python benchmarks/bench_events.py [--events 5000] [--repeat 2]

Writes a PFNano-like event file of N events (3 FatJets, ~150 PFCands and one FatJetPFCands link
per candidate, 30 GenPart with a W -> q q' per event; ZLIB level 1 as hepdl writes) and one of
10 N events, then:
  * peak resident memory of a fresh process that runs ``jets_from_events`` (links, charge split
    into towers and tracks, GenPart truth, writing) on the 1x and on the 10x file; streaming means
    the two are equal (the 10x run only takes longer);
  * throughput (events per second) of that whole stage on the 10x file, printed as a ratio to bare
    ``uproot.iterate`` reading the same branches with the same step size (best of ``--repeat``).
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

from hepdl.io import TreeWriter
from hepdl.io.events import ConstituentSource, jets_from_events
from hepdl.io.jet_matching import JetSelection, TruthMatch

STEP = "20 MB"
KWARGS = dict(tree="Events", jets="FatJet", links="FatJetPFCands", truth=TruthMatch(),
              selection=JetSelection(pt_min=200.0, eta_max=2.4),
              constituents=[ConstituentSource.parse("calo=PFCands:charge == 0"),
                            ConstituentSource.parse("trk=PFCands:charge != 0")], step_size=STEP)


def write_sample(path: str, n_events: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    with TreeWriter(path, "Events") as out:
        for start in range(0, n_events, 5_000):
            n = min(5_000, n_events - start)
            n_jets = np.full(n, 3)
            n_cands = rng.poisson(150, n)
            n_gen = np.full(n, 30)
            f32 = np.float32
            chunk = {f"FatJet_{k}": ak.unflatten(v.astype(f32), n_jets) for k, v in {
                "pt": rng.uniform(150, 600, n_jets.sum()), "eta": rng.uniform(-2.5, 2.5, n_jets.sum()),
                "phi": rng.uniform(-np.pi, np.pi, n_jets.sum()), "mass": rng.uniform(10, 200, n_jets.sum()),
                "tau1": rng.uniform(0, 1, n_jets.sum()), "tau2": rng.uniform(0, 1, n_jets.sum())}.items()}
            total = n_cands.sum()
            chunk |= {f"PFCands_{k}": ak.unflatten(rng.normal(size=total).astype(f32), n_cands)
                      for k in ("pt", "eta", "phi", "e", "d0", "z0")}
            chunk["PFCands_charge"] = ak.unflatten(rng.integers(-1, 2, total).astype(np.int32), n_cands)
            chunk["FatJetPFCands_jetIdx"] = ak.unflatten(rng.integers(0, 3, total).astype(np.int32), n_cands)
            local = np.arange(total) - np.repeat(np.cumsum(n_cands) - n_cands, n_cands)
            chunk["FatJetPFCands_pFCandsIdx"] = ak.unflatten(local.astype(np.int32), n_cands)
            pdg = np.tile(np.r_[24, 1, -2, np.full(27, 21)], n)
            mother = np.tile(np.r_[-1, 0, 0, np.full(27, -1)], n)
            chunk |= {"GenPart_pdgId": ak.unflatten(pdg.astype(np.int32), n_gen),
                      "GenPart_genPartIdxMother": ak.unflatten(mother.astype(np.int32), n_gen),
                      "GenPart_eta": ak.unflatten(rng.uniform(-2.5, 2.5, n_gen.sum()).astype(f32), n_gen),
                      "GenPart_phi": ak.unflatten(rng.uniform(-np.pi, np.pi, n_gen.sum()).astype(f32), n_gen)}
            chunk["event"] = np.arange(start, start + n, dtype=np.int64)
            out.extend(chunk)


def branches() -> list[str]:
    jets = [f"FatJet_{k}" for k in ("pt", "eta", "phi", "mass", "tau1", "tau2")]
    cands = [f"PFCands_{k}" for k in ("pt", "eta", "phi", "e", "d0", "z0", "charge")]
    return [*jets, *cands, "FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx", "GenPart_pdgId",
            "GenPart_genPartIdxMother", "GenPart_eta", "GenPart_phi", "event"]


def time_bare(path: str) -> float:
    t0 = time.perf_counter()
    n = sum(len(c) for c in uproot.iterate(f"{path}:Events", branches(), step_size=STEP, library="ak"))
    return n / (time.perf_counter() - t0)


def time_stage(path: str, out: str) -> float:
    t0 = time.perf_counter()
    n = jets_from_events(path, out, **KWARGS)["events"]
    return n / (time.perf_counter() - t0)


def peak_memory_mb(path: str, out: str) -> float:
    """Peak RSS of a fresh process running the whole stage on ``path``."""
    code = (
        "import resource, sys\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from bench_events import KWARGS\n"
        "from hepdl.io.events import jets_from_events\n"
        "jets_from_events(sys.argv[1], sys.argv[2], **KWARGS)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    res = subprocess.run([sys.executable, "-c", code, path, out, here], check=True, capture_output=True, text=True)
    return float(res.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000, help="events in the 1x file")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = os.path.join(tmp, "1x.root"), os.path.join(tmp, "10x.root")
        out = os.path.join(tmp, "jets.root")
        write_sample(small, args.events)
        write_sample(large, 10 * args.events)
        time_bare(small), time_stage(small, out)  # warm the page cache and imports
        bare, ours = [], []
        for _ in range(args.repeat):  # interleaved, so that other load hits both alike
            bare.append(time_bare(large))
            ours.append(time_stage(large, out))
        n_jets = uproot.open(out)["events"].num_entries
        mem_small, mem_large = peak_memory_mb(small, out), peak_memory_mb(large, out)
    result = {
        "events_1x": args.events,
        "jets_written_10x": n_jets,
        "uproot_iterate_events_per_s": round(max(bare)),
        "jets_from_events_events_per_s": round(max(ours)),
        "throughput_ratio_to_bare_uproot": round(max(ours) / max(bare), 3),
        "peak_rss_mb_1x": round(mem_small, 1),
        "peak_rss_mb_10x": round(mem_large, 1),
        "memory_ratio_10x_vs_1x": round(mem_large / mem_small, 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
