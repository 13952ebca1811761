"""workflow/profiles/htcondor, checked without an HTCondor pool.

No HTCondor daemons can run here, so these tests stop where the pool starts:
the profile parses, Snakemake plans the workflow with it, the plugin builds
the submit description of a job (which it logs with --verbose before it
contacts the schedd), and every rule that asks for a GPU asks HTCondor too.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "htcondor" / "config.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
ONE_JOB = REPO / "tests" / "configs" / "slurm.yaml"


def _plugin_missing() -> bool:
    probe = "import snakemake_executor_plugin_htcondor"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode != 0


needs_plugin = pytest.mark.skipif(
    _plugin_missing(),
    reason="snakemake-executor-plugin-htcondor is not installed (pip install hepdl[cluster])",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow as a user checks it out: Snakefile, workflow/, config/."""
    dest = tmp_path_factory.mktemp("htcondor_workflow")
    shutil.copy2(REPO / "Snakefile", dest / "Snakefile")
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, dest / folder)
    return dest


def _snakemake(workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/htcondor"]
    return subprocess.run(
        cmd + list(args), cwd=workdir, capture_output=True, text=True, timeout=timeout
    )


def test_profile_settings() -> None:
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "htcondor"
    assert profile["retries"] >= 1
    res = profile["default-resources"]
    # HTCondor's own names: the plugin does not translate mem_mb or gpu.
    assert res["request_memory"] > 0 and res["request_disk"]
    assert "set-resources" not in profile  # the training rules ask for their GPUs themselves


@needs_plugin
def test_dry_run_plans_every_job(workdir: Path) -> None:
    run = _snakemake(workdir, "--configfile", str(TINY), "--dry-run")
    assert run.returncode == 0, run.stderr[-4000:]
    out = run.stdout + run.stderr
    # tiny.yaml: 2 sim + 1 data chunks of each task (data for the domain studies).
    assert re.search(r"^generate_jets\s+3$", out, re.M), out[-3000:]
    assert re.search(r"^generate_neutrino\s+3$", out, re.M), out[-3000:]
    assert re.search(r"^evaluate_domain\s+2$", out, re.M), out[-3000:]
    assert "request_memory=4000" in out


def _gpu_requests(workdir: Path) -> list[tuple[str, int, int]]:
    """``(rule, gpu, request_gpus)`` of every job of a dry run of the tiny config."""
    run = _snakemake(workdir, "--configfile", str(TINY), "--dry-run", "--forceall")
    assert run.returncode == 0, run.stderr[-4000:]
    jobs, current = [], None
    for line in (run.stdout + run.stderr).splitlines():
        if m := re.match(r"(?:local)?rule (\w+):", line):
            current = m.group(1)
        elif current and line.strip().startswith("resources:"):
            gpu = re.search(r"\bgpu=(\d+)", line)
            request = re.search(r"\brequest_gpus=(\d+)", line)
            jobs.append((current, int(gpu.group(1)) if gpu else 0, int(request.group(1)) if request else 0))
    return jobs


@needs_plugin
def test_every_gpu_job_requests_gpus_from_htcondor(workdir: Path) -> None:
    jobs = _gpu_requests(workdir)
    # HTCondor matches on request_gpus: every job that asks Slurm for GPUs asks HTCondor as many
    assert all(gpu == request for _, gpu, request in jobs), [j for j in jobs if j[1] != j[2]]
    asking = {rule for rule, gpu, _ in jobs if gpu}
    assert {"train_network", "label_efficiency"} <= asking
    # a block that sets resources.gpu 0 (the expert MLP: a GPU would only add transfer time) asks for none
    assert any(rule == "train_network" and gpu == 0 for rule, gpu, _ in jobs)


@needs_plugin
def test_submit_description(workdir: Path) -> None:
    """The plugin's submit description for a job that asks for a GPU, up to the schedd."""
    if shutil.which("condor_status") and subprocess.run(["condor_status"]).returncode == 0:
        pytest.skip("an HTCondor pool answers here; this test must not submit to it")
    target = "results/samples/neutrino_sim_0.root"
    # generate_neutrino stands in for a training rule: same mechanism, no training needed.
    run = _snakemake(
        workdir, target, "--configfile", str(ONE_JOB), "--verbose",
        "--set-resources", "generate_neutrino:request_gpus=1",
    )  # fmt: skip
    log = run.stdout + run.stderr
    assert run.returncode != 0, "submitted without a pool?"
    m = re.search(r"HTCondor submit subscription: (\{.*\})$", log, re.M)
    assert m, log[-4000:]
    submit = ast.literal_eval(m.group(1))
    assert submit["request_gpus"] == 1
    assert submit["request_memory"] == 4000 and submit["request_disk"] == "4GB"
    assert submit["request_cpus"] == "1"
    # The job runs this venv's Python, so `hepdl` in the job is this one.
    assert submit["executable"] == sys.executable
    assert "--target-jobs generate_neutrino:domain=sim,chunk=0" in submit["arguments"]
    assert submit["batch_name"].startswith("generate_neutrino")
    # ... and it failed only where the pool starts.
    assert "Unable to locate local daemon" in log or "schedd" in log.lower(), log[-3000:]
    assert not (workdir / target).exists()
