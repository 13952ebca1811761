"""hepdl.train_model: a whole training run from Python, and hepdl train as a thin call of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from toy_trained_models import write_toy_file

import hepdl
from hepdl.errors import ConfigError, HepdlError
from hepdl.models import load_model_file
from hepdl.represent import prepare_file

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two prepared toy-jet shards laid out as the workflow writes them (results/prepared/jets_sim_<i>)."""
    work = tmp_path_factory.mktemp("training_run")
    paths = []
    for i in range(2):
        write_toy_file(work / f"toy_{i}.root", 200, seed=10 + i)
        path = work / "results" / "prepared" / f"jets_sim_{i}"
        prepare_file("jets", str(work / f"toy_{i}.root"), str(path), spec={"image": {"size": [16, 16]}}, seed=3)
        paths.append(str(path))
    return work, paths


def test_readme_example_trains_the_default_cnn(shards):
    work, _ = shards
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_from_python.py")], cwd=work, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "test AUC" in proc.stdout and "TrainedModel('jet_cnn'" in proc.stdout
    assert {"model.pt", "checkpoint.pt", "metrics.csv", "training_curve.png", "test_scores.npz", "val_scores.npz",
            "train_info.json"} <= set(os.listdir(work / "my_cnn"))
    info = json.loads((work / "my_cnn" / "train_info.json").read_text())
    assert info["epochs_run"] == 12 and info["settings"]["reweight"] == "pt"
    assert info["settings"]["model"]["spatial_pool"] == 4 and info["settings"]["model"]["in_channels"] == 3


def test_the_cli_is_a_thin_call_of_train_model(shards, tmp_path):
    _, paths = shards
    settings = {"model": {"name": "jet_cnn", "channels": [4, 8], "head": [8]}, "epochs": 2, "batch_size": 32,
                "progress": "never", "device": "cpu", "seed": 5}
    torch.set_num_threads(1)
    run = hepdl.train_model(paths, settings, tmp_path / "library")
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    proc = subprocess.run([sys.executable, "-m", "hepdl.cli", "train", "--shards", *paths, "--output",
                           str(tmp_path / "cli"), "--settings", str(tmp_path / "settings.json"), "--threads", "1"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    library, _ = load_model_file(run.model_file)
    cli, info = load_model_file(tmp_path / "cli" / "model.pt")
    for (name, a), (_, b) in zip(library.state_dict().items(), cli.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert info["task"] == "jets" and info["classes"] == ["background", "signal"]
    assert run.metrics == info["metrics"] and run.scores["test"]["score"].shape == (len(run.scores["test"]["label"]),)


def test_targets_come_from_the_shards(shards, tmp_path):
    _, paths = shards
    meta = json.loads((Path(paths[0]) / "meta.json").read_text())
    assert meta["targets"] == {"kind": "classes", "names": ["background", "signal"], "signal": "signal", "minimum": 2}
    from hepdl.train.training_run import shard_targets

    assert shard_targets(meta).names == ("background", "signal")
    del meta["targets"]  # shards written before targets were recorded: the task's declaration
    assert shard_targets(meta).signal == "signal"


def test_bad_settings_and_inputs_fail_before_training(shards, tmp_path):
    _, paths = shards
    with pytest.raises(ConfigError, match="learning_rte"):
        hepdl.train_model(paths, {"learning_rte": 0.1}, tmp_path / "a")
    with pytest.raises(ConfigError, match="objective"):
        hepdl.train_model(paths, {"objective": "clasify"}, tmp_path / "b")
    with pytest.raises(ConfigError, match="data sample"):
        hepdl.train_model(paths, {"objective": "adapt", "model": {"name": "jet_cnn"}}, tmp_path / "c")
    with pytest.raises(HepdlError, match="no meta.json"):
        hepdl.train_model([str(tmp_path)], {}, tmp_path / "d")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


SMALL_CNN = {"model": {"name": "jet_cnn", "channels": [4, 8], "head": [8]}, "batch_size": 16, "device": "cpu",
             "seed": 5, "early_stopping_patience": None}


def _train_cli(paths, out, settings, *extra, wait=True):
    """``hepdl train`` the way the workflow's rule calls it (--resume-if-unchanged, --log-file, --name)."""
    cmd = [sys.executable, "-m", "hepdl.cli", "train", "--shards", *paths, "--output", str(out), "--settings",
           json.dumps(settings), "--threads", "1", "--resume-if-unchanged", "--log-file", str(out) + ".log",
           "--name", "jets/cnn", *extra]
    if not wait:
        return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def test_log_file_gets_everything_and_the_console_one_line_per_epoch(shards, tmp_path):
    _, paths = shards
    proc = _train_cli(paths, tmp_path / "run", {**SMALL_CNN, "epochs": 2})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["[jets/cnn] epoch 1/2", "[jets/cnn] epoch 2/2",
                                                      "[jets/cnn] hepdl train"], lines
    assert "best epoch" in lines[-1] and proc.stdout == ""
    log = (tmp_path / "run.log").read_text()
    assert "epoch 1/2: train loss" in log and "epoch 2/2: train loss" in log and "hepdl train: best epoch" in log
    assert "[jets/cnn]" not in log


def _wait_for_epochs(proc, out, n, timeout=120):
    t0 = time.monotonic()
    while not (out / "metrics.csv").exists() or len((out / "metrics.csv").read_text().splitlines()) - 1 < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() - t0 < timeout, "the training did not reach its epoch"
        time.sleep(0.05)


def test_preempted_training_resumes_with_the_same_settings_and_restarts_when_they_changed(shards, tmp_path):
    """A training job killed (SIGKILL: no chance to clean up) after its first epoch, rerun with the same
    command: it continues from the checkpoint; with a changed setting or a changed input: from scratch."""
    _, paths = shards
    out = tmp_path / "run"
    settings = {**SMALL_CNN, "epochs": 40}
    proc = _train_cli(paths, out, settings, wait=False)
    _wait_for_epochs(proc, out, 1)
    proc.kill()
    proc.communicate(timeout=60)
    done = len((out / "metrics.csv").read_text().splitlines()) - 1
    assert (out / "checkpoint.pt").exists() and 1 <= done < 40
    # the same command, fewer epochs would be another run: same settings, interrupted again by SIGTERM
    proc = _train_cli(paths, out, settings, wait=False)
    _wait_for_epochs(proc, out, done + 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err  # checkpoint written, rerun invited
    assert f"[jets/cnn] hepdl train: resuming from {out / 'checkpoint.pt'} at epoch {done + 1}" in err
    assert "[jets/cnn] hepdl train: SIGTERM: checkpoint written at epoch" in err
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    # a changed setting: the checkpoint is another run's, the run starts from scratch
    changed = _train_cli(paths, out, {**settings, "epochs": 2, "learning_rate": 0.002})
    assert changed.returncode == 0, changed.stderr
    assert "belongs to another run (setting 'epochs' changed); starting from scratch" in changed.stderr
    assert "resuming" not in changed.stderr
    info = json.loads((out / "train_info.json").read_text())
    assert info["epochs_run"] == 2 and ckpt["epoch"] == done + 1 and ckpt["history"][-1]["epoch"] == done + 1
    # unchanged settings, a shard prepared anew (a changed input file): from scratch too
    again = _train_cli(paths, out, {**settings, "epochs": 2, "learning_rate": 0.002})
    assert "resuming from" in again.stderr and again.returncode == 0  # the finished run: nothing to redo
    meta = Path(paths[0]) / "meta.json"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 1_000_000_000))
    touched = _train_cli(paths, out, {**settings, "epochs": 2, "learning_rate": 0.002})
    assert touched.returncode == 0 and "(its input files changed); starting from scratch" in touched.stderr
