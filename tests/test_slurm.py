"""The real workflow on a real Slurm, through workflow/profiles/slurm.

Needs a Slurm that answers with an idle node: in CI the one-node Slurm of
``.ci/slurm/start.sh`` (stopped by ``.ci/slurm/stop.sh``). Skipped otherwise.
One workflow run (two generation jobs, each submitted with sbatch) serves most
tests of this module (~30-60 s on 2 cores); a second one trains a model in a
two-process data-parallel job (~2 minutes).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hepdl.io import read_events

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "configs" / "slurm.yaml"
# tests/configs/slurm.yaml: one sim and one data chunk, 50 events each.
TARGETS = ["results/samples/neutrino_sim_0.root", "results/samples/neutrino_data_0.root"]
N_EVENTS = 50
RUN_TIMEOUT_S = 300


def _slurm(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout


def _slurm_skip_reason() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm is not installed (CI: .ci/slurm/start.sh installs and starts it)"
    try:
        states = _slurm("sinfo", "--noheader", "--format=%t").split()
    except (subprocess.SubprocessError, OSError) as err:
        return f"Slurm does not answer (sinfo: {err}); start it with .ci/slurm/start.sh"
    if not any(s.rstrip("*~#") in ("idle", "mix") for s in states):
        return f"no idle Slurm node (sinfo states: {states}); start it with .ci/slurm/start.sh"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install hepdl[cluster])"
    return None


_SKIP = _slurm_skip_reason()
if _SKIP:
    pytestmark = [pytest.mark.slurm, pytest.mark.skip(reason=_SKIP)]


def _cluster_has_gpu() -> bool:
    return "gpu" in _slurm("sinfo", "--noheader", "--format=%G")


def _partitions() -> list[str]:
    return _slurm("sinfo", "--noheader", "--format=%R").split()


def _copy_workflow(dest: Path) -> None:
    """The workflow as a user checks it out: Snakefile, workflow/, config/."""
    shutil.copy2(REPO / "Snakefile", dest / "Snakefile")
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, dest / folder)


def _run_snakemake(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> int:
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            # SIGINT makes Snakemake scancel its jobs; SIGTERM would wait for them.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(
                f"snakemake on Slurm ran over {RUN_TIMEOUT_S} s; log:\n{log.read_text()[-4000:]}"
            )


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the generation jobs of tests/configs/slurm.yaml on Slurm, once per module."""
    workdir = tmp_path_factory.mktemp("slurm_workflow")
    _copy_workflow(workdir)
    gpu = _cluster_has_gpu()
    cmd = [
        sys.executable, "-m", "snakemake", *TARGETS,
        "--workflow-profile", "workflow/profiles/slurm",
        "--configfile", str(CONFIG),
        # The CI cluster answers at once; a short first status check keeps the
        # test quick (its MinJobAge=600 is far above 3x this).
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        "--latency-wait", "5",
        "--retries", "0",
    ]  # fmt: skip
    if gpu:
        # No training rule yet: ask for a GPU the way training rules do (gpu=1).
        # (Last on the line: --set-resources takes every word after it.)
        cmd += ["--set-resources", "generate_neutrino:gpu=1"]
    # The profile takes the partition from HEPDL_SLURM_PARTITION; use a
    # non-default one when the cluster has it (.ci/slurm has "gpu").
    partition = "gpu" if "gpu" in _partitions() else None
    env = dict(os.environ)
    env.pop("HEPDL_SLURM_ACCOUNT", None)  # sacctmgr would have to know it
    env.pop("HEPDL_SLURM_PARTITION", None)
    if partition:
        env["HEPDL_SLURM_PARTITION"] = partition
    log = workdir / "snakemake.log"
    rc = _run_snakemake(cmd, workdir, log, env)
    text = log.read_text()
    assert rc == 0, f"snakemake on Slurm failed (exit {rc}); log:\n{text[-6000:]}"
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
    return {
        "workdir": workdir,
        "log": text,
        "job_ids": job_ids,
        "gpu": gpu,
        "partition": partition,
    }


def test_every_job_goes_through_sbatch(slurm_run: dict) -> None:
    assert len(slurm_run["job_ids"]) >= 2, slurm_run["log"][-4000:]
    # The plugin keeps one Slurm log per job (--slurm-keep-successful-logs).
    logs = sorted((slurm_run["workdir"] / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= set(slurm_run["job_ids"]), logs
    # ... and Slurm itself ran them (MinJobAge keeps finished jobs visible).
    for job_id in slurm_run["job_ids"]:
        info = _slurm("scontrol", "show", "job", job_id)
        assert "JobState=COMPLETED" in info, info
        assert "generate_neutrino" in info, info  # the rule name is the job's comment


def test_partition_from_environment(slurm_run: dict) -> None:
    if slurm_run["partition"] is None:
        pytest.skip("this Slurm has no partition 'gpu' (.ci/slurm/start.sh makes one)")
    for job_id in slurm_run["job_ids"]:
        info = _slurm("scontrol", "show", "job", job_id)
        assert f"Partition={slurm_run['partition']} " in info, info


def test_outputs_read_back(slurm_run: dict) -> None:
    labels = []
    for target in TARGETS:
        path = slurm_run["workdir"] / target
        assert path.is_file(), f"{target} missing after the Slurm run"
        events = read_events(path, "events", ["hit_view", "hit_e", "label"])
        assert len(events) == N_EVENTS
        labels.append(events["label"].to_numpy())
    # Each chunk has its own seed: the two samples differ.
    assert not (labels[0] == labels[1]).all()


def test_gpu_request_reaches_slurm(slurm_run: dict) -> None:
    if not slurm_run["gpu"]:
        pytest.skip("this Slurm has no GPU (gres/gpu); .ci/slurm/start.sh configures a fake one")
    for job_id in slurm_run["job_ids"]:
        info = _slurm("scontrol", "show", "--details", "job", job_id)
        # resources gpu=1 -> sbatch --gpus=1 -> one GPU allocated on the node.
        assert re.search(r"TresPerJob=\S*gres:gpu:1", info), info
        assert re.search(r"JOB_GRES=gpu(:\w+)?:1\b", info), info


def test_gpu_job_sees_its_gpu() -> None:
    """What a training job relies on: a job given a GPU gets CUDA_VISIBLE_DEVICES."""
    if not _cluster_has_gpu():
        pytest.skip("this Slurm has no GPU (gres/gpu)")
    # srun: an interactive job answers at once (sbatch --wait polls for seconds).
    # --export=NONE: the job must not inherit CUDA_VISIBLE_DEVICES from this shell.
    show = "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
    for gpus, expect in (("1", r"CUDA_VISIBLE_DEVICES=\d"), (None, "CUDA_VISIBLE_DEVICES=unset")):
        cmd = ["srun", "--export=NONE", "--time=1", "--mem=100"]
        cmd += [f"--gpus={gpus}"] if gpus else []
        cmd += ["/bin/sh", "-c", show]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
        assert re.fullmatch(expect, out.strip()), (gpus, out)


DATA_PARALLEL = """
neutrino:
  generate: {chunks: 1, data_chunks: 1, n_events_per_chunk: 400}
  models:
    # the same MLP (no dropout, no batch norm: DDP is then exact) trained two ways
    two_gpus: {model: {name: jet_mlp, hidden: [16], dropout: 0.0}, epochs: 3, batch_size: 16,
               early_stopping_patience: null, resources: {gpu: 2, threads: 2, mem_mb: 2000, runtime: 10}}
    one_process: {model: {name: jet_mlp, hidden: [16], dropout: 0.0}, epochs: 3, batch_size: 32,
                  early_stopping_patience: null, resources: {gpu: 0, threads: 1, mem_mb: 2000, runtime: 10}}
"""


def test_a_two_gpu_training_job_runs_two_processes_through_sbatch(tmp_path: Path) -> None:
    """resources gpu: 2 -> sbatch --gpus=2 -> torchrun with 2 data-parallel processes in the job (gloo on
    the CPU here). Two ranks of 16 entries per step see exactly the batches of one process with 32."""

    from hepdl.models import load_model_file

    if "gpu:2" not in _slurm("scontrol", "show", "node"):
        pytest.skip("this Slurm has fewer than 2 GPUs; .ci/slurm/start.sh configures 2 fake ones")
    _copy_workflow(tmp_path)
    overlay = tmp_path / "ddp.yaml"
    overlay.write_text(DATA_PARALLEL)
    targets = ["results/neutrino/two_gpus/model.pt", "results/neutrino/one_process/model.pt"]
    cmd = [sys.executable, "-m", "snakemake", *targets, "--workflow-profile", "workflow/profiles/slurm",
           "--configfile", str(CONFIG), str(overlay), "--slurm-init-seconds-before-status-checks", "2",
           "--slurm-keep-successful-logs", "--latency-wait", "5", "--retries", "0"]
    env = {k: v for k, v in os.environ.items() if k not in ("HEPDL_SLURM_ACCOUNT", "HEPDL_SLURM_PARTITION")}
    log = tmp_path / "snakemake.log"
    rc = _run_snakemake(cmd, tmp_path, log, env)
    text = log.read_text()
    assert rc == 0, f"snakemake on Slurm failed (exit {rc}); log:\n{text[-6000:]}"
    train_log = (tmp_path / "results" / "logs" / "train_neutrino_two_gpus.log").read_text()
    jobs = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
    infos = [_slurm("scontrol", "show", "--details", "job", j) for j in jobs]
    two = [i for i in infos if "train_network" in i and re.search(r"TresPerJob=\S*gres:gpu:2", i)]
    assert two, infos
    assert "torchrun --standalone --nproc_per_node=2" in text
    info = __import__("json").loads((tmp_path / "results" / "neutrino" / "two_gpus" / "train_info.json").read_text())
    assert info["world_size"] == 2, train_log[-2000:]
    ddp, _ = load_model_file(tmp_path / targets[0])
    single, _ = load_model_file(tmp_path / targets[1])
    difference = max(float((a - b).abs().max()) for a, b in zip(ddp.state_dict().values(), single.state_dict().values(),
                                                                  strict=True))
    print(f"largest weight difference, 2 ranks x 16 vs 1 process x 32: {difference:.2e}")
    assert difference < 1e-5  # float summation order only (gloo's all-reduce)
