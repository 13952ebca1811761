"""Matplotlib figures in an experiment's style (mplhep), written atomically: the helpers every
plotting module uses.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, so no
display is ever needed and pyplot's global state is never touched.

The style (``cms``, ``atlas``, ``lhcb``, or ``default``: mplhep's experiment-neutral ROOT look)
and the label text beside the experiment's name ("Simulation", "Simulation Internal", ...) come
from the environment variables ``HEPDL_PLOT_STYLE`` and ``HEPDL_PLOT_LABEL``: the workflow sets
them from the config keys ``plots.style`` and ``plots.label``, so that every stage that draws
(training curves, evaluation, autoencoder pictures) takes them without a flag of its own.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from contextlib import contextmanager

import hist
import matplotlib
import mplhep
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hepdl.atomic import atomic_path
from hepdl.errors import ConfigError

STYLE_ENV, LABEL_ENV = "HEPDL_PLOT_STYLE", "HEPDL_PLOT_LABEL"
DEFAULT_LABEL = "Simulation"
#: plots.style -> (mplhep style, experiment name in the label)
PLOT_STYLES: dict[str, tuple[dict, str]] = {
    "default": (mplhep.style.ROOT, ""),
    "cms": (mplhep.style.CMS, "CMS"),
    "atlas": (mplhep.style.ATLAS, "ATLAS"),
    "lhcb": (mplhep.style.LHCb2, "LHCb"),
}

# The experiments' styles are sized for 10 x 10 inch figures; ours are a few inches wide, so
# the sizes are scaled down (fonts, colours and tick conventions stay the experiment's). A
# fixed dpi and no bbox tightening keep the baseline images reproducible.
COMPACT_SIZES: dict = {
    "font.size": 10,
    "axes.labelsize": 11,
    "axes.titlesize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "axes.linewidth": 1.0,
    "axes.labelpad": 4.0,
    "xtick.major.size": 5,
    "xtick.minor.size": 2.5,
    "ytick.major.size": 5,
    "ytick.minor.size": 2.5,
    "xtick.major.width": 0.8,
    "xtick.minor.width": 0.6,
    "ytick.major.width": 0.8,
    "ytick.minor.width": 0.6,
    "xtick.major.pad": 3.5,
    "xtick.minor.pad": 3.5,
    "ytick.major.pad": 3.5,
    "ytick.minor.pad": 3.5,
    "lines.linewidth": 1.5,
    "lines.markersize": 5,
    "patch.linewidth": 1.0,
    "legend.frameon": False,
    "legend.borderaxespad": 0.5,
    "legend.borderpad": 0.4,
    "savefig.dpi": 100,
    "savefig.bbox": None,
    "savefig.pad_inches": 0.1,
    "figure.dpi": 100,
    "image.cmap": "viridis",
    # ten colours (Petroff's accessible sequence, which CMS recommends) for every style: the
    # experiments' own cycles have six or seven, fewer than the models a ROC plot compares
    "axes.prop_cycle": cycler(color=matplotlib.color_sequences["petroff10"]),
}
#: the rcParams of the default style (kept under its old name for users of this module)
HEP_STYLE: dict = {**PLOT_STYLES["default"][0], **COMPACT_SIZES}


def plot_style() -> tuple[str, str]:
    """The style name and label text in use: ``HEPDL_PLOT_STYLE`` / ``HEPDL_PLOT_LABEL``."""
    style = os.environ.get(STYLE_ENV, "default") or "default"
    if style not in PLOT_STYLES:
        raise ConfigError(f"{STYLE_ENV}={style!r}: the plot style must be one of {sorted(PLOT_STYLES)}")
    return style, os.environ.get(LABEL_ENV, DEFAULT_LABEL)


@contextmanager
def hep_style():
    """Apply the plot style (:func:`plot_style`) for the figures built inside the block."""
    with matplotlib.rc_context({**PLOT_STYLES[plot_style()[0]][0], **COMPACT_SIZES}):
        yield


def experiment_label(ax: Axes, *, loc: int = 0) -> None:
    """The experiment's name and the label text (e.g. "CMS Simulation") above ``ax``'s top left.

    Call inside :func:`hep_style`. No centre-of-mass energy or luminosity: the samples carry none.
    """
    style, text = plot_style()
    exp = PLOT_STYLES[style][1]
    if not exp and not text:
        return
    if not isinstance(ax.figure, Figure):  # a subfigure's axes: mplhep sizes from the root figure
        ax.text(0.0, 1.08, (rf"$\mathbf{{{exp}}}$ " if exp else "") + text, transform=ax.transAxes,
                ha="left", va="bottom", fontsize=11, fontstyle="italic")
        return
    # data=True: mplhep would otherwise prepend its own "Simulation" to our text
    mplhep.label.exp_label(exp=exp, text=text, data=True, rlabel="", loc=loc, ax=ax,
                           fontsize=11, scilocator_adjust=False)


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


def filled_histogram(values, edges, weight=None) -> hist.Hist:
    """A weighted histogram (sum of weights and of squared weights per bin) of ``values``.

    No flow bins: as with ``np.histogram``, a value on the top edge counts in the last bin.
    """
    h = hist.Hist(hist.axis.Variable(edges, underflow=False, overflow=False), storage=hist.storage.Weight())
    h.fill(np.asarray(values, dtype=np.float64), weight=None if weight is None else np.asarray(weight, np.float64))
    return h


def step_histogram(ax: Axes, values, edges, weight=None, *, label: str, **style) -> None:
    """Unit-area step histogram of ``values`` (a shape comparison), drawn by mplhep."""
    mplhep.histplot(filled_histogram(values, edges, weight), density=True, histtype="step", yerr=False,
                    flow="none", label=label, ax=ax, **style)


def data_points(ax: Axes, values, edges, weight=None, *, label: str) -> None:
    """Unit-area histogram of ``values`` as black points with their statistical errors
    (sqrt of the summed squared weights), drawn by mplhep."""
    mplhep.histplot(filled_histogram(values, edges, weight), density=True, histtype="errorbar", yerr=True,
                    flow="none", color="k", markersize=3, label=label, ax=ax)
