"""The neutrino task's representations: two-view pixel maps and event variables for the baseline BDT."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from hepdl.represent.pixel_maps import NEUTRINO_FEATURES, neutrino_variables, pixel_maps
from hepdl.represent.registry import Option, register_representation

HIT_FIELDS = ("hit_view", "hit_plane", "hit_cell", "hit_e")


@register_representation(
    "neutrino", "pixel_maps", key="pixel_map", arrays=("pixel_maps",), half_precision=("pixel_maps",),
    sparse=("pixel_maps",),
    defaults={"planes": 100, "cells": 80, "threshold": 0.0},
    description="Pixel maps: planes and cells per view in the window, threshold.",
    options=(
        Option("--planes", "planes", "planes per view in the window (default 100)", {"type": int}),
        Option("--cells", "cells", "cells in the window (default 80)", {"type": int}),
        Option("--threshold", "threshold", "hit energy that starts the event window", {"type": float}),
    ),
)
def build_pixel_maps(chunk: ak.Array, spec: Mapping[str, Any], *, threads: int = 1) -> dict[str, np.ndarray]:
    pm = spec["pixel_map"]
    hits = {f: chunk[f] for f in HIT_FIELDS}
    return {"pixel_maps": pixel_maps(hits, planes=pm["planes"], cells=pm["cells"], threshold=pm["threshold"])}


# The event window is the pixel maps' (their settings), so the variables describe what the CVN sees.
@register_representation(
    "neutrino", "neutrino_event_variables", key="expert", arrays=("expert",),
    defaults={"features": list(NEUTRINO_FEATURES), "hot_fraction": 0.1},
    fixed=("features",), feature_arrays={"expert": "features"},
    description="Event variables for the baseline BDT: hot_fraction.",
)
def build_event_variables(chunk: ak.Array, spec: Mapping[str, Any], *, threads: int = 1) -> dict[str, np.ndarray]:
    pm, ex = spec["pixel_map"], spec["expert"]
    hits = {f: chunk[f] for f in HIT_FIELDS}
    return {"expert": neutrino_variables(hits, planes=pm["planes"], cells=pm["cells"], threshold=pm["threshold"],
                                         hot_fraction=ex["hot_fraction"])}
