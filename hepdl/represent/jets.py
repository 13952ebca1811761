"""The jet task's representations: trimming, jet images, track sequences, expert variables.

Each reads a chunk of jets under logical field names (calorimeter deposits and tracks jagged,
jet kinematics flat) and returns its arrays for the prepared shards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from hepdl.represent.expert_variables import EXPERT_FEATURES, expert_jet_variables
from hepdl.represent.jagged import flat_content
from hepdl.represent.jet_images import CHANNELS, jet_images
from hepdl.represent.registry import Option, register_representation, register_transform
from hepdl.represent.track_sequences import TRACK_FEATURES, track_sequences
from hepdl.represent.trimming import trim_jets

TRACK_FIELDS = ("trk_pt", "trk_eta", "trk_phi")
TRACK_DETAILS = ("trk_d0", "trk_z0", "trk_charge")


def jet_axis(chunk: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The jets' pT, eta and phi as float64 arrays."""
    return tuple(ak.to_numpy(chunk[f]).astype(np.float64, copy=False) for f in ("jet_pt", "jet_eta", "jet_phi"))


# Off by default: on the embedded sample it lifts the expert BDT (trimmed mass) to AUC 0.939
# while the CNN stays at 0.928 (README, "Training"). A spec without the section (older model
# files) is untrimmed.
@register_transform(
    "jets", "jet_trimming", key="trim", defaults={"r_sub": 0.2, "f_cut": 0.0},
    description="Trimming of every jet first (kT subjets of r_sub below f_cut of the jet pT dropped; tracks "
                "kept within r_sub of a kept subjet): r_sub (0.2), f_cut (0 = off; 0.05 is ATLAS's).",
)
def trim(chunk: ak.Array, settings: Mapping[str, Any]) -> ak.Array:
    return trim_jets(chunk, r_sub=settings["r_sub"], f_cut=settings["f_cut"]) if settings["f_cut"] > 0 else chunk


@register_representation(
    "jets", "jet_images", key="image", arrays=("jet_images",), feature_arrays={"jet_images": "channels"}, half_precision=("jet_images",),
    sparse=("jet_images",),
    defaults={"size": [32, 32], "half_width": 1.2, "channels": list(CHANNELS), "centre": "leading_subjet",
              "rotate": True, "flip": True, "normalise": "sum", "subjet_radius": 0.3},
    description="Jet image: size [H, W], half_width, channels (calo_et, trk_pt, trk_count), centre, rotate, flip, "
                "normalise, subjet_radius.",
    options=(
        Option("--image-size", "size", "image size in pixels", {"type": int, "nargs": 2, "metavar": ("H", "W")}),
        Option("--half-width", "half_width", "image half-width in eta and phi (default 1.2)", {"type": float}),
        Option("--channels", "channels", "image channels: calo_et trk_pt trk_count", {"nargs": "+"}),
        Option("--normalise", "normalise", "pixel normalisation", {"choices": ("jet", "sum", "none")}),
    ),
)
def build_jet_images(chunk: ak.Array, spec: Mapping[str, Any], *, threads: int = 1) -> dict[str, np.ndarray]:
    img = spec["image"]
    _, jet_eta, jet_phi = jet_axis(chunk)
    return {"jet_images": jet_images(
        chunk["calo_eta"], chunk["calo_phi"], chunk["calo_e"], jet_eta, jet_phi,
        trk_pt=chunk["trk_pt"], trk_eta=chunk["trk_eta"], trk_phi=chunk["trk_phi"],
        size=img["size"], half_width=img["half_width"], channels=img["channels"], centre=img["centre"],
        rotate=img["rotate"], flip=img["flip"], normalise=img["normalise"], subjet_radius=img["subjet_radius"],
    )}


@register_representation(
    "jets", "track_sequences", key="tracks", arrays=("tracks", "track_mask"),
    defaults={"length": 30, "sort_by": "pt", "features": list(TRACK_FEATURES)},
    optional_fields=TRACK_DETAILS, fixed=("features",), feature_arrays={"tracks": "features"},
    half_precision=("tracks",),
    description="Track sequences: length, sort_by (pt or abs_d0).",
    options=(
        Option("--track-length", "length", "tracks kept per jet (default 30)", {"type": int}),
        Option("--track-sort", "sort_by", "track order", {"choices": ("pt", "abs_d0")}),
    ),
)
def build_track_sequences(chunk: ak.Array, spec: Mapping[str, Any], *, threads: int = 1) -> dict[str, np.ndarray]:
    trk = spec["tracks"]
    jet_pt, jet_eta, jet_phi = jet_axis(chunk)
    tracks = {f: chunk[f] for f in TRACK_FIELDS + TRACK_DETAILS if f in chunk.fields}
    sequences, mask = track_sequences(tracks, jet_pt, jet_eta, jet_phi, length=trk["length"], sort_by=trk["sort_by"])
    return {"tracks": sequences, "track_mask": mask}


# N-subjettiness costs several times the images: with two or more threads it runs alongside
# them (the compiled kernels and most numpy loops of the images release the GIL).
@register_representation(
    "jets", "expert_jet_variables", key="expert", arrays=("expert",),
    defaults={"features": list(EXPERT_FEATURES),
              "nsubjettiness": {"beta": 1.0, "r0": 1.0, "axes": "onepass_kt", "cone_radius": 0.3}},
    fixed=("features",), feature_arrays={"expert": "features"}, concurrent=True,
    description="Expert variables: nsubjettiness {beta, r0, axes (onepass_kt, kt, cone), cone_radius}.",
    options=(Option("--nsub-axes", "nsubjettiness.axes", "N-subjettiness axes (default onepass_kt)",
                    {"choices": ("onepass_kt", "kt", "cone")}),),
)
def build_expert_jet_variables(chunk: ak.Array, spec: Mapping[str, Any], *, threads: int = 1) -> dict[str, np.ndarray]:
    nsub = spec["expert"]["nsubjettiness"]
    jet_pt, _, _ = jet_axis(chunk)
    return {"expert": expert_jet_variables(
        chunk["calo_eta"], chunk["calo_phi"], chunk["calo_e"], jet_pt, flat_content(chunk["trk_pt"], "trk_pt")[1],
        beta=nsub["beta"], r0=nsub["r0"], axes=nsub["axes"], cone_radius=nsub["cone_radius"], threads=threads,
    )}
