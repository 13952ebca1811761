"""The training data path on this machine: shard read bandwidth, the loader's rate, training rates.

    python benchmarks/bench_loader.py [--quick] [--n 20000] [--threads 2] [--workdir DIR]

Writes prepared shards of the jets task's layout (3x32x32 jet images, 30x6 track sequences and
mask, 9 expert variables, the columns; images with ~5% of their pixels lit, as the generator's) for
``--n`` jets (1x) and ten times as many (10x), in float32, float16 and sparse storage, then measures
in one run:

- ``read``: the raw read bandwidth of the shards (every array of the train split through its
  memory map, in large sequential slices; the files are in the page cache, as on a node that
  trains on its local copy), as jets/s and MB/s;
- ``loader``: the jets/s the engine's loader delivers with no model (the arrays the default CNN
  reads, shuffled batches of 128, gathered in its background thread; also without the thread,
  with block shuffling, and from a copy in memory, the CPU analogue of the device-resident mode);
- ``train``: the engine's training jets/s with the default pipeline's CNN (config/config.yaml,
  jets.models.cnn) from the shards, and ``bare``: a bare PyTorch loop over in-memory tensors with
  the same model and batch size;
- peak anonymous memory (RSS without the mapped files, which the kernel may drop) of a loader pass
  over 1x and over 10x the jets, each in its own process;
- ``bytes_per_jet`` on disk for float32, float16 and sparse storage (and the loader's rate from each).

The last line is one JSON object with these numbers. ``--quick`` (5000 jets, 1 timed epoch) runs in
under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

CNN = {"name": "jet_cnn", "channels": [32, 64, 64], "dropout": 0.2, "spatial_pool": 4}
ARRAYS = ("jet_images", "label", "weight")
BATCH = 128


def write_shards(directory: str, n_jets: int, n_shards: int, storage: str, seed: int = 0) -> list[str]:
    """``n_shards`` prepared shards of ``n_jets`` jets each in the jets task's layout, in ``directory``."""
    os.makedirs(directory)
    from hepdl.represent import default_spec, feature_names
    from hepdl.represent.prepared import SparseWriter

    rng = np.random.default_rng(seed)
    spec = default_spec("jets")
    half = np.float32 if storage == "float32" else np.float16
    paths = []
    for s in range(n_shards):
        path = os.path.join(directory, f"jets_{s}")
        os.makedirs(path)
        label = (rng.random(n_jets) < 0.5).astype(np.int64)
        images = np.zeros((n_jets, 3, 32, 32), np.float32)
        for lo in range(0, n_jets, 4096):  # ~50 of 1024 pixels lit per channel, as generated jets
            hi = min(lo + 4096, n_jets)
            lit = rng.random((hi - lo, 3, 32, 32)) < 0.05
            images[lo:hi] = np.where(lit, rng.exponential(0.02, lit.shape), 0.0)
        images[:, :, 16, 16] += 0.3
        images[label == 1, 0, 20, 16] += 0.2
        tracks = rng.normal(size=(n_jets, 30, 6)).astype(np.float32)
        arrays = {
            "jet_images": images.astype(half), "tracks": tracks.astype(half),
            "track_mask": rng.random((n_jets, 30)) < 0.5, "expert": rng.normal(size=(n_jets, 9)).astype(np.float32),
            "jet_pt": rng.uniform(250, 350, n_jets).astype(np.float32), "jet_eta": rng.normal(0, 1, n_jets).astype(np.float32),
            "jet_mass": rng.uniform(20, 120, n_jets).astype(np.float32), "label": label,
            "weight": np.ones(n_jets, np.float32),
            "split": rng.choice(np.array([0, 1, 2], np.uint8), n_jets, p=[0.6, 0.2, 0.2]),
        }
        described = {}
        for name, a in arrays.items():
            if storage == "sparse" and name == "jet_images":
                writer = SparseWriter(path, name, a.dtype, a.shape)
                writer.write_rows(0, a)
                writer.close()
                described[name] = writer.describe()
            else:
                np.save(os.path.join(path, f"{name}.npy"), a)
                described[name] = {"shape": list(a.shape), "dtype": str(a.dtype)}
        meta = {"format": "hepdl-prepared-v1", "task": "jets", "n_entries": n_jets, "storage": storage,
                "arrays": described,
                "feature_names": feature_names(spec), "spec": spec, "fields": {}, "source": {"path": "benchmark"},
                "split": {"seed": seed, "fractions": [0.6, 0.2, 0.2]}}
        with open(os.path.join(path, "meta.json"), "w") as f:
            json.dump(meta, f)
        paths.append(path)
    return paths


def disk_bytes_per_jet(shards: list[str], n_jets: int) -> float:
    total = sum(os.path.getsize(os.path.join(s, f)) for s in shards for f in os.listdir(s))
    return total / n_jets


def read_rate(shards: list[str]) -> tuple[float, float]:
    """Jets/s and MB/s copying the arrays the loader delivers out of their memory maps, in large
    sequential slices (what a disk does best): the raw bandwidth the loader is compared with."""
    from hepdl.represent.prepared import load_array, load_meta

    n, nbytes, seconds = 0, 0, 0.0
    for shard in shards:
        meta = load_meta(shard)
        t0 = time.perf_counter()
        for name in ARRAYS:
            a = load_array(shard, name, meta)
            for lo in range(0, len(a), 8192):
                nbytes += np.array(a[lo:lo + 8192]).nbytes
        seconds += time.perf_counter() - t0
        n += int(meta["n_entries"])
    return n / seconds, nbytes / seconds / 1e6


def loader_rate(shards: list[str], *, prefetch: int = 2, block: int = 1, in_memory: bool = False,
                epochs: int = 2) -> float:
    """Jets/s the engine's loader delivers over the train split (no model), best epoch of ``epochs``."""
    from hepdl.represent import PreparedDataset
    from hepdl.train.data import BatchLoader, EpochBatchSampler, device_resident

    data = PreparedDataset(shards, "train", ARRAYS)
    if in_memory:
        data = device_resident(data, torch.device("cpu"))
    weights = torch.ones(len(data))
    sampler = EpochBatchSampler(len(data), BATCH, seed=1, block=block)
    best = 0.0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        n = sum(len(b["index"]) for b in BatchLoader(data, sampler, prefetch=prefetch, extra={"sample_weight": weights}))
        best = max(best, n / (time.perf_counter() - t0))
    return best


def train_rate(shards: list[str], epochs: int, **options) -> float:
    """The engine's training jets/s with the default CNN, over the timed epochs (the first is warm-up)."""
    from hepdl.models import build_model
    from hepdl.represent import PreparedDataset
    from hepdl.train import TrainSettings, train

    settings = TrainSettings(model={**CNN, "in_channels": 3}, epochs=epochs + 1, batch_size=BATCH, optimizer="adamw",
                             schedule="none", early_stopping_patience=None, progress="never", log_epochs=False,
                             device="cpu", **options)
    result = train(build_model(settings.model), PreparedDataset(shards, "train", ARRAYS),
                   PreparedDataset(shards, "validation", ARRAYS), settings)
    rows = result.history[1:]
    return sum(r["samples_per_s"] * r["seconds"] for r in rows) / sum(r["seconds"] for r in rows)


def bare_rate(shards: list[str], epochs: int) -> float:
    """A bare PyTorch loop over in-memory tensors, same model and batch size; jets/s over the timed epochs."""
    from hepdl.models import build_model
    from hepdl.represent import PreparedDataset

    data = PreparedDataset(shards, "train", ARRAYS)
    x = torch.from_numpy(data.numpy("jet_images"))
    y = torch.from_numpy(data.numpy("label")).float()
    model = build_model({**CNN, "in_channels": 3})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    samples, seconds = 0, 0.0
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        for b in range(len(x) // BATCH):
            idx = order[b * BATCH:(b + 1) * BATCH]
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch > 0:
            samples += (len(x) // BATCH) * BATCH
            seconds += time.perf_counter() - t0
    return samples / seconds


def _anon_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def peak_memory_mb(shards: list[str]) -> float:
    """Peak anonymous RSS (MB) of one loader pass over ``shards``, in a fresh process."""
    code = (
        "import sys, threading, time, json\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import bench_loader as b\n"
        "peak = [0]\n"
        "stop = threading.Event()\n"
        "def watch():\n"
        "    while not stop.is_set():\n"
        "        peak[0] = max(peak[0], b._anon_kb()); time.sleep(0.02)\n"
        "t = threading.Thread(target=watch, daemon=True); t.start()\n"
        "b.loader_rate(json.loads(sys.argv[1]), epochs=1)\n"
        "stop.set(); t.join(); print(peak[0] / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(shards)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="jets at 1x (10x is ten shards of as many)")
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs (one more is warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the training rates")
    parser.add_argument("--quick", action="store_true", help="5000 jets, one timed epoch: under 3 minutes")
    parser.add_argument("--workdir", default=None, help="where the shards go (default: a temporary directory)")
    args = parser.parse_args()
    if args.quick:
        args.n, args.epochs = 5000, 1
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        one = write_shards(os.path.join(tmp, "1x"), args.n, 1, "float32")
        ten = write_shards(os.path.join(tmp, "10x"), args.n, 10, "float32", seed=1)
        half = write_shards(os.path.join(tmp, "1x_float16"), args.n, 1, "float16", seed=2)
        sparse = write_shards(os.path.join(tmp, "1x_sparse"), args.n, 1, "sparse", seed=2)
        r = {"n_jets_1x": args.n, "threads": args.threads}
        r["bytes_per_jet"] = disk_bytes_per_jet(one, args.n)
        r["bytes_per_jet_float16"] = disk_bytes_per_jet(half, args.n)
        r["bytes_per_jet_sparse"] = disk_bytes_per_jet(sparse, args.n)
        read_rate(one)  # warm the page cache and the imports
        r["read_jets_per_s"], r["read_mb_per_s"] = read_rate(one)
        r["loader_jets_per_s"] = loader_rate(one)
        r["loader_no_thread_jets_per_s"] = loader_rate(one, prefetch=0)
        r["loader_blocks_jets_per_s"] = loader_rate(one, block=16)
        r["loader_in_memory_jets_per_s"] = loader_rate(one, in_memory=True)
        r["loader_float16_jets_per_s"] = loader_rate(half)
        r["loader_sparse_jets_per_s"] = loader_rate(sparse)
        r["train_jets_per_s"] = train_rate(one, args.epochs)
        r["bare_loop_jets_per_s"] = bare_rate(one, args.epochs)
        if not args.quick:  # the compilation alone takes a minute on this CPU
            r["train_compiled_jets_per_s"] = train_rate(one, args.epochs, compile=True)
        r["peak_mb_1x"] = peak_memory_mb(one)
        r["peak_mb_10x"] = peak_memory_mb(ten)
    r["loader_over_train"] = r["loader_jets_per_s"] / r["train_jets_per_s"]
    r["loader_over_read"] = r["loader_jets_per_s"] / r["read_jets_per_s"]
    r["engine_over_bare"] = r["train_jets_per_s"] / r["bare_loop_jets_per_s"]
    r["float16_disk_fraction"] = r["bytes_per_jet_float16"] / r["bytes_per_jet"]
    r["sparse_disk_fraction"] = r["bytes_per_jet_sparse"] / r["bytes_per_jet"]
    rows = [
        ("read (memory maps, page cache)", r["read_jets_per_s"], f"{r['read_mb_per_s']:.0f} MB/s"),
        ("loader (thread, prefetch 2)", r["loader_jets_per_s"], f"{r['loader_over_read']:.2f} x read"),
        ("loader, no thread", r["loader_no_thread_jets_per_s"], ""),
        ("loader, block shuffling (16)", r["loader_blocks_jets_per_s"], ""),
        ("loader, copy in memory", r["loader_in_memory_jets_per_s"], ""),
        ("loader, float16 shards", r["loader_float16_jets_per_s"], ""),
        ("loader, sparse shards", r["loader_sparse_jets_per_s"], ""),
        ("engine training, default CNN", r["train_jets_per_s"], f"{r['engine_over_bare']:.2f} x bare"),
        ("bare PyTorch loop, same CNN", r["bare_loop_jets_per_s"], ""),
    ]
    if "train_compiled_jets_per_s" in r:
        rows.append(("engine training, torch.compile", r["train_compiled_jets_per_s"], ""))
    print(f"{args.n} jets (1x), {args.threads} torch threads, batch {BATCH}")
    for name, rate, note in rows:
        print(f"  {name:34s} {rate:12.0f} jets/s  {note}")
    print(f"  loader / training rate: {r['loader_over_train']:.1f}x")
    print(f"  disk per jet: {r['bytes_per_jet']:.0f} B float32, {r['bytes_per_jet_float16']:.0f} B float16 "
          f"({r['float16_disk_fraction']:.2f}), {r['bytes_per_jet_sparse']:.0f} B sparse ({r['sparse_disk_fraction']:.2f})")
    print(f"  peak anonymous memory of a loader pass: {r['peak_mb_1x']:.0f} MB at 1x, {r['peak_mb_10x']:.0f} MB at 10x")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
