"""GPU check of the training engine (< 3 minutes on one GPU): throughput and mixed-precision sanity.

    python benchmarks/gpu_train_check.py            # on a machine with CUDA
    python benchmarks/gpu_train_check.py --smoke    # tiny CPU run: checks the script itself

Measures training samples/s of the jet CNN on 3x32x32 images for:
bare PyTorch loop fp32 | engine fp32 | engine bf16 autocast | engine bf16 + channels-last |
engine fp16 + GradScaler, and checks every variant learns the toy (validation AUC)
and gives finite losses. Prints one JSON line per variant and a summary table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from hepdl.models import build_model
from hepdl.train import ArrayDataset, TrainSettings, train

MODEL = {"name": "jet_cnn", "in_channels": 3, "channels": [64, 128, 128], "head": [128], "dropout": 0.2}


def toy_images(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    img = (rng.exponential(0.05, (n, 3, size, size)) * (rng.random((n, 3, size, size)) < 0.15)).astype(np.float32)
    c = size // 2
    img[:, :, c, c] += 1.0
    img[label == 1, 0, c + 4, c] += rng.uniform(0.2, 0.5, int((label == 1).sum())).astype(np.float32)
    return {"jet_images": img, "label": label, "weight": np.ones(n, np.float32)}


def bare_loop(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int, device: torch.device) -> float:
    model = build_model(MODEL).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = x.to(device), y.to(device)
    samples, seconds = 0, 0.0
    for epoch in range(epochs + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        order = torch.randperm(len(x), device=device)
        n_batches = len(x) // batch_size
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if epoch > 0:
            samples += n_batches * batch_size
            seconds += time.perf_counter() - t0
    return samples / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run to check the script")
    parser.add_argument("--n", type=int, default=40000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (one more runs as warm-up)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.batch_size, args.epochs = 600, 64, 1
        device = torch.device("cpu")
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        print("no CUDA device: run with --smoke for a CPU check of the script", file=sys.stderr)
        return 1
    else:
        device = torch.device("cuda")
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    train_data, val_data = toy_images(args.n, 32, 0), toy_images(max(args.n // 10, 256), 32, 1)
    x = torch.from_numpy(train_data["jet_images"])
    y = torch.from_numpy(train_data["label"]).float()

    results = {"bare fp32": {"samples_per_s": bare_loop(x, y, args.batch_size, args.epochs, device)}}
    print(json.dumps({"variant": "bare fp32", **results["bare fp32"]}), flush=True)
    variants = {
        "engine fp32": {"precision": "fp32", "channels_last": False},
        "engine bf16": {"precision": "bf16", "channels_last": False},
        "engine bf16 channels-last": {"precision": "bf16", "channels_last": True},
        "engine fp16 GradScaler": {"precision": "fp16", "channels_last": True},
    }
    if args.smoke:
        variants = {k: v for k, v in variants.items() if "fp16" not in k}  # fp16 autocast needs a GPU
    failures = []
    for name, options in variants.items():
        settings = TrainSettings(model=MODEL, epochs=args.epochs + 1, batch_size=args.batch_size, device=str(device),
                                 schedule="none", early_stopping_patience=None, progress="never", log_epochs=False,
                                 eval_batch_size=2048, **options)
        result = train(build_model(MODEL), ArrayDataset(train_data), ArrayDataset(val_data), settings)
        rows = result.history[1:]
        rate = sum(r["samples_per_s"] * r["seconds"] for r in rows) / sum(r["seconds"] for r in rows)
        last = result.history[-1]
        results[name] = {"samples_per_s": rate, "val_auc": last["val_auc"], "val_loss": last["val_loss"],
                         "precision": result.precision, "channels_last": result.info["channels_last"]}
        print(json.dumps({"variant": name, **results[name]}), flush=True)
        if not (np.isfinite(last["val_loss"]) and last["val_auc"] > 0.8):
            failures.append(name)
    bare = results["bare fp32"]["samples_per_s"]
    print(f"\n{'variant':28s} {'samples/s':>10s} {'vs bare':>8s} {'val AUC':>8s}")
    for name, r in results.items():
        auc = f"{r['val_auc']:.4f}" if "val_auc" in r else "-"
        print(f"{name:28s} {r['samples_per_s']:10.0f} {r['samples_per_s'] / bare:8.2f} {auc:>8s}")
    if failures:
        print(f"FAILED (non-finite loss or AUC <= 0.8): {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
