"""A killed or pre-empted training run, resumed, ends exactly where an uninterrupted run ends.

Each run is a subprocess executing the script below: kill -9 after epoch 2's checkpoint
exists, then ``resume=True``; and SIGTERM mid-epoch (checkpoint at the current batch,
exit status 75), then ``resume=True``. Dropout, batch norm, augmentation and a cosine
schedule are all on, so every piece of state the checkpoint carries matters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from hepdl.train import PREEMPTED_EXIT_CODE

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from hepdl.models import build_model
    from hepdl.stats import auc
    from hepdl.train import ArrayDataset, PREEMPTED_EXIT_CODE, TrainSettings, predict, train

    def toy(n, seed, size=16):
        rng = np.random.default_rng(seed)
        label = (rng.random(n) < 0.5).astype(np.int64)
        img = (rng.exponential(0.05, (n, 1, size, size)) * (rng.random((n, 1, size, size)) < 0.2)).astype(np.float32)
        c, rows = size // 2, np.arange(n)
        img[rows, 0, c, c] += rng.uniform(0.5, 1.0, n).astype(np.float32)
        sig = label == 1
        img[rows[sig], 0, c + rng.integers(3, 6, sig.sum()), c] += rng.uniform(0.3, 0.6, sig.sum()).astype(np.float32)
        return {"jet_images": img, "label": label}

    class SlowDataset(ArrayDataset):
        # slow enough that the test can interrupt an epoch in its middle
        def __getitems__(self, indices):
            time.sleep(0.015)
            return super().__getitems__(indices)

    out_dir, resume = sys.argv[1], sys.argv[2] == "resume"
    settings = TrainSettings(
        model={"name": "jet_cnn", "in_channels": 1, "channels": [8, 16], "head": [16], "dropout": 0.3},
        epochs=4, batch_size=64, seed=7, augment=True, augment_reflect=["rows"], augment_shift=1,
        augment_noise=0.05, schedule="cosine", early_stopping_patience=None, progress="never", log_epochs=False)
    train_set, val_set, test_set = SlowDataset(toy(1000, 0)), ArrayDataset(toy(300, 1)), ArrayDataset(toy(400, 2))
    result = train(build_model(settings.model), train_set, val_set, settings, out_dir=out_dir, resume=resume)
    if result.preempted:
        sys.exit(PREEMPTED_EXIT_CODE)
    torch.save(result.model.state_dict(), f"{out_dir}/final.pt")
    out = predict(result.model, test_set, keys=("label",))
    with open(f"{out_dir}/result.json", "w") as f:
        json.dump({"auc": auc(out["score"], out["label"]), "history": result.history}, f)
    """
)


def _start(script, out_dir, mode):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out_dir), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs_logged(out_dir) -> int:
    path = os.path.join(out_dir, "metrics.csv")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return max(len(f.read().splitlines()) - 1, 0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run reference, kill -9 and SIGTERM cases side by side (the machine has 2 cores), then both resumes."""
    base = tmp_path_factory.mktemp("resume")
    script = base / "train_toy.py"
    script.write_text(SCRIPT)
    dirs = {name: base / name for name in ("reference", "killed", "preempted")}
    procs = {name: _start(script, d, "fresh") for name, d in dirs.items()}
    report: dict = {}
    t0, term_at = time.monotonic(), None
    # signals only in this loop (never a blocking wait), so each lands where it is meant to
    while "killed" not in report or "preempted" not in report:
        assert time.monotonic() - t0 < 90, "interruption cases did not reach their epochs"
        for name in ("killed", "preempted"):
            if name not in report and procs[name].poll() is not None:
                raise AssertionError(f"{name} run ended before being interrupted: {procs[name].stderr.read()}")
        if "killed" not in report and _epochs_logged(dirs["killed"]) >= 2:
            procs["killed"].kill()  # SIGKILL: no handler, no cleanup
            report["killed"] = True
        if term_at is None and _epochs_logged(dirs["preempted"]) >= 1:
            term_at = time.monotonic() + 0.1  # into epoch 2, between batches
        if term_at is not None and "preempted" not in report and time.monotonic() >= term_at:
            procs["preempted"].send_signal(signal.SIGTERM)
            report["preempted"] = True
        time.sleep(0.002)
    procs["killed"].communicate(timeout=30)
    report["killed"] = (procs["killed"].returncode, _epochs_logged(dirs["killed"]))
    _, err = procs["preempted"].communicate(timeout=60)
    report["preempted_rc"], report["preempted_err"] = procs["preempted"].returncode, err
    report["preempted_ckpt"] = torch.load(dirs["preempted"] / "checkpoint.pt", weights_only=True)
    report["preempted_files"] = os.listdir(dirs["preempted"])
    resumes = {name: _start(script, dirs[name], "resume") for name in ("killed", "preempted")}
    _, err = procs["reference"].communicate(timeout=120)
    assert procs["reference"].returncode == 0, err
    for name, proc in resumes.items():
        _, err = proc.communicate(timeout=120)
        report[f"{name}_resume"] = (proc.returncode, err)
    return dirs, report


def _assert_same_result(ref, other):
    a = torch.load(ref / "final.pt", weights_only=True)
    b = torch.load(other / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"
    ra = json.loads((ref / "result.json").read_text())
    rb = json.loads((other / "result.json").read_text())
    assert rb["auc"] == ra["auc"]
    assert ra["auc"] > 0.7  # the toy is learnt, so equality is not of two untrained models
    assert [r["val_loss"] for r in rb["history"]] == [r["val_loss"] for r in ra["history"]]


def test_kill9_then_resume_gives_identical_model(runs):
    dirs, report = runs
    rc, done = report["killed"]
    assert rc == -signal.SIGKILL
    assert 2 <= done < 4  # killed in the middle of the run
    rc, err = report["killed_resume"]
    assert rc == 0, err
    assert "resuming from" in err
    _assert_same_result(dirs["reference"], dirs["killed"])


def test_sigterm_checkpoints_mid_epoch_and_resume_matches(runs):
    dirs, report = runs
    assert report["preempted_rc"] == PREEMPTED_EXIT_CODE, report["preempted_err"]
    assert "SIGTERM: checkpoint written" in report["preempted_err"]
    ckpt = report["preempted_ckpt"]
    assert ckpt["epoch"] < 4 and ckpt["batch"] > 0  # a checkpoint inside an epoch
    assert not [f for f in report["preempted_files"] if ".tmp" in f or f == "final.pt"]
    rc, err = report["preempted_resume"]
    assert rc == 0, err
    assert f"batch {ckpt['batch']}" in err
    _assert_same_result(dirs["reference"], dirs["preempted"])
