"""GPU check of the training engine (a few minutes on one GPU): throughput, data path, mixed precision.

    python benchmarks/gpu_train_check.py            # on a machine with CUDA
    python benchmarks/gpu_train_check.py --smoke    # tiny CPU run: checks the script itself

Measures training samples/s (and the GPU's mean utilisation, from nvidia-smi, where it answers) of
the jet CNN on 3x32x32 images for: bare PyTorch loop fp32 | engine fp32 | engine bf16 autocast |
bf16 + channels-last | fp16 + GradScaler | bf16 with the data on the host (the loader's thread,
pinned memory) instead of device-resident | bf16 + torch.compile; then every other model family
(expert MLP, two-view CVN, track RNN, combined tagger, image autoencoder) in bf16, device-resident.
Checks that every classifier learns its toy (validation AUC) with finite losses. Prints one JSON
line per variant and a summary table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
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


def toy_family(name: str, n: int, seed: int) -> tuple[dict, dict[str, np.ndarray]]:
    """(model config, arrays) of a learnable toy for each model family."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    base = {"label": label, "weight": np.ones(n, np.float32)}
    if name == "jet_mlp":
        x = rng.normal(size=(n, 9)).astype(np.float32)
        x[:, 0] += 3 * label
        return {"name": "jet_mlp", "n_features": 9}, {**base, "expert": x}
    if name == "two_view_cvn":  # three classes, as nu_mu CC, nu_e CC, NC (a CVN is multi-class)
        label = rng.integers(0, 3, n)
        maps = (rng.exponential(5.0, (n, 2, 100, 80)) * (rng.random((n, 2, 100, 80)) < 0.02)).astype(np.float32)
        maps[label == 1, :, 10:40, 40] += 20.0  # a track-like line in both views
        maps[label == 2, :, 10:20, 30:50] += 5.0  # a shower-like blob
        return {"name": "two_view_cvn", "n_outputs": 3}, {**base, "label": label, "pixel_maps": maps}
    tracks = rng.normal(size=(n, 30, 6)).astype(np.float32)
    tracks[label == 1, :, 0] += 1.0
    mask = rng.random((n, 30)) < 0.6
    if name == "track_rnn":
        return {"name": "track_rnn", "n_features": 6}, {**base, "tracks": tracks, "track_mask": mask}
    images = toy_images(n, 32, seed)
    if name == "combined_tagger":
        return ({"name": "combined_tagger", "in_channels": 3, "n_track_features": 6},
                {**base, "label": images["label"], "jet_images": images["jet_images"], "tracks": tracks,
                 "track_mask": mask})
    return ({"name": "jet_image_autoencoder", "in_channels": 3, "image_size": [32, 32], "channels": [32, 64, 64],
             "latent_dim": 32}, images)


class Utilisation:
    """Mean GPU utilisation (%) while a variant trains, sampled from nvidia-smi (None where it does not answer)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            time.sleep(0.2)

    def __enter__(self) -> Utilisation:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


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
        "engine bf16, data on the host": {"precision": "bf16", "channels_last": True, "data_on_device": "never"},
        "engine bf16 + compile": {"precision": "bf16", "channels_last": True, "compile": True},
    }
    if args.smoke:
        variants = {k: v for k, v in variants.items() if "fp16" not in k and "compile" not in k}  # need a GPU
    failures = []

    def run(name: str, model: dict, train_data: dict, val_data: dict, *, must_learn: bool = True, **options) -> None:
        settings = TrainSettings(model=model, epochs=args.epochs + 1, batch_size=args.batch_size, device=str(device),
                                 schedule="none", early_stopping_patience=None, progress="never", log_epochs=False,
                                 eval_batch_size=2048, **options)
        with Utilisation() as gpu:
            result = train(build_model(model), ArrayDataset(train_data), ArrayDataset(val_data), settings)
        rows = result.history[1:]
        rate = sum(r["samples_per_s"] * r["seconds"] for r in rows) / sum(r["seconds"] for r in rows)
        last = result.history[-1]
        results[name] = {"samples_per_s": rate, "gpu_utilisation": gpu.mean, "val_loss": last["val_loss"],
                         "val_auc": last.get("val_auc"), "precision": result.precision,
                         "channels_last": result.info["channels_last"]}
        print(json.dumps({"variant": name, **results[name]}), flush=True)
        learnt = not must_learn or last.get("val_auc") is None or last["val_auc"] > 0.8  # an autoencoder has no AUC
        if not (np.isfinite(last["val_loss"]) and learnt):
            failures.append(name)

    for name, options in variants.items():
        run(name, MODEL, train_data, val_data, **options)
    families = ("jet_mlp", "two_view_cvn", "track_rnn", "combined_tagger", "jet_image_autoencoder")
    for family in families:
        n = args.n if family != "two_view_cvn" else max(args.n // 8, 256)  # pixel maps are 5x an image
        model, data = toy_family(family, n, 0)
        _, val = toy_family(family, max(n // 10, 256), 1)
        objective = {"objective": "autoencode"} if family == "jet_image_autoencoder" else {}
        # --smoke: one epoch of a few hundred entries checks that each family runs, not that it learns
        run(f"{family} bf16", model, data, val, precision="bf16" if not args.smoke else "fp32",
            must_learn=not args.smoke, **objective)
    bare = results["bare fp32"]["samples_per_s"]
    print(f"\n{'variant':32s} {'samples/s':>10s} {'vs bare':>8s} {'GPU %':>6s} {'val AUC':>8s}")
    for name, r in results.items():
        auc = f"{r['val_auc']:.4f}" if r.get("val_auc") is not None else "-"
        util = f"{r['gpu_utilisation']:.0f}" if r.get("gpu_utilisation") is not None else "-"
        print(f"{name:32s} {r['samples_per_s']:10.0f} {r['samples_per_s'] / bare:8.2f} {util:>6s} {auc:>8s}")
    if failures:
        print(f"FAILED (non-finite loss or AUC <= 0.8): {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
