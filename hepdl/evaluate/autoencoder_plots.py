"""Autoencoder pictures: original vs reconstructed average images, latent space, reconstruction errors,
and the label-efficiency curve of pre-trained vs randomly initialised CNNs.

Same conventions as :mod:`hepdl.evaluate.plots`: ``*_figure`` builds a Figure from arrays,
``plot_*`` writes it as a PNG atomically and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from hepdl.figures import experiment_label, hep_style, step_histogram
from hepdl.figures import new_figure as _new_figure
from hepdl.figures import plotter as _plotter


def reconstruction_images_figure(
    original_sums: np.ndarray, reconstructed_sums: np.ndarray, counts: np.ndarray, class_names: Sequence[str],
    *, channel: int = 0, value_label: str = "Average pixel value",
) -> Figure:
    """Average original (top row) and reconstructed (bottom row) image per class, one channel, shared log scale.

    ``*_sums`` are (K, C, H, W) per-class sums over entries, ``counts`` (K,) the entries per class.
    """
    counts = np.asarray(counts)
    rows = []
    for sums in (original_sums, reconstructed_sums):
        rows.append([s[channel] / c if c > 0 else np.zeros_like(s[channel]) for s, c in zip(sums, counts, strict=True)])
    positive = np.concatenate([m[m > 0] for row in rows for m in row] or [np.array([1e-6, 1.0])])
    if positive.size == 0:
        positive = np.array([1e-6, 1.0])
    vmax = float(positive.max())
    vmin = max(float(positive.min()), vmax * 1e-4)
    with hep_style():
        fig = _new_figure((3.6 * len(class_names), 6.4))
        axes = fig.subplots(2, len(class_names), squeeze=False)
        for r, (row, what) in enumerate(zip(rows, ("original", "reconstructed"), strict=True)):
            for k, (mean, name) in enumerate(zip(row, class_names, strict=True)):
                ax = axes[r, k]
                im = ax.imshow(np.clip(mean, vmin, None), origin="lower", norm=LogNorm(vmin=vmin, vmax=vmax),
                               aspect="auto", interpolation="nearest")
                ax.set_title(f"{name}: {what} (N = {int(counts[k])})", loc="right")
                ax.set_xlabel("phi pixel")
                ax.set_ylabel("eta pixel")
        fig.colorbar(im, ax=axes.ravel().tolist(), label=value_label)
        experiment_label(axes[0, 0])
    return fig


def latent_projection_figure(
    projection: np.ndarray, label: np.ndarray, class_names: Sequence[str], domain: np.ndarray | None = None,
    explained: np.ndarray | None = None, *, max_points: int = 3000,
) -> Figure:
    """The latent codes on their two first principal components: left coloured by class, right by domain."""
    proj, label = np.asarray(projection), np.asarray(label)
    # a fixed thinning (every k-th entry) keeps the file small and the picture deterministic
    step = max(1, len(proj) // max_points)
    proj, label = proj[::step], label[::step]
    dom = None if domain is None else np.asarray(domain)[::step]
    with hep_style():
        panels = 2 if dom is not None and len(np.unique(dom)) > 1 else 1
        fig = _new_figure((4.6 * panels, 4.2))
        axes = fig.subplots(1, panels, squeeze=False)[0]
        for k, name in enumerate(class_names):
            sel = label == k
            axes[0].scatter(proj[sel, 0], proj[sel, 1], s=4, alpha=0.5, label=name)
        if np.any(label < 0):
            axes[0].scatter(proj[label < 0, 0], proj[label < 0, 1], s=4, alpha=0.5, color="k", label="unlabelled")
        axes[0].legend(markerscale=3)
        if panels == 2:
            for d in np.unique(dom):
                sel = dom == d
                axes[1].scatter(proj[sel, 0], proj[sel, 1], s=4, alpha=0.5, label=str(d))
            axes[1].legend(markerscale=3)
        for ax in axes:
            ev = "" if explained is None else f" ({100 * explained[0]:.0f} %)"
            ax.set_xlabel(f"latent PC 1{ev}")
            ev = "" if explained is None or len(explained) < 2 else f" ({100 * explained[1]:.0f} %)"
            ax.set_ylabel(f"latent PC 2{ev}")
        experiment_label(axes[0])
    return fig


def reconstruction_errors_figure(
    error: np.ndarray, label: np.ndarray, class_names: Sequence[str], domain: np.ndarray | None = None, *, bins: int = 40,
) -> Figure:
    """Normalised distributions of the reconstruction error per class (and per domain when several), log x."""
    err, label = np.asarray(error, dtype=np.float64), np.asarray(label)
    positive = err[err > 0]
    lo, hi = (positive.min(), positive.max()) if positive.size else (1e-6, 1.0)
    edges = np.geomspace(lo, hi * 1.0001, bins + 1)
    with hep_style():
        fig = _new_figure((5.0, 4.0))
        ax = fig.subplots()
        groups = [(name, label == k) for k, name in enumerate(class_names)]
        if domain is not None:
            dom = np.asarray(domain)
            for d in np.unique(dom):
                if d != "sim":
                    groups.append((f"{d} (all)", dom == d))
        for name, sel in groups:
            if np.any(sel):
                step_histogram(ax, np.clip(err[sel], lo, None), edges, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("Reconstruction error (MSE, standardised units)")
        ax.set_ylabel("Normalised entries / bin width")
        ax.legend()
        experiment_label(ax)
    return fig


def label_efficiency_figure(results: Mapping[str, Mapping[int, Sequence[float]]], *, n_all: int | None = None) -> Figure:
    """Test AUC vs number of labelled training jets, one line per initialisation (e.g. random, pretrained).

    Each point is the mean over the draws of that size; the error bar their standard deviation.
    """
    with hep_style():
        fig = _new_figure((5.0, 4.0))
        ax = fig.subplots()
        draws = 1
        for name, points in results.items():
            xs = sorted(points)
            values = [np.atleast_1d(np.asarray(points[x], dtype=float)) for x in xs]
            draws = max(draws, *(v.size for v in values))
            bars = ax.errorbar(xs, [v.mean() for v in values], yerr=[v.std(ddof=1) if v.size > 1 else 0.0 for v in values],
                               marker="o", capsize=3, label=name)
            # each draw too: one stalled run explains a large spread at a glance
            draw_x = [x for x, v in zip(xs, values, strict=True) for _ in range(v.size) if v.size > 1]
            draw_y = [y for v in values if v.size > 1 for y in v]
            ax.plot(draw_x, draw_y, linestyle="none", marker=".", alpha=0.5, color=bars.lines[0].get_color())
        ax.set_xscale("log")
        # label the measured sizes only: log-axis minor labels (2x10^2, 3x10^2, ...) overlap
        sizes = sorted({x for points in results.values() for x in points})
        ax.set_xticks(sizes, [str(x) for x in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("Labelled training jets" + (f" (all = {n_all})" if n_all else ""))
        ax.set_ylabel("Test ROC AUC" + (f" (mean, std of {draws} draws)" if draws > 1 else ""))
        ax.legend()
        experiment_label(ax)
    return fig


plot_reconstruction_images = _plotter(reconstruction_images_figure)
plot_latent_projection = _plotter(latent_projection_figure)
plot_reconstruction_errors = _plotter(reconstruction_errors_figure)
plot_label_efficiency = _plotter(label_efficiency_figure)
