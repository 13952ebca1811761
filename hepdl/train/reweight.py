"""Reweighting of the background's jet (pT, eta) spectrum to the signal's.

Signal (boosted W/Z/top) and background (QCD) jets have different pT spectra in a
sample; a tagger would learn that difference instead of the substructure. Weighting
background jets by the ratio of the signal to background densities in (pT, eta)
bins makes the weighted spectra equal, so pT carries no information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepdl.errors import InputError

#: Fewest entries of the smaller class per (pT, eta) bin on average: with 20 quantile bins over
#: 50 jets most background jets would share no bin with a signal jet and get weight 0.
MIN_PER_BIN = 10


def _quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([values.min() - 0.5, values.max() + 0.5])
    # the open outer bins take values outside the training range (validation/test)
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


@dataclass
class SpectrumReweighter:
    """The (pT, eta) histogram ratio signal/background, fitted on one split, applied to any.

    Build it with :meth:`fit`; :meth:`weights` gives per-entry factors (1 for signal).
    """

    pt_edges: np.ndarray
    eta_edges: np.ndarray
    ratio: np.ndarray  # (n_pt, n_eta) signal density / background density
    signal_label: int = 1

    @classmethod
    def fit(
        cls, pt: np.ndarray, eta: np.ndarray | None, label: np.ndarray, weight: np.ndarray | None = None,
        *, pt_bins: int = 20, eta_bins: int = 4, signal_label: int = 1,
    ) -> SpectrumReweighter:
        """Histogram signal and background in quantile bins of the combined sample.

        ``eta=None`` reweights pT alone. Bins without background get ratio 0 (no
        background entry falls there in the fitting sample anyway); background
        entries in bins without signal get weight 0: no signal lives there. A small
        sample gets fewer bins: at least ``MIN_PER_BIN`` distinct entries of the smaller
        class per bin on average (pT bins first, then eta).
        """
        pt = np.asarray(pt, dtype=np.float64)
        label = np.asarray(label)
        w = np.ones(len(pt)) if weight is None else np.asarray(weight, dtype=np.float64)
        is_sig = label == signal_label
        if not is_sig.any() or is_sig.all():
            raise InputError("pT reweighting needs both signal and background entries in the training split")
        # distinct pT values, not entries: a small set repeated to fill epochs is no larger a sample
        distinct = min(np.unique(pt[is_sig]).size, np.unique(pt[~is_sig]).size)
        cells = max(1, distinct // MIN_PER_BIN)
        pt_bins = min(pt_bins, cells)
        eta_bins = min(eta_bins, max(1, cells // pt_bins))
        pt_edges = _quantile_edges(pt, pt_bins)
        if eta is None:
            eta_arr = np.zeros(len(pt))
            eta_edges = np.array([-np.inf, np.inf])
        else:
            eta_arr = np.asarray(eta, dtype=np.float64)
            eta_edges = _quantile_edges(eta_arr, eta_bins)
        sig, _, _ = np.histogram2d(pt[is_sig], eta_arr[is_sig], bins=(pt_edges, eta_edges), weights=w[is_sig])
        bkg, _, _ = np.histogram2d(pt[~is_sig], eta_arr[~is_sig], bins=(pt_edges, eta_edges), weights=w[~is_sig])
        sig_density = sig / sig.sum()
        bkg_density = bkg / bkg.sum()
        ratio = np.divide(sig_density, bkg_density, out=np.zeros_like(sig_density), where=bkg_density > 0)
        return cls(pt_edges, eta_edges, ratio, signal_label)

    def weights(self, pt: np.ndarray, eta: np.ndarray | None, label: np.ndarray) -> np.ndarray:
        """Per-entry factors: the ratio for background entries, 1 for signal (and other labels)."""
        pt = np.asarray(pt, dtype=np.float64)
        eta_arr = np.zeros(len(pt)) if eta is None else np.asarray(eta, dtype=np.float64)
        i = np.clip(np.searchsorted(self.pt_edges, pt, side="right") - 1, 0, len(self.pt_edges) - 2)
        j = np.clip(np.searchsorted(self.eta_edges, eta_arr, side="right") - 1, 0, len(self.eta_edges) - 2)
        is_bkg = (np.asarray(label) != self.signal_label) & (np.asarray(label) >= 0)
        return np.where(is_bkg, self.ratio[i, j], 1.0).astype(np.float32)


def reweight_background_to_signal(
    pt: np.ndarray, eta: np.ndarray | None, label: np.ndarray, weight: np.ndarray | None = None,
    *, pt_bins: int = 20, eta_bins: int = 4, signal_label: int = 1,
) -> np.ndarray:
    """Weights (float32, one per entry) making the background's (pT[, eta]) spectrum the signal's.

    Signal entries get 1; background entries the signal/background density ratio of
    their bin, normalised so the background's summed weight is unchanged (the class
    balance stays as it was; only the shape of the spectrum changes).
    """
    rw = SpectrumReweighter.fit(pt, eta, label, weight, pt_bins=pt_bins, eta_bins=eta_bins, signal_label=signal_label)
    return rw.weights(pt, eta, label)


def pt_flat_weights(pt: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Event weights (1 if None) times the factors that give this sample's background the signal's
    pT spectrum, fitted on the sample itself: evaluation weights under which pT cannot separate."""
    w = np.ones(len(label)) if weight is None else np.asarray(weight, dtype=np.float64)
    return w * reweight_background_to_signal(pt, None, label, w)
