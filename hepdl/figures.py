"""Matplotlib figures in HEP style, written atomically: the helpers every plotting module uses.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, so no
display is ever needed and pyplot's global state is never touched.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from contextlib import contextmanager

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hepdl.atomic import atomic_path

# Simple HEP look without mplhep: inward ticks on all sides, minor ticks, no grid
# clutter, a fixed font so baseline images are reproducible.
HEP_STYLE: dict = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.labelsize": 11,
    "axes.titlesize": 10,
    "axes.linewidth": 1.0,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.minor.visible": True,
    "ytick.minor.visible": True,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.5,
    "savefig.dpi": 100,
    "figure.dpi": 100,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(
        color=["#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6", "#a96b59", "#e76300"]
    ),
}


@contextmanager
def hep_style():
    """Apply :data:`HEP_STYLE` for the figures built inside the block."""
    with matplotlib.rc_context(HEP_STYLE):
        yield


def new_figure(figsize: tuple[float, float]) -> Figure:
    """An empty figure with constrained layout on the Agg canvas."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> str:
    """Write ``fig`` as PNG to ``path`` via a temporary file and an atomic rename."""
    path = os.fspath(path)
    with atomic_path(path, ".png") as tmp, hep_style():
        # Fixed metadata: the PNG bytes do not depend on the matplotlib version string
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def plotter(build: Callable[..., Figure]) -> Callable[..., str]:
    """``plot_<name>(..., path=)`` from a ``<name>_figure`` builder: builds the figure and saves it."""
    def plot(*args, path: str | os.PathLike, **kwargs) -> str:
        return save_figure(build(*args, **kwargs), path)

    plot.__name__ = plot.__qualname__ = "plot_" + build.__name__.removesuffix("_figure")
    plot.__doc__ = (
        f"Build :func:`{build.__name__}` and write it as a PNG to ``path``; returns the path."
    )
    # help() and IDEs show the figure builder's parameters plus the keyword-only path
    sig = inspect.signature(build)
    path_param = inspect.Parameter(
        "path", inspect.Parameter.KEYWORD_ONLY, annotation="str | os.PathLike"
    )
    params = list(sig.parameters.values())
    plot.__signature__ = sig.replace(parameters=[*params, path_param], return_annotation="str")
    return plot
