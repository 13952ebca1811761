"""Data-parallel training: torchrun with 2 CPU processes (gloo) trains and keeps the ranks in step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from hepdl.models import build_model
    from hepdl.train import ArrayDataset, TrainSettings, train

    def toy(n, seed, size=12):
        rng = np.random.default_rng(seed)
        label = (rng.random(n) < 0.5).astype(np.int64)
        img = (rng.exponential(0.05, (n, 1, size, size)) * (rng.random((n, 1, size, size)) < 0.2)).astype(np.float32)
        c, rows = size // 2, np.arange(n)
        img[rows, 0, c, c] += 1.0
        sig = label == 1
        img[rows[sig], 0, c + 3, c] += rng.uniform(0.3, 0.6, sig.sum()).astype(np.float32)
        return {"jet_images": img, "label": label}

    out_dir = sys.argv[1]
    settings = TrainSettings(model={"name": "jet_cnn", "in_channels": 1, "channels": [4, 8], "head": [8]},
                             epochs=3, batch_size=32, learning_rate=0.01, progress="never",
                             early_stopping_patience=None)
    result = train(build_model(settings.model), ArrayDataset(toy(600, 0)), ArrayDataset(toy(200, 1)), settings,
                   out_dir=out_dir)
    rank = int(os.environ["RANK"])
    torch.save(result.model.state_dict(), f"{out_dir}/weights_rank{rank}.pt")
    with open(f"{out_dir}/result_rank{rank}.json", "w") as f:
        json.dump({"world_size": result.info["world_size"], "history": result.history}, f)
    """
)


@pytest.mark.skipif(
    shutil.which("torchrun") is None
    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
    reason="torchrun not installed",
)
def test_torchrun_two_cpu_ranks_train_in_step(tmp_path):
    script = tmp_path / "ddp_toy.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    out.mkdir()
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--nproc_per_node=2", "--standalone", str(script), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((out / f"result_rank{r}.json").read_text()) for r in range(2)]
    assert all(r["world_size"] == 2 for r in results)
    history = results[0]["history"]
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_auc"] > 0.75
    # every rank sees the same validation metrics (gathered over ranks) and holds the same weights
    def same_on_all_ranks(row):
        return {k: v for k, v in row.items() if k not in ("seconds", "samples_per_s")}

    assert [same_on_all_ranks(r) for r in results[1]["history"]] == [same_on_all_ranks(r) for r in history]
    w0 = torch.load(out / "weights_rank0.pt", weights_only=True)
    w1 = torch.load(out / "weights_rank1.pt", weights_only=True)
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key
    # only rank 0 wrote the run's files: one metrics.csv with one row per epoch
    assert len((out / "metrics.csv").read_text().splitlines()) == 4
    assert (out / "checkpoint.pt").exists()
