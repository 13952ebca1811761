"""The event-level workflow (config/events.yaml): generated events -> jets-from-events -> prepare ->
train -> evaluate -> scores back per event, planned by a dry run and run for real on a tiny version."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
from test_workflow import ROOT, _copy_workflow, _snakemake

EVENT_RULES = ("generate_events", "jets_from_events", "score_event_jets", "scores_to_events")


def test_events_config_dry_run_plans_the_event_level_path(tmp_path):
    work = _copy_workflow(tmp_path)
    result = _snakemake(work, "-n", "--cores", "2", "--configfile", "config/events.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    for rule in (*EVENT_RULES, "prepare", "train_network", "train_xgboost", "evaluate_binary", "summary"):
        assert rule in out, rule
    assert "generate_jets " not in out and "generate_neutrino" not in out
    assert "results/events/scores/events_sim_3.scores.root" in out
    # the default pipeline plans none of it
    default = _snakemake(work, "-n", "--cores", "2")
    assert default.returncode == 0 and not any(r in default.stdout for r in EVENT_RULES)


@pytest.mark.slow
def test_events_pipeline_runs_and_scores_line_up_with_their_jets(tmp_path):
    work = _copy_workflow(tmp_path)
    result = _snakemake(work, "--cores", "2", "--configfile", "config/events.yaml",
                        str(ROOT / "tests" / "configs" / "events_tiny.yaml"), timeout=2400)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert {"cnn", "expert_bdt", "expert_mlp"} <= set(summary["jets"])
    assert all(0.0 <= summary["jets"][m]["auc"] <= 1.0 for m in ("cnn", "expert_bdt", "expert_mlp"))
    results = work / "results"
    for i in range(2):
        events = uproot.open(results / "samples" / f"events_sim_{i}.root")["Events"].arrays(["FatJet_pt", "process"])
        jets = uproot.open(results / "events" / f"jets_sim_{i}.root")["events"].arrays(
            ["jet_pt", "event_entry", "jet_index", "label"])
        per_jet = uproot.open(results / "events" / "scores" / f"jets_sim_{i}.scores.root")["scores"]["score"].array()
        friend = uproot.open(results / "events" / "scores" / f"events_sim_{i}.scores.root")["scores"].arrays()
        assert len(events) == 80 and len(friend) == len(events) and len(per_jet) == len(jets) > 20
        # AddFriend-compatible: one entry per event, one value per FatJet of that event
        assert ak.num(friend.FatJet_score).tolist() == ak.num(events.FatJet_pt).tolist()
        entry, index = np.asarray(jets.event_entry), np.asarray(jets.jet_index)
        # each score sits at its own jet: the jet's pT is that FatJet's, its score the per-jet score
        assert np.array_equal(np.asarray(jets.jet_pt), np.asarray(events.FatJet_pt[entry, index]))
        assert np.array_equal(np.asarray(friend.FatJet_score[entry, index]), np.asarray(per_jet))
        # and every other FatJet holds the default
        assert ak.sum(friend.FatJet_score != -1) == len(jets)
        # labels from GenPart: no QCD jet is signal; most jets of the W' events' leading jets are
        process = np.asarray(events.process)[entry]
        assert np.asarray(jets.label)[process == 0].sum() == 0 and np.asarray(jets.label)[process == 1].sum() > 0
