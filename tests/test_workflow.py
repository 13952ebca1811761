"""The Snakemake workflow: dry runs of the shipped and a user config, and the tiny config for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hepdl.io import read_events, write_tree

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "hepdl"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


def _snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


def test_default_config_dry_run_plans_every_stage(tmp_path):
    work = _copy_workflow(tmp_path)
    result = _snakemake(work, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    for rule in ("generate_jets", "generate_neutrino", "prepare", "train_network", "train_xgboost",
                 "autoencoder_features", "label_efficiency", "evaluate_domain", "evaluate_binary",
                 "evaluate_multiclass", "plots_jets", "plots_neutrino", "summary"):
        assert rule in out, rule
    # one training job per model block of the config, each under its task
    for task, model in (("jets", "cnn"), ("jets", "expert_mlp"), ("jets", "track_rnn"), ("jets", "combined"),
                        ("jets", "autoencoder"), ("jets", "ae_anomaly"), ("jets", "dann"), ("neutrino", "cvn"),
                        ("neutrino", "dann"), ("jets", "expert_bdt"), ("jets", "mass_bdt"), ("jets", "ae_xgboost"),
                        ("neutrino", "baseline_bdt")):
        assert f"results/{task}/{model}/test_scores.npz" in out, (task, model)


def test_large_config_dry_run_scatters_generation_and_trains_on_two_gpus(tmp_path):
    work = _copy_workflow(tmp_path)
    result = _snakemake(work, "-n", "-p", "--cores", "2", "--configfile", "config/large.yaml", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert re.search(r"^generate_jets\s+600$", out, re.M) and re.search(r"^prepare\s+850$", out, re.M), out[-2000:]
    assert "torchrun --standalone --nproc_per_node=2 -m hepdl.cli train" in out  # the CNN: two GPUs, one job
    assert "--storage sparse" in out


def test_lint_is_clean_and_every_rule_names_its_software(tmp_path):
    work = _copy_workflow(tmp_path)
    result = _snakemake(work, "--lint")
    text = result.stdout + result.stderr
    assert result.returncode == 0 and "Congratulations, your workflow is in a good condition!" in text, text[-3000:]
    assert not [line for line in text.splitlines() if line.strip().startswith("*")], text[-3000:]
    # the software of every rule: the conda environment (with hepdl from this repository) and the
    # Apptainer definition that installs it (neither conda nor apptainer runs here: parsed only)
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "hepdl.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert (ROOT / "workflow" / "envs" / pip[0] / "pyproject.toml").exists()
    assert any(str(d).startswith("pytorch-cpu") for d in env["dependencies"])
    definition = (ROOT / "workflow" / "envs" / "hepdl.def").read_text()
    assert re.search(r"^Bootstrap: docker$", definition, re.M) and "pip install" in definition
    for line in re.search(r"%files\n(.*?)\n\n", definition, re.S).group(1).splitlines():
        assert (ROOT / line.split()[0]).exists(), line
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert rules.count("shell:") == rules.count("conda:\n") == rules.count("container:\n")


def test_no_htcondor_warning_where_no_pool_is_configured(tmp_path):
    """hepdl-condor-config.pth, which hepdl installs beside its package, runs at interpreter start:
    run here the way `site` runs it (the venv may predate it), before a dry run of the workflow."""
    pth = (ROOT / "hepdl-condor-config.pth").read_text()
    work = _copy_workflow(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CONDOR_CONFIG"}
    # without any .pth (-S: an installed hepdl already put its .pth in site-packages), the same paths
    paths = [str(ROOT), *site.getsitepackages()]
    start = [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {paths!r}; import runpy; "
             "sys.argv = ['snakemake', *sys.argv[1:]]; runpy.run_module('snakemake', run_name='__main__')",
             "-n", "--cores", "1"]
    with_pth = [sys.executable, "-c", pth + "import runpy, sys; sys.argv = ['snakemake', *sys.argv[1:]]; "
                "runpy.run_module('snakemake', run_name='__main__')", "-n", "--cores", "1"]
    quiet = subprocess.run(with_pth, cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "CONDOR_CONFIG" not in quiet.stderr and "Job stats" in quiet.stdout + quiet.stderr
    pool_files = ("/etc/condor/condor_config", "/usr/local/etc/condor_config", os.path.expanduser("~condor/condor_config"))
    if not any(os.path.isfile(f) for f in pool_files):  # the warning the .pth silences is there without it
        loud = subprocess.run(start, cwd=work, capture_output=True, text=True, timeout=600, env=env)
        assert "CONDOR_CONFIG is unset" in loud.stderr
    # a configured pool is left alone: CONDOR_CONFIG set by the user stays as it is
    probe = [sys.executable, "-c", pth + "import os; print(os.environ.get('CONDOR_CONFIG'))"]
    pool = subprocess.run(probe, capture_output=True, text=True, env={**env, "CONDOR_CONFIG": "/my/condor_config"})
    assert pool.stdout.strip() == "/my/condor_config"
    unset = subprocess.run(probe, capture_output=True, text=True, env=env)
    assert unset.stdout.strip() == ("None" if any(os.path.isfile(f) for f in pool_files) else "/dev/null")


def test_wheels_carry_the_condor_pth(tmp_path):
    """Both a wheel and an editable install (pip install -e .) put hepdl-condor-config.pth into site-packages."""
    import zipfile

    src = tmp_path / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "hepdl-condor-config.pth", "README.md", "hepdl"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    for kind in ("wheel", "editable"):
        build = subprocess.run([sys.executable, "-c", f"import sys; from setuptools import build_meta as b; "
                                f"b.build_{kind}(sys.argv[1])", str(tmp_path)], cwd=src, capture_output=True,
                               text=True, timeout=600)
        assert build.returncode == 0, build.stderr[-3000:]
    wheels = sorted(tmp_path.glob("*.whl"))
    assert len(wheels) == 2, wheels
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            assert z.read("hepdl-condor-config.pth").decode() == (ROOT / "hepdl-condor-config.pth").read_text(), wheel


def test_user_files_replace_generation_and_bad_keys_are_named(tmp_path):
    rng = np.random.default_rng(0)
    sim = tmp_path / "user" / "sim_0.root"
    import awkward as ak

    n = 20
    counts = rng.integers(1, 5, n)
    write_tree(sim, "Jets", {
        "tower_eta": ak.unflatten(rng.normal(0, 0.3, counts.sum()), counts),
        "tower_phi": ak.unflatten(rng.normal(0, 0.3, counts.sum()), counts),
        "tower_e": ak.unflatten(rng.exponential(10, counts.sum()), counts),
        "fj_pt": rng.uniform(250, 350, n), "fj_eta": rng.normal(0, 1, n), "fj_phi": rng.normal(0, 1, n),
        "fj_mass": rng.uniform(20, 100, n), "is_w": rng.integers(0, 2, n).astype(np.int32),
    })
    config = tmp_path / "my.yaml"
    config.write_text(json.dumps({
        "tasks": ["jets"],
        "jets": {"tree": "Jets", "sim": [str(tmp_path / "user" / "sim_*.root")],
                 "fields": {"calo_eta": "tower_eta", "calo_phi": "tower_phi", "calo_e": "tower_e",
                            "jet_pt": "fj_pt", "jet_eta": "fj_eta", "jet_phi": "fj_phi", "jet_mass": "fj_mass",
                            "label": "is_w"}},
    }))
    work = _copy_workflow(tmp_path / "wf")
    result = _snakemake(work, "-n", "--cores", "2", "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "generate_jets" not in out and "generate_neutrino" not in out
    assert "prepare" in out and "evaluate_domain" not in out  # no data sample given: no domain study
    assert "results/jets/dann/model.pt" not in out  # nor its adapting network
    config.write_text(json.dumps({"jets": {"generat": {}}}))
    bad = _snakemake(work, "-n", "--cores", "2", "--configfile", str(config))
    assert bad.returncode != 0 and "generat" in bad.stdout + bad.stderr
    # a mistyped training setting of a default model block: named with its block at -n
    config.write_text(json.dumps({"jets": {"models": {"cnn": {"learning_rte": 0.01}}}}))
    bad = _snakemake(work, "-n", "--cores", "2", "--configfile", str(config))
    assert bad.returncode != 0
    assert "key jets.models.cnn: Additional properties are not allowed ('learning_rte' was unexpected)" in (
        bad.stdout + bad.stderr)


#: a folder name that breaks any unquoted path in a rule's shell command
AWKWARD_NAME = "run dir 'q' $x&(1)"


@pytest.mark.slow
def test_tiny_config_runs_end_to_end(tmp_path):
    """The tiny config, run from a folder whose name holds a space, a quote and shell characters,
    with its results (so every rule's inputs and outputs) in such a folder too."""
    work = _copy_workflow(tmp_path / AWKWARD_NAME)
    results = work / f"results {AWKWARD_NAME}"
    config = tmp_path / "tiny.yaml"
    config.write_text((ROOT / "tests" / "configs" / "tiny.yaml").read_text() + f"results: {json.dumps(str(results))}\n")
    result = _snakemake(work, "--cores", "2", "--configfile", str(config), timeout=3000)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    # the console shows every training's epochs, named by its task and model
    for name in ("jets/cnn", "jets/autoencoder", "neutrino/cvn"):
        assert re.search(rf"^\[{name}\] epoch 1/\d+: train loss", result.stderr, re.M), name
    assert (work / "results").exists() is False
    (work / "results").symlink_to(results)  # the checks below read the results under their usual name
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert {"cnn", "expert_bdt", "mass_bdt", "expert_mlp", "track_rnn", "combined", "ae_xgboost", "ae_anomaly",
            "pretrained_cnn", "domain"} <= set(summary["jets"])
    assert {"cvn", "baseline_bdt", "domain"} <= set(summary["neutrino"])
    for task in ("jets", "neutrino"):  # the same keys for both tasks, as the issue asks
        assert {"cnn_data_auc", "dann_data_auc", "cnn_domain_auc", "dann_domain_auc", "cnn_eff_shift",
                "dann_eff_shift"} <= set(summary[task]["domain"]), task
    for metrics in summary["jets"].values():
        assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float))
    assert 0.0 <= summary["jets"]["cnn"]["auc"] <= 1.0
    assert 0.0 <= summary["neutrino"]["cvn"]["nue_cc_purity"] <= 1.0
    generated = read_events(work / "results" / "samples" / "jets_sim_0.root", "events", ["jet_pt", "label"])
    assert len(generated) == 120
    for png in ("jets/evaluation/roc.png", "neutrino/evaluation/confusion_cvn.png",
                "jets/evaluation/domain/domain_scores.png", "neutrino/evaluation/domain/domain_scores.png"):
        assert (work / "results" / png).stat().st_size > 1000, png
    # The HTML report collects the plots and the summary.
    report = _snakemake(work, "--configfile", str(config), "--report", "report.html", timeout=600)
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    assert "summary.json" in html and "roc.png" in html and "confusion_cvn.png" in html
    # Idempotent: a second run has nothing to do.
    again = _snakemake(work, "--cores", "2", "--configfile", str(config), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


TRACK_MLP = '''"""A small MLP on the jet's track sequence: a dense layer per track, the masked mean, a dense head."""

import torch
from torch import nn

from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.jet_cnn import dense_head
from hepdl.models.registry import register_model


@register_model("track_mlp")
class TrackMLP(ModelBase):
    input_keys = ("tracks", "track_mask")

    def __init__(self, *, n_features: int = 6, hidden: int = 16, n_outputs: int = 1, seed: int = 0) -> None:
        super().__init__()
        self.per_track = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.head = dense_head(hidden, (hidden,), n_outputs, 0.0)
        self.n_outputs = n_outputs
        initialise_weights(self, seed, output_layers=(self.head[-1],))

    @classmethod
    def config_from_data(cls, meta):
        return {"n_features": int(meta["arrays"]["tracks"]["shape"][2])}

    def forward(self, tracks, track_mask):
        mask = track_mask.unsqueeze(-1).float()
        pooled = (self.per_track(tracks) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        logits = self.head(pooled)
        return logits.squeeze(-1) if self.n_outputs == 1 else logits
'''


@pytest.mark.slow
def test_a_new_model_is_one_module_and_one_config_entry(tmp_path):
    """A model that reads an existing representation (the track sequences): its module dropped into
    hepdl/models and a block in the user's config; no other file of the workflow or package changes."""
    work = _copy_workflow(tmp_path / "wf")
    (work / "hepdl" / "models" / "track_mlp.py").write_text(TRACK_MLP)
    config = tmp_path / "my.yaml"
    config.write_text(json.dumps({"jets": {"models": {"track_mlp": {
        "model": {"name": "track_mlp", "hidden": 16}, "epochs": 3, "batch_size": 32, "learning_rate": 0.005}}}}))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(work)}  # the copy's hepdl, with the module
    target = "results/jets/evaluation/track_mlp.json"
    run = subprocess.run([*SNAKEMAKE, target, "--cores", "2", "--configfile", str(ROOT / "tests" / "configs" / "tiny.yaml"),
                          str(config)], cwd=work, capture_output=True, text=True, timeout=1200, env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    result = json.loads((work / target).read_text())
    assert result["task"] == "jets" and result["model"] == "track_mlp" and 0.0 <= result["auc"] <= 1.0
    info = json.loads((work / "results" / "jets" / "track_mlp" / "train_info.json").read_text())
    assert info["epochs_run"] == 3 and info["settings"]["model"]["n_features"] == 6  # filled from the data
    # the workflow planned the new block like any other: the summary and the ROC would carry it
    plan = subprocess.run([*SNAKEMAKE, "-n", "--cores", "2", "--configfile", str(ROOT / "tests" / "configs" / "tiny.yaml"),
                           str(config)], cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert plan.returncode == 0 and "results/jets/evaluation/track_mlp.json" in plan.stdout
    # a mistyped setting of the new model is caught at -n, naming the key and the block
    config.write_text(json.dumps({"jets": {"models": {"track_mlp": {"model": {"name": "track_mlp", "hiden": 16}}}}}))
    bad = subprocess.run([*SNAKEMAKE, "-n", "--cores", "2", "--configfile", str(config)], cwd=work,
                         capture_output=True, text=True, timeout=600, env=env)
    message = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "key jets.models.track_mlp.model" in message and "'hiden' was unexpected" in message
