"""Experiment tracking (hepdl.train.tracking): a training run's events read back from the files."""

from __future__ import annotations

import json

import pytest
import torch
from toy_trained_models import write_toy_file

import hepdl
from hepdl.errors import ConfigError
from hepdl.represent import prepare_file

SETTINGS = {"model": {"name": "jet_cnn", "channels": [4, 8], "head": [8]}, "epochs": 3, "batch_size": 32,
            "progress": "never", "log_epochs": False, "device": "cpu", "seed": 5,
            "early_stopping_patience": None}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    work = tmp_path_factory.mktemp("tracking")
    write_toy_file(work / "toy.root", 240, seed=21)
    path = work / "prepared" / "jets_sim_0"
    prepare_file("jets", str(work / "toy.root"), str(path), spec={"image": {"size": [16, 16]}}, seed=3)
    return [str(path)]


def _scalars(folder) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def test_tensorboard_events_hold_the_history_and_final_metrics(shards, tmp_path):
    torch.set_num_threads(1)
    run = hepdl.train_model(shards, {**SETTINGS, "tracking": "tensorboard"}, tmp_path / "cnn")
    history = run.result.history
    assert len(history) == 3
    scalars = _scalars(tmp_path / "cnn" / "tensorboard")
    for key in ("train_loss", "val_loss", "val_auc", "lr"):
        assert sorted(scalars[key]) == [1, 2, 3], key
        for row in history:  # float32 in the event file
            assert scalars[key][row["epoch"]] == pytest.approx(row[key], rel=1e-6), (key, row["epoch"])
    assert scalars["final/test_auc"][0] == pytest.approx(run.metrics["test_auc"], rel=1e-6)
    assert scalars["final/val_auc"][0] == pytest.approx(run.metrics["val_auc"], rel=1e-6)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "cnn" / "tensorboard"))
    events.Reload()
    text = events.Tensors("settings/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n"))["batch_size"] == 32


def test_tracking_is_off_by_default_and_dir_is_a_setting(shards, tmp_path):
    torch.set_num_threads(1)
    hepdl.train_model(shards, {**SETTINGS, "epochs": 1}, tmp_path / "plain")
    assert not (tmp_path / "plain" / "tensorboard").exists()
    hepdl.train_model(shards, {**SETTINGS, "epochs": 1, "tracking": "tensorboard",
                               "tracking_dir": str(tmp_path / "tb" / "run1")}, tmp_path / "elsewhere")
    assert list(_scalars(tmp_path / "tb" / "run1")["val_loss"]) == [1]
    with pytest.raises(ConfigError, match="tracking: 'wandb' is not one of"):
        hepdl.train_model(shards, {**SETTINGS, "tracking": "wandb"}, tmp_path / "bad")


def test_mlflow_run_holds_the_history_and_final_metrics(shards, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (tracking: mlflow is optional)")
    from mlflow.tracking import MlflowClient

    # a folder store (a database store needs the full mlflow, not mlflow-skinny); MLflow 3 asks
    # for this opt-in, and without it the run fails with one clear error
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    with pytest.raises(ConfigError, match="tracking_dir 'file:.*MLflow: The filesystem tracking backend"):
        hepdl.train_model(shards, {**SETTINGS, "epochs": 1, "tracking": "mlflow",
                                   "tracking_dir": (tmp_path / "refused").as_uri()}, tmp_path / "refused_run")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    torch.set_num_threads(1)
    uri = (tmp_path / "mlruns").as_uri()
    run = hepdl.train_model(shards, {**SETTINGS, "tracking": "mlflow", "tracking_dir": uri}, tmp_path / "cnn_ml")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("cnn_ml")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED"
    assert logged.data.params["batch_size"] == "32"
    val_loss = {m.step: m.value for m in client.get_metric_history(logged.info.run_id, "val_loss")}
    assert val_loss == pytest.approx({row["epoch"]: row["val_loss"] for row in run.result.history}, rel=1e-12)
    assert logged.data.metrics["final_test_auc"] == pytest.approx(run.metrics["test_auc"], rel=1e-12)
