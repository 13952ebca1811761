"""Jet tagging: one entry per large-R jet, boosted W (or top) jets against QCD jets."""

from hepdl.tasks.base import Classes, Column, Task, register_task

JETS = register_task(Task(
    name="jets",
    entry="jet",
    description="boosted W (or top) jets against QCD jets",
    required_fields=("calo_eta", "calo_phi", "calo_e", "jet_pt", "jet_eta", "jet_phi", "jet_mass",
                     "trk_pt", "trk_eta", "trk_phi"),
    optional_fields=("trk_d0", "trk_z0", "trk_charge", "label", "weight"),
    # trimming first (a chunk transform), then the arrays
    representations=("jet_trimming", "jet_images", "track_sequences", "expert_jet_variables"),
    columns=(
        Column("jet_pt", "float32", 0.0),
        Column("jet_eta", "float32", 0.0),
        Column("jet_mass", "float32", 0.0),
        Column("label", "int64", -1),
        Column("weight", "float32", 1.0),
    ),
    targets=Classes(names=("background", "signal"), signal="signal", labels=("QCD", "W")),
    metrics="binary",
    score_columns=("jet_pt", "jet_mass"),
    kinematics=("jet_pt", "jet_eta"),
    plots=("roc", "average_images"),
    generation_seed_offset=0,
))
