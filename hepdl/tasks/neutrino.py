"""Neutrino event identification: one entry per event in a segmented two-view detector."""

from hepdl.tasks.base import Classes, Column, Task, register_task

NEUTRINO = register_task(Task(
    name="neutrino",
    entry="event",
    description="nu_mu CC, nu_e CC, NC (and nu_tau CC) interactions in a two-view detector",
    required_fields=("hit_view", "hit_plane", "hit_cell", "hit_e"),
    optional_fields=("label", "weight", "nu_energy"),
    representations=("pixel_maps", "neutrino_event_variables"),
    columns=(
        Column("label", "int64", -1),
        Column("weight", "float32", 1.0),
        Column("nu_energy", "float32", 0.0, always=False),
    ),
    # nu_tau CC only where the sample has it: a model has three or four outputs
    targets=Classes(names=("numu_cc", "nue_cc", "nc", "nutau_cc"), signal="nue_cc", minimum=3,
                    labels=(r"$\nu_\mu$ CC", r"$\nu_e$ CC", "NC", r"$\nu_\tau$ CC")),
    metrics="multiclass",
    score_columns=("nu_energy",),
    plots=("event_display",),
    generation_seed_offset=500,
))
