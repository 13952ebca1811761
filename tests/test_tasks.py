"""Task declarations (hepdl.tasks) and what the rest of hepdl reads off them."""

from __future__ import annotations

import numpy as np
import pytest

from hepdl.errors import ConfigError, InputError
from hepdl.evaluate.task_plots import TASK_PLOTS, plot_files
from hepdl.represent.registry import REPRESENTATIONS
from hepdl.represent.representations import default_spec, task_representations
from hepdl.tasks import METRIC_FAMILIES, TASKS, Classes, Column, Task, get_task


def test_the_declared_tasks_are_complete():
    assert {"jets", "neutrino"} <= set(TASKS)
    for task in TASKS.values():
        reps = task_representations(task)  # every name is registered, for this task
        assert all(rep.task == task.name for rep in reps)
        assert task.metrics in METRIC_FAMILIES and set(task.plots) <= set(TASK_PLOTS)
        assert plot_files(task)
        for rep in reps:  # a representation's optional inputs are fields of its task
            assert set(rep.optional_fields) <= set(task.optional_fields), rep.name
        spec = default_spec(task.name)
        assert spec["task"] == task.name and {rep.key for rep in reps} <= set(spec)
    # the truth columns are never model inputs
    assert set(get_task("jets").truth_fields) == {"label", "weight"}
    assert set(get_task("neutrino").truth_fields) == {"label", "weight", "nu_energy"}


def test_classes_count_the_labels_a_model_predicts():
    nu = get_task("neutrino").targets
    assert nu.signal_index == 1 and nu.signal == "nue_cc"
    assert nu.count(np.array([0, 1, 2, -1]), "x") == 3  # nu_tau CC only when the sample has it
    assert nu.count(np.array([0, 3]), "x") == 4
    assert nu.count(np.array([0, 1]), "x") == 3  # never fewer than the minimum
    assert nu.names_for(3) == ["numu_cc", "nue_cc", "nc"]
    with pytest.raises(InputError, match="label 4 found"):
        nu.count(np.array([4]), "shard")
    jets = get_task("jets").targets
    assert jets.count(np.array([0, 1]), "x") == 2 and jets.plot_labels(2) == ["QCD", "W"]
    assert jets.to_meta() == {"kind": "classes", "names": ["background", "signal"], "signal": "signal", "minimum": 2}
    with pytest.raises(ValueError, match="signal class"):
        Classes(names=("a", "b"), signal="c")


def test_a_declaration_is_checked_and_an_unknown_task_named():
    targets = Classes(names=("a", "b"), signal="b")
    with pytest.raises(ValueError, match="metrics"):
        Task(name="t", entry="e", description="", required_fields=(), optional_fields=(), representations=(),
             columns=(), targets=targets, metrics="regression-ish")
    with pytest.raises(ValueError, match="not one of its columns"):
        Task(name="t", entry="e", description="", required_fields=(), optional_fields=(), representations=(),
             columns=(Column("label", "int64", -1),), targets=targets, metrics="binary", kinematics=("jet_pt",))
    with pytest.raises(ConfigError, match="'muons' is not one of"):
        get_task("muons")


def test_every_registered_representation_belongs_to_a_task_that_builds_it():
    built = {name for task in TASKS.values() for name in task.representations}
    assert set(REPRESENTATIONS) == built
