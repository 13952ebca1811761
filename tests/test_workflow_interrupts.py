"""The workflow stopped and started again: Ctrl-C, kill -9, the same command afterwards.

Real Snakemake runs of one small training (toy jets as the user's ROOT files, prepared by the
workflow): SIGINT to snakemake stops the training within seconds, with a checkpoint; the same
command resumes it; kill -9 of snakemake and its jobs leaves Snakemake's lock, which the same
command clears, and the training resumes again and ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from test_workflow import SNAKEMAKE, _copy_workflow
from toy_trained_models import write_toy_file

EPOCHS = 6
TARGET = "results/jets/cnn/model.pt"


def _start(work: Path, config: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*SNAKEMAKE, TARGET, "--cores", "2", "--configfile", str(config)], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_log(proc: subprocess.Popen, log: Path, text: str, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not (log.exists() and text in log.read_text()):
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended before {text!r}: {proc.communicate()[1][-3000:]}")
        assert time.monotonic() - t0 < timeout, f"no {text!r} in {log}"
        time.sleep(0.1)


def _epochs_done(work: Path) -> int:
    return len((work / "results/jets/cnn/metrics.csv").read_text().splitlines()) - 1


@pytest.mark.slow  # three snakemake runs and a training: minutes on a busy 2-core machine
def test_ctrl_c_stops_training_within_seconds_and_kill9_resumes_with_the_same_command(tmp_path):
    work = _copy_workflow(tmp_path / "wf")
    files = []
    for i in range(2):
        files.append(str(tmp_path / f"toy_{i}.root"))
        write_toy_file(files[-1], 300, seed=20 + i)
    config = tmp_path / "my.yaml"
    config.write_text(json.dumps({"tasks": ["jets"], "jets": {"sim": files, "models": {"cnn": {
        "model": {"name": "jet_cnn", "channels": [4, 8], "head": [8]}, "epochs": EPOCHS, "batch_size": 16,
        "early_stopping_patience": None, "device": "cpu"}}}}))
    log = work / "results/logs/train_jets_cnn.log"

    # Ctrl-C (SIGINT to snakemake alone, as `kill -INT` sends it): every job gone within seconds
    proc = _start(work, config)
    _wait_for_log(proc, log, "epoch 1/")
    jobs = psutil.Process(proc.pid).children(recursive=True)
    assert any("train" in " ".join(p.cmdline()) for p in jobs)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, alive = psutil.wait_procs(jobs, timeout=30)
    stopped_after = time.monotonic() - t0
    _, err = proc.communicate(timeout=60)
    assert not alive and stopped_after < 10, (stopped_after, err[-3000:])
    assert proc.returncode != 0
    assert "[jets/cnn] epoch 1/6: train loss" in err  # the console shows the epochs
    assert "[jets/cnn] hepdl train: SIGTERM: checkpoint written at epoch" in err
    assert (work / "results/jets/cnn/checkpoint.pt").exists() and not (work / TARGET).exists()
    assert not list((work / ".snakemake" / "locks").glob("*.lock"))  # a clean stop leaves no lock
    interrupted_at = _epochs_done(work)

    # the same command resumes the training; kill -9 of snakemake and its jobs (a crash) then
    # leaves Snakemake's lock behind
    proc = _start(work, config)
    _wait_for_log(proc, log, "resuming from")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert list((work / ".snakemake" / "locks").glob("*.lock"))

    # ... which the same command clears: the training resumes once more and ends
    proc = _start(work, config)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "removed the stale lock .snakemake/locks" in err
    assert "[jets/cnn] hepdl train: resuming from results/jets/cnn/checkpoint.pt at epoch" in err
    info = json.loads((work / "results/jets/cnn/train_info.json").read_text())
    assert info["epochs_run"] == EPOCHS and _epochs_done(work) == EPOCHS and interrupted_at < EPOCHS


def test_a_live_run_keeps_its_lock(tmp_path):
    """The lock is cleared only when its holder is gone: while a snakemake of the folder (here a
    process holding the run lock as every snakemake and job of the workflow does) lives, a second
    one stops on Snakemake's lock, and says why."""
    work = _copy_workflow(tmp_path / "wf")
    locks = work / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/samples/jets_sim_0.root\n")
    holder = subprocess.Popen(["flock", "-s", str(work / ".snakemake" / "hepdl-run.lock"), "sleep", "60"])
    try:
        time.sleep(0.5)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        run = subprocess.run([*SNAKEMAKE, "--cores", "1", "results/samples/jets_sim_0.root"], cwd=work,
                             capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode != 0 and (locks / "0.output.lock").exists(), run.stderr[-3000:]
        assert "hepdl workflow: .snakemake/locks is held" in run.stderr
        assert "Directory cannot be locked" in run.stdout + run.stderr
    finally:
        holder.kill()
        holder.wait()
