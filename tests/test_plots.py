"""hepdl.evaluate.plots: baseline-image comparison plus checks that figures show the right numbers.

Baselines live in tests/baseline_images/. After an intended change to a plot, regenerate with

    HEPDL_REGEN_BASELINES=1 python -m pytest tests/test_plots.py

look at the new PNGs, and commit them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.testing.compare import compare_images

from hepdl.errors import ConfigError
from hepdl.evaluate import metrics, plots
from hepdl.figures import LABEL_ENV, STYLE_ENV
from hepdl.tasks import get_task
from hepdl.train.objectives.adapt import Adapt

BASELINES = Path(__file__).parent / "baseline_images"
REGEN = os.environ.get("HEPDL_REGEN_BASELINES") == "1"
# RMS pixel difference allowed: absorbs freetype/antialiasing differences between machines
TOLERANCE = 3.0
CLASSES = ["numu_cc", "nue_cc", "nc"]


@pytest.fixture(autouse=True)
def _default_style(monkeypatch):
    """Baselines are drawn in the default style whatever the caller's environment says."""
    monkeypatch.delenv(STYLE_ENV, raising=False)
    monkeypatch.delenv(LABEL_ENV, raising=False)


def _binary(seed=0, n=600, shift=1.0):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.5).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + shift * (2 * label - 1))))
    return score, label


def _multiclass(seed=2, n=400):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[label]
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True), label


def _images(seed=3, n=60):
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    eta = np.arange(12) - 5.5
    core = np.exp(-(eta[:, None] ** 2 + eta[None, :] ** 2) / 6.0)
    prong = np.zeros((12, 12))
    prong[3, 9] = 0.5  # the second prong of a W, after rotation
    images = rng.exponential(size=(n, 12, 12)) * core + label[:, None, None] * prong
    return images[:, None].astype(np.float32), label


def _check_against_baseline(path: str, name: str) -> None:
    baseline = BASELINES / name
    if REGEN:
        BASELINES.mkdir(exist_ok=True)
        shutil.copyfile(path, baseline)
        return
    assert baseline.exists(), f"no baseline {baseline}; run with HEPDL_REGEN_BASELINES=1"
    result = compare_images(str(baseline), path, tol=TOLERANCE)
    assert result is None, result


def test_roc_plot(tmp_path):
    s1, y1 = _binary(0, shift=1.0)
    s2, y2 = _binary(0, shift=0.5)
    models = {"cnn": (s1, y1, None), "expert_bdt": (s2, y2, None)}
    fig = plots.roc_figure(models)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0] == f"cnn (AUC = {metrics.auc(s1, y1):.3f})"
    assert texts[1] == f"expert_bdt (AUC = {metrics.auc(s2, y2):.3f})"
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert "rejection" in ax.get_ylabel() and "efficiency" in ax.get_xlabel()
    # the plotted curve is 1/eps_B of the ROC
    roc = metrics.roc_curve(s1, y1)
    x, yv = ax.lines[0].get_data()
    keep = roc.background_efficiency > 0
    np.testing.assert_allclose(x, roc.signal_efficiency[keep])
    np.testing.assert_allclose(yv, 1 / roc.background_efficiency[keep])
    out = plots.plot_roc(models, path=tmp_path / "sub" / "roc.png")
    assert out == str(tmp_path / "sub" / "roc.png")
    assert not [p for p in os.listdir(tmp_path / "sub") if p != "roc.png"]  # no temp left behind
    _check_against_baseline(out, "roc.png")


def test_roc_gives_every_model_its_own_line_and_keeps_the_legend_off_the_curves():
    models = {f"model_{i}": (*_binary(i, shift=0.3 + 0.1 * i), None) for i in range(13)}
    fig = plots.roc_figure(models)
    fig.canvas.draw()
    ax = fig.axes[0]
    styles = [(ln.get_color(), ln.get_linestyle()) for ln in ax.lines[:13]]
    assert len(set(styles)) == 13
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # beside the axes, over no curve


@pytest.mark.parametrize(("style", "experiment"), [("cms", "CMS"), ("atlas", "ATLAS"), ("lhcb", "LHCb")])
def test_experiment_style_and_label(monkeypatch, style, experiment):
    monkeypatch.setenv(STYLE_ENV, style)
    monkeypatch.setenv(LABEL_ENV, "Simulation Internal")
    s, y = _binary(0)
    fig = plots.roc_figure({"cnn": (s, y, None)})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert experiment in texts and "Simulation Internal" in texts


def test_cms_style_baseline(monkeypatch, tmp_path):
    monkeypatch.setenv(STYLE_ENV, "cms")
    s1, y1 = _binary(0, shift=1.0)
    s2, y2 = _binary(0, shift=0.5)
    out = plots.plot_roc({"cnn": (s1, y1, None), "expert_bdt": (s2, y2, None)}, title="jets",
                         path=tmp_path / "roc_cms.png")
    _check_against_baseline(out, "roc_cms.png")


def test_unknown_style_is_a_config_error(monkeypatch):
    monkeypatch.setenv(STYLE_ENV, "cdf")
    with pytest.raises(ConfigError, match="HEPDL_PLOT_STYLE='cdf'"):
        plots.roc_figure({"cnn": (*_binary(0), None)})


def test_score_plot_with_data(tmp_path):
    s, y = _binary(1)
    data, _ = _binary(5, shift=0.7)
    fig = plots.score_figure(s, y, name="cnn", data_score=data)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"data (KS = {metrics.ks_statistic(s, data):.3f})" in texts
    assert "signal" in texts and "background" in texts
    # histograms are normalised: each step histogram integrates to one
    patches = fig.axes[0].patches
    assert len(patches) >= 2
    edges = np.linspace(min(s.min(), data.min()), max(s.max(), data.max()), 41)
    values, drawn_edges = patches[0].get_data()[:2]
    np.testing.assert_allclose(drawn_edges, edges)
    np.testing.assert_allclose(values, np.histogram(s[y == 1], bins=edges, density=True)[0], rtol=1e-12)
    out = plots.plot_scores(s, y, name="cnn", data_score=data, path=tmp_path / "scores.png")
    _check_against_baseline(out, "scores.png")


def test_average_images_plot(tmp_path):
    images, label = _images()
    extent = (-0.8, 0.8, -0.8, 0.8)
    fig = plots.average_images_figure(images, label, ["QCD", "W"], extent=extent)
    shown = fig.axes[1].images[0].get_array()
    np.testing.assert_allclose(
        np.asarray(shown), np.clip(images[label == 1, 0].mean(0), shown.min(), None), rtol=1e-5
    )
    assert fig.axes[0].images[0].get_extent() == [-0.8, 0.8, -0.8, 0.8]
    assert "N = 30" in fig.axes[0].get_title(loc="right")
    out = plots.plot_average_images(
        images, label, ["QCD", "W"], extent=extent, path=tmp_path / "img.png"
    )
    _check_against_baseline(out, "average_images.png")


def test_confusion_plot(tmp_path):
    probs, label = _multiclass()
    cm = metrics.confusion_matrix(probs, label)
    fig = plots.confusion_figure(probs, label, CLASSES, name="cvn")
    # the cells' numbers (in data coordinates; the experiment label is in axes coordinates)
    eff_texts = [t.get_text() for t in fig.axes[0].texts if t.get_transform() is fig.axes[0].transData]
    pur_texts = [t.get_text() for t in fig.axes[1].texts if t.get_transform() is fig.axes[1].transData]
    assert eff_texts == [f"{v:.2f}" for v in cm["efficiency"].ravel()]
    assert pur_texts == [f"{v:.2f}" for v in cm["purity"].ravel()]
    out = plots.plot_confusion(probs, label, CLASSES, name="cvn", path=tmp_path / "cm.png")
    _check_against_baseline(out, "confusion.png")


def test_training_curves_plot(tmp_path):
    epochs = np.arange(1, 9)
    columns = {
        "epoch": epochs,
        "train_loss": 0.7 * np.exp(-epochs / 4) + 0.2,
        "val_loss": 0.7 * np.exp(-epochs / 5) + 0.25,
        "val_auc": 0.9 - 0.3 * np.exp(-epochs / 3),
    }
    fig = plots.training_curves_figure(columns)
    lines = {ln.get_label(): ln.get_ydata() for ln in fig.axes[0].lines}
    np.testing.assert_allclose(lines["val_loss"], columns["val_loss"])
    assert [ln.get_label() for ln in fig.axes[1].lines] == ["val_auc"]
    out = plots.plot_training_curves(columns, path=tmp_path / "curves.png")
    _check_against_baseline(out, "training_curves.png")


def test_adversarial_training_curve_says_what_its_loss_holds(tmp_path):
    epochs = np.arange(1, 7)
    columns = {"epoch": epochs, "train_loss": 1.2 - 0.05 * epochs, "val_loss": 0.6 - 0.04 * epochs,
               "val_auc": 0.8 + 0.01 * epochs}
    fig = plots.training_curves_figure(columns, labels=Adapt.curve_labels)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["train: label + domain loss (adversarial)", "validation: label loss (simulation)"]
    out = plots.plot_training_curves(columns, labels=Adapt.curve_labels, path=tmp_path / "dann.png")
    _check_against_baseline(out, "training_curves_dann.png")


def test_event_display(tmp_path):
    rng = np.random.default_rng(4)
    maps = rng.exponential(size=(2, 2, 30, 20)) * (rng.random((2, 2, 30, 20)) < 0.15)
    probs, _ = _multiclass(n=2)
    fig = plots.event_display_figure(maps, probs, CLASSES, label=np.array([1, 2]))
    titles = [sf.get_suptitle() for sf in fig.subfigs]
    assert titles[0].startswith("Event 0: true nue_cc;")
    assert f"P(nue_cc) = {probs[0, 1]:.2f}" in titles[0]
    np.testing.assert_allclose(fig.subfigs[1].axes[1].images[0].get_array(), maps[1, 1].T)
    # a colour scale with the energy unit beside each event, axes with units
    colourbar = fig.subfigs[0].axes[2]
    assert colourbar.get_ylabel() == "Energy per cell [MeV]"
    assert colourbar.get_ylim()[1] == pytest.approx(maps[0].max())
    assert fig.subfigs[0].axes[0].get_xlabel() == "z [plane of the view]"
    assert fig.subfigs[0].axes[1].get_ylabel() == "y [cell]"
    out = plots.plot_event_display(
        maps, probs, CLASSES, label=np.array([1, 2]), path=tmp_path / "ev.png"
    )
    _check_against_baseline(out, "event_display.png")


def test_domain_scores_name_the_declared_signal_class(tmp_path):
    s, y = _binary(6)
    d, _ = _binary(7, shift=0.6)
    m = {"domain_auc": 0.61, "ks": 0.08}
    signal, background = get_task("neutrino").targets.score_labels()
    assert (signal, background) == (r"$\nu_e$ CC", "other")
    panels = {"cvn": (s, y, d, m), "dann": (d[: len(s)], y, s, m)}
    fig = plots.domain_scores_figure(panels, signal=signal, background=background)
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"cvn: P($\nu_e$ CC)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == [r"sim $\nu_e$ CC", "sim other", "sim (all)"]
    assert get_task("jets").targets.score_labels() == ("W", "QCD")
    out = plots.plot_domain_scores(panels, signal=signal, background=background, path=tmp_path / "dom.png")
    _check_against_baseline(out, "domain_scores.png")


def test_reconstruction_errors_are_filled_through_hist():
    from hepdl.evaluate.autoencoder_plots import reconstruction_errors_figure

    rng = np.random.default_rng(8)
    err, label = rng.lognormal(size=300), rng.integers(0, 2, 300)
    fig = reconstruction_errors_figure(err, label, ["QCD", "W"], bins=20)
    edges = np.geomspace(err.min(), err.max() * 1.0001, 21)
    values, drawn_edges = fig.axes[0].patches[1].get_data()[:2]
    np.testing.assert_allclose(drawn_edges, edges)
    np.testing.assert_allclose(values, np.histogram(err[label == 1], bins=edges, density=True)[0], rtol=1e-12)
    assert "Simulation" in [t.get_text() for t in fig.axes[0].texts]


def test_bad_inputs():
    with pytest.raises(Exception, match="pixel maps"):
        plots.event_display_figure(np.zeros((2, 3, 4, 4)), np.zeros((2, 3)), CLASSES)
    with pytest.raises(Exception, match="no models"):
        plots.roc_figure({})
