"""Training throughput of the hepdl engine relative to a bare PyTorch loop, same model and batch size.

    python benchmarks/bench_train.py [--n 3000] [--epochs 2] [--batch-size 128] [--threads 1]

The bare loop trains on in-memory tensors (randperm + slicing, no DataLoader, no
weights, no checkpoints): the upper bound for this model on this machine. The engine
runs twice: on a memory-mapped prepared shard (``PreparedDataset``, the production
path, written to a temporary directory) and on in-memory arrays (``ArrayDataset``).
Printed: samples/s of each and the engine/bare ratio (target >= 0.9 on CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from hepdl.models import build_model
from hepdl.train import ArrayDataset, TrainSettings, train

MODEL = {"name": "jet_cnn", "in_channels": 3, "channels": [32, 64, 64], "head": [64], "dropout": 0.2}


def toy_images(n: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    img = (rng.exponential(0.05, (n, 3, size, size)) * (rng.random((n, 3, size, size)) < 0.15)).astype(np.float32)
    c = size // 2
    img[:, :, c, c] += 1.0
    img[label == 1, 0, c + 4, c] += 0.4
    return {"jet_images": img, "label": label, "weight": np.ones(n, np.float32)}


def write_shard(directory: str, arrays: dict[str, np.ndarray], n_val: int) -> None:
    n = len(arrays["label"])
    split = np.zeros(n, np.uint8)
    split[n - n_val :] = 1
    arrays = {**arrays, "split": split}
    for name, a in arrays.items():
        np.save(os.path.join(directory, f"{name}.npy"), a)
    meta = {"format": "hepdl-prepared-v1", "task": "jets", "n_entries": n,
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "feature_names": {}, "spec": {"task": "jets"}, "fields": {}, "source": {"path": "benchmark"},
            "split": {"seed": 0, "fractions": [1.0, 0.0, 0.0]}}
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f)


def bare_loop(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int) -> float:
    """The simplest correct loop: samples/s over all epochs but the first (warm-up)."""
    model = build_model(MODEL)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    samples, seconds = 0, 0.0
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        n_batches = len(x) // batch_size
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch > 0:
            samples += n_batches * batch_size
            seconds += time.perf_counter() - t0
    return samples / seconds


def engine(train_set, val_set, batch_size: int, epochs: int) -> float:
    settings = TrainSettings(model=MODEL, epochs=epochs + 1, batch_size=batch_size, schedule="none",
                             early_stopping_patience=None, progress="never", log_epochs=False, device="cpu")
    result = train(build_model(MODEL), train_set, val_set, settings)
    rows = result.history[1:]  # skip the warm-up epoch, as for the bare loop
    return sum(r["samples_per_s"] * r["seconds"] for r in rows) / sum(r["seconds"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="training images")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (one more runs as warm-up)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="alternate bare/engine runs; best of each")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_val = 256
    data = toy_images(args.n + n_val, args.size)
    x = torch.from_numpy(data["jet_images"][: args.n])
    y = torch.from_numpy(data["label"][: args.n]).float()
    print(f"{args.n} images 3x{args.size}x{args.size}, batch {args.batch_size}, {args.threads} thread(s), "
          f"{sum(p.numel() for p in build_model(MODEL).parameters())} parameters")

    from hepdl.represent.torch_dataset import PreparedDataset

    # on a shared machine the load changes from second to second: alternate the runs
    # and keep the best of each, so the ratio compares like with like
    bare, in_memory, mapped = 0.0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        write_shard(tmp, data, n_val)
        arrays = ("jet_images", "label", "weight")
        for _ in range(args.repeat):
            bare = max(bare, bare_loop(x, y, args.batch_size, args.epochs))
            in_memory = max(in_memory, engine(ArrayDataset({k: v[: args.n] for k, v in data.items()}),
                                              ArrayDataset({k: v[args.n :] for k, v in data.items()}),
                                              args.batch_size, args.epochs))
            mapped = max(mapped, engine(PreparedDataset([tmp], "train", arrays),
                                        PreparedDataset([tmp], "validation", arrays), args.batch_size, args.epochs))
    print(f"bare PyTorch loop (in-memory tensors):  {bare:8.0f} samples/s")
    print(f"hepdl engine, ArrayDataset (in memory): {in_memory:8.0f} samples/s  ratio {in_memory / bare:.3f}")
    print(f"hepdl engine, PreparedDataset (mmap):   {mapped:8.0f} samples/s  ratio {mapped / bare:.3f}")


if __name__ == "__main__":
    main()
