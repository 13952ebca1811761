"""Figures in HEP style: ROC as rejection vs efficiency, score shapes, jet images, confusion.

Each ``*_figure`` function builds and returns a matplotlib Figure from arrays (so
tests and notebooks can inspect it); each ``plot_*`` function builds the same
figure and writes it as a PNG atomically, returning the path. The Agg backend is
used through ``matplotlib.figure.Figure`` directly, so no display is ever needed
and pyplot's global state is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from hepdl.errors import InputError
from hepdl.evaluate import metrics
from hepdl.figures import (  # noqa: F401 -- part of this module's interface
    HEP_STYLE,
    data_points,
    experiment_label,
    hep_style,
    save_figure,
    step_histogram,
)
from hepdl.figures import new_figure as _new_figure
from hepdl.figures import plotter as _plotter
from hepdl.stats import as_weights, binary_inputs, check_scores

# Drawn by the training engine after every run, so defined in the train layer; here for
# ``hepdl evaluate curves`` and users of this module.
from hepdl.train.outputs import plot_training_curves, training_curves_figure  # noqa: F401

# ---------------------------------------------------------------- binary


def roc_figure(
    models: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    *,
    title: str | None = None,
) -> Figure:
    """Background rejection 1/eps_B vs signal efficiency, log y, one curve per model.

    ``models`` maps a name to ``(score, label, weight_or_None)``; the legend, beside the
    axes so that it covers no curve, shows each model's AUC as
    :func:`hepdl.evaluate.metrics.auc` computes it. Each model has its own colour (and, past
    the ten colours of the cycle, its own dash pattern).
    """
    if not models:
        raise InputError("roc_figure: no models given")
    with hep_style():
        fig = _new_figure((7.2, 4.2))
        ax = fig.add_subplot()
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        ymax = 1.0
        for i, (name, (score, label, weight)) in enumerate(models.items()):
            roc = metrics.roc_curve(score, label, weight)
            area = metrics.auc(score, label, weight)
            keep = roc.background_efficiency > 0
            rej = 1.0 / roc.background_efficiency[keep]
            ymax = max(ymax, float(rej.max()))
            ax.plot(roc.signal_efficiency[keep], rej, color=colours[i % len(colours)],
                    linestyle=_DASHES[(i // len(colours)) % len(_DASHES)], label=f"{name} (AUC = {area:.3f})")
        eff = np.linspace(0.01, 1.0, 200)
        ax.plot(eff, 1.0 / eff, color="0.5", linestyle=":", label="random")
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(1.0, ymax * 2.0)
        ax.set_xlabel(r"Signal efficiency $\varepsilon_S$")
        ax.set_ylabel(r"Background rejection $1/\varepsilon_B$")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        experiment_label(ax)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


_DASHES = ("-", "--", "-.", ":")


def score_figure(
    score: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    name: str = "classifier",
    data_score: np.ndarray | None = None,
    data_weight: np.ndarray | None = None,
    bins: int = 40,
    signal: str = "signal",
    background: str = "background",
) -> Figure:
    """Normalised step histograms of the score P(``signal``) for signal and background.

    ``signal`` and ``background`` are the classes' names as the task declares them
    (:meth:`hepdl.tasks.Classes.score_labels`). With ``data_score`` the data distribution is
    overlaid as points with statistical error bars, and the sim (signal + background) total
    as a line; the legend gives the KS statistic between them.
    """
    s, y, w = binary_inputs(score, label, weight, "score_figure")
    lo, hi = float(s.min()), float(s.max())
    if data_score is not None:
        d = check_scores(data_score, "score_figure (data)").reshape(-1)
        dw = as_weights(data_weight, len(d), "score_figure (data)")
        lo, hi = min(lo, float(d.min())), max(hi, float(d.max()))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    with hep_style():
        fig = _new_figure((5.0, 4.0))
        ax = fig.add_subplot()
        for mask, lab in ((y, signal), (~y, background)):
            step_histogram(ax, s[mask], edges, w[mask], label=lab)
        if data_score is not None:
            step_histogram(ax, s, edges, w, label="sim (all)", color="k")
            ks = metrics.ks_statistic(s, d, w, dw)
            data_points(ax, d, edges, dw, label=f"data (KS = {ks:.3f})")
        ax.set_xlabel(f"{name}: P({signal})")
        ax.set_ylabel("Normalised entries / bin width")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.0, ax.get_ylim()[1] * 1.35)  # headroom for the legend
        ax.legend(loc="upper center", ncols=2)
        experiment_label(ax)
    return fig


# ---------------------------------------------------------------- images


def class_image_sums(
    images: np.ndarray, label: np.ndarray, n_classes: int, channel: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class sums (K, H, W) and counts (K,) of one image channel.

    Sums rather than means so that a caller can accumulate them chunk by chunk
    over a dataset too large to hold; the mean is ``sums / counts``.
    """
    img = np.asarray(images, dtype=np.float64)
    if img.ndim == 4:
        img = img[:, channel]
    if img.ndim != 3:
        raise InputError(f"images must be (N, H, W) or (N, C, H, W), got shape {np.shape(images)}")
    y = np.asarray(label).reshape(-1)
    if len(y) != len(img):
        raise InputError(f"{len(img)} images but {len(y)} labels")
    sums = np.zeros((n_classes, *img.shape[1:]))
    # unlabelled (-1) or out-of-range entries are left out rather than wrapped around
    ok = (y >= 0) & (y < n_classes)
    np.add.at(sums, y[ok], img[ok])
    return sums, np.bincount(y[ok], minlength=n_classes).astype(np.int64)


def mean_images_figure(
    sums: np.ndarray,
    counts: np.ndarray,
    class_names: Sequence[str],
    *,
    extent: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0),
    value_label: str = r"Average pixel $E_T$ [GeV]",
) -> Figure:
    """Average image per class from :func:`class_image_sums`, log colour scale, shared range."""
    counts = np.asarray(counts)
    means = [s / c if c > 0 else np.zeros_like(s) for s, c in zip(sums, counts, strict=True)]
    positive = np.concatenate([m[m > 0] for m in means])
    if positive.size == 0:
        positive = np.array([1e-6, 1.0])  # all-empty images: any valid log range
    vmax = float(positive.max())
    vmin = max(float(positive.min()), vmax * 1e-5)
    with hep_style():
        fig = _new_figure((4.2 * len(class_names), 3.8))
        axes = fig.subplots(1, len(class_names), squeeze=False)[0]
        for ax, mean, name, n in zip(axes, means, class_names, counts, strict=True):
            # image rows run along eta, columns along phi; show phi horizontally as usual
            im = ax.imshow(
                np.clip(mean, vmin, None),
                origin="lower",
                norm=LogNorm(vmin=vmin, vmax=vmax),
                extent=(extent[2], extent[3], extent[0], extent[1]),
                aspect="auto",
                interpolation="nearest",
            )
            ax.set_title(f"{name} (average, N = {int(n)})", loc="right")
            ax.set_xlabel(r"$\Delta\phi$ (rotated)")
            ax.set_ylabel(r"$\Delta\eta$ (rotated)")
        fig.colorbar(im, ax=list(axes), label=value_label)
        experiment_label(axes[0])
    return fig


def average_images_figure(
    images: np.ndarray,
    label: np.ndarray,
    class_names: Sequence[str],
    *,
    extent: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0),
    channel: int = 0,
    value_label: str = r"Average pixel $E_T$ [GeV]",
) -> Figure:
    """Average jet image per class, log colour scale.

    ``images`` is (N, H, W) or (N, C, H, W) with rows along eta; ``extent`` is
    (eta_min, eta_max, phi_min, phi_max) of the grid, in the image's (centred,
    rotated) frame. Class k is the entries with ``label == k``.
    """
    sums, counts = class_image_sums(images, label, len(class_names), channel)
    return mean_images_figure(sums, counts, class_names, extent=extent, value_label=value_label)


def event_display_figure(
    pixel_maps: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    label: np.ndarray | None = None,
    event_ids: Sequence[int] | None = None,
    *,
    energy_unit: str = "MeV",
) -> Figure:
    """Neutrino events, one row each: the XZ and YZ views side by side, scores in the title.

    ``pixel_maps`` is (n, 2, planes, cells) deposited energy in ``energy_unit`` (the unit of
    the hit energies: MeV in the generated sample); ``scores`` is (n, K) class probabilities;
    ``event_ids`` (default 0..n-1) number the events in the titles. Both views of an event
    share one colour scale, shown beside them.
    """
    maps = np.asarray(pixel_maps, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[1] != 2:
        raise InputError(
            f"event_display_figure: pixel maps must be (n, 2, planes, cells), got {maps.shape}"
        )
    if p.shape != (len(maps), len(classes)):
        raise InputError(
            f"event_display_figure: scores shape {p.shape}, expected {(len(maps), len(classes))}"
        )
    with hep_style():
        fig = _new_figure((8.0, 2.8 * len(maps)))
        rows = fig.subfigures(len(maps), 1, squeeze=False)[:, 0]
        for i, row in enumerate(rows):
            text = ", ".join(f"P({c}) = {v:.2f}" for c, v in zip(classes, p[i], strict=True))
            truth = f"true {classes[int(label[i])]}; " if label is not None else ""
            event = i if event_ids is None else int(event_ids[i])
            row.suptitle(f"Event {event}: {truth}{text}", fontsize=9)
            vmax = max(float(maps[i].max()), 1e-9)  # an empty event still gets a valid scale
            axes = row.subplots(1, 2)
            for ax, v, view in zip(axes, (0, 1), ("XZ", "YZ"), strict=True):
                # planes run along the beam (z), shown horizontally as in NOvA displays; each
                # view reads every other plane, so one column is one plane of that view
                im = ax.imshow(
                    maps[i, v].T,
                    origin="lower",
                    aspect="auto",
                    cmap="Greys",
                    vmin=0.0,
                    vmax=vmax,
                    interpolation="nearest",
                )
                ax.set_xlabel("z [plane of the view]")
                ax.set_ylabel(f"{view[0].lower()} [cell]")
                ax.set_title(f"{view} view", fontsize=9)
            row.colorbar(im, ax=list(axes), label=f"Energy per cell [{energy_unit}]")
            if i == 0:
                experiment_label(axes[0])
    return fig


# ---------------------------------------------------------------- multi-class


def confusion_figure(
    probs: np.ndarray,
    label: np.ndarray,
    classes: Sequence[str],
    weight: np.ndarray | None = None,
    *,
    name: str = "classifier",
) -> Figure:
    """Confusion matrix twice: efficiency (rows sum to 1) and purity (columns sum to 1), annotated."""
    cm = metrics.confusion_matrix(probs, label, weight)
    if len(classes) != cm["counts"].shape[0]:
        raise InputError(
            f"confusion_figure: {len(classes)} class names for {cm['counts'].shape[0]} classes"
        )
    k = len(classes)
    with hep_style():
        fig = _new_figure((9.5, 4.2))
        axes = fig.subplots(1, 2)
        for ax, key in zip(axes, ("efficiency", "purity"), strict=True):
            mat = cm[key]
            ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="Blues", origin="upper")
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        f"{mat[i, j]:.2f}",
                        ha="center",
                        va="center",
                        color="white" if mat[i, j] > 0.5 else "black",
                        fontsize=9,
                    )
            ax.set_xticks(range(k), classes, rotation=30)
            ax.set_yticks(range(k), classes)
            ax.minorticks_off()
            ax.set_xlabel("Classified as")
            ax.set_ylabel("True class")
            ax.set_title(f"{name}: {key}", loc="right")
        experiment_label(axes[0])
    return fig


def domain_scores_figure(panels: dict[str, tuple], *, signal: str = "signal",
                         background: str = "background") -> Figure:
    """P(``signal``) on simulation (signal, background) and on data, one panel per model (e.g. before/after
    adaptation); ``panels[name] = (sim_score, sim_label01, data_score, metrics, ...)`` with the
    metrics' ``domain_auc`` and ``ks`` in the title. ``signal``, ``background``: the classes' names
    as the task declares them (:meth:`hepdl.tasks.Classes.score_labels`)."""
    with hep_style():
        fig = _new_figure((4.6 * len(panels), 4.4))
        for i, (name, (s, y, d, m, *_)) in enumerate(panels.items()):
            ax = fig.add_subplot(1, len(panels), i + 1)
            lo, hi = float(min(s.min(), d.min())), float(max(s.max(), d.max()))
            pad = max(1e-3, 1e-3 * (hi - lo))  # the top score falls inside the last bin, and a constant score still plots
            edges = np.linspace(lo - pad, hi + pad, 31)
            for values, lab, style in ((s[y == 1], f"sim {signal}", {}), (s[y == 0], f"sim {background}", {}),
                                       (s, "sim (all)", {"color": "k"})):
                if len(values):
                    step_histogram(ax, values, edges, label=lab, **style)
            data_points(ax, d, edges, label="data")
            ax.set_title(f"{name}: domain AUC {m['domain_auc']:.3f}, KS {m['ks']:.3f}", fontsize=9, loc="right",
                         pad=18)
            ax.set_xlabel(f"{name}: P({signal})")
            ax.set_ylabel("Normalised entries / bin width")
            ax.set_ylim(0.0, ax.get_ylim()[1] * 1.4)  # headroom for the legend
            ax.legend(loc="upper center", ncols=2, fontsize=8)
            experiment_label(ax)
    return fig


plot_roc = _plotter(roc_figure)
plot_scores = _plotter(score_figure)
plot_average_images = _plotter(average_images_figure)
plot_mean_images = _plotter(mean_images_figure)
plot_event_display = _plotter(event_display_figure)
plot_confusion = _plotter(confusion_figure)
plot_domain_scores = _plotter(domain_scores_figure)
