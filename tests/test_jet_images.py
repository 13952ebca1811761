"""Jet images: preprocessing invariances, E_T conservation, channels."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepdl.errors import ConfigError
from hepdl.represent.jet_images import jet_images


def make_jets(offsets, ets, jet_eta, jet_phi):
    """Jets from tower (deta, dphi) offsets and E_T; calo_e = E_T cosh(eta) (massless towers)."""
    eta = [je + o[:, 0] for o, je in zip(offsets, jet_eta, strict=True)]
    phi = [(jp + o[:, 1] + np.pi) % (2 * np.pi) - np.pi for o, jp in zip(offsets, jet_phi, strict=True)]
    e = [et * np.cosh(x) for et, x in zip(ets, eta, strict=True)]
    return ak.Array(eta), ak.Array(phi), ak.Array(e), np.asarray(jet_eta, float), np.asarray(jet_phi, float)


def two_prong(rng, n_jets=20, n_towers=40):
    """Two hard prongs of unequal E_T plus soft spray, at random orientations."""
    offsets, ets = [], []
    for _ in range(n_jets):
        sep = rng.uniform(0.3, 0.6)
        ang = rng.uniform(-np.pi, np.pi)
        c1 = np.array([0.0, 0.0])
        c2 = sep * np.array([np.cos(ang), np.sin(ang)])
        pts = np.concatenate([
            c1 + rng.normal(0, 0.04, (n_towers // 2, 2)),
            c2 + rng.normal(0, 0.04, (n_towers // 4, 2)),
            rng.uniform(-0.8, 0.8, (n_towers - n_towers // 2 - n_towers // 4, 2)),
        ])
        et = np.concatenate([
            rng.exponential(8, n_towers // 2), rng.exponential(4, n_towers // 4),
            rng.exponential(0.5, n_towers - n_towers // 2 - n_towers // 4),
        ])
        offsets.append(pts)
        ets.append(et)
    return offsets, ets


def images(offsets, ets, jet_eta, jet_phi, **kw):
    return jet_images(*make_jets(offsets, ets, jet_eta, jet_phi), channels=["calo_et"], **kw)


@pytest.fixture
def jets():
    rng = np.random.default_rng(7)
    offsets, ets = two_prong(rng)
    n = len(offsets)
    return offsets, ets, rng.uniform(-1.5, 1.5, n), rng.uniform(-np.pi, np.pi, n)


def test_rotation_invariance(jets):
    offsets, ets, jeta, jphi = jets
    base = images(offsets, ets, jeta, jphi)
    for angle in (0.7, 2.0, -2.6):
        c, s = np.cos(angle), np.sin(angle)
        rot = [o @ np.array([[c, s], [-s, c]]) for o in offsets]
        np.testing.assert_allclose(images(rot, ets, jeta, jphi), base, atol=1e-6)


def test_reflection_invariance(jets):
    offsets, ets, jeta, jphi = jets
    base = images(offsets, ets, jeta, jphi)
    for flip in (np.array([1.0, -1.0]), np.array([-1.0, 1.0]), np.array([-1.0, -1.0])):
        np.testing.assert_allclose(images([o * flip for o in offsets], ets, jeta, jphi), base, atol=1e-6)


def test_translation_invariance_including_phi_wrap(jets):
    offsets, ets, jeta, jphi = jets
    base = images(offsets, ets, jeta, jphi)
    # Jets straddling phi = +-pi must not split in two.
    moved = images(offsets, ets, jeta * 0 + 0.4, np.full(len(jeta), np.pi - 0.05))
    np.testing.assert_allclose(moved, base, atol=1e-6)


def test_image_sums_to_jet_et_and_subjets_land_in_place(jets):
    offsets, ets, jeta, jphi = jets
    img = images(offsets, ets, jeta, jphi, normalise="none", size=(33, 33), half_width=2.0)
    np.testing.assert_allclose(img.sum(axis=(1, 2, 3)), [e.sum() for e in ets], rtol=1e-5)
    # Leading subjet in the centre pixel, second subjet straight below it (towards row 0).
    flat_arg = img[:, 0].reshape(len(img), -1).argmax(axis=1)
    assert (flat_arg // 33 == 16).mean() > 0.9 and (flat_arg % 33 == 16).mean() > 0.9
    below = img[:, 0, :14, 14:19].sum(axis=(1, 2))
    above = img[:, 0, 19:, 14:19].sum(axis=(1, 2))
    assert (below > 3 * above).all()


def test_flip_puts_third_prong_on_the_right():
    # Two prongs plus a third one off their axis, on either side: after the flip it is always right.
    base = np.array([[0.0, 0.0], [0.0, -0.5], [0.3, -0.2]])
    offsets = [base, base * np.array([-1.0, 1.0]), base @ np.array([[0.0, 1.0], [-1.0, 0.0]])]
    ets = [np.array([50.0, 30.0, 10.0])] * 3
    img = images(offsets, ets, np.zeros(3), np.zeros(3), normalise="none", size=(33, 33), half_width=2.0)
    right = img[:, 0, :, 17:].sum(axis=(1, 2))
    np.testing.assert_allclose(right, 10.0, rtol=1e-5)


def test_sum_normalisation_and_track_channels():
    rng = np.random.default_rng(3)
    offsets, ets = two_prong(rng, n_jets=5)
    calo = make_jets(offsets, ets, np.zeros(5), np.zeros(5))
    trk_eta = ak.Array([rng.normal(0, 0.1, k) for k in (0, 3, 5, 1, 2)])
    trk_phi = ak.Array([rng.normal(0, 0.1, k) for k in (0, 3, 5, 1, 2)])
    trk_pt = ak.Array([rng.exponential(5, k) for k in (0, 3, 5, 1, 2)])
    img = jet_images(*calo, trk_pt=trk_pt, trk_eta=trk_eta, trk_phi=trk_phi, normalise="none")
    assert img.shape == (5, 3, 32, 32) and img.dtype == np.float32
    np.testing.assert_allclose(img[:, 2].sum(axis=(1, 2)), [0, 3, 5, 1, 2])
    np.testing.assert_allclose(img[:, 1].sum(axis=(1, 2)), ak.to_numpy(ak.sum(trk_pt, axis=1)), rtol=1e-5)
    norm = jet_images(*calo, trk_pt=trk_pt, trk_eta=trk_eta, trk_phi=trk_phi, normalise="sum")
    sums = norm.sum(axis=(2, 3))
    np.testing.assert_allclose(sums[1:], 1.0, rtol=1e-5)
    assert sums[0, 1] == 0 and sums[0, 2] == 0  # no tracks: the channel stays empty, not NaN
    assert np.isfinite(norm).all()


def test_one_prong_and_empty_jets_are_finite():
    eta = ak.Array([[0.1], [], [0.0, 0.05, -0.05]])
    phi = ak.Array([[0.2], [], [0.0, 0.01, 0.3]])
    e = ak.Array([[10.0], [], [5.0, 3.0, 1.0]])
    img = jet_images(eta, phi, e, np.zeros(3), np.zeros(3), channels=["calo_et"])
    assert np.isfinite(img).all()
    np.testing.assert_allclose(img.sum(axis=(1, 2, 3)), [1, 0, 1], rtol=1e-6)


def test_bad_settings_raise():
    eta, phi, e = ak.Array([[0.0]]), ak.Array([[0.0]]), ak.Array([[1.0]])
    with pytest.raises(ConfigError, match="channel"):
        jet_images(eta, phi, e, np.zeros(1), np.zeros(1), channels=["ecal"])
    with pytest.raises(ConfigError, match="trk_pt"):
        jet_images(eta, phi, e, np.zeros(1), np.zeros(1), channels=["calo_et", "trk_pt"])
    with pytest.raises(ConfigError, match="normalise"):
        jet_images(eta, phi, e, np.zeros(1), np.zeros(1), channels=["calo_et"], normalise="max")


def test_jet_normalisation_keeps_charged_fraction_and_multiplicity():
    rng = np.random.default_rng(4)
    offsets, ets = two_prong(rng, n_jets=5)
    calo = make_jets(offsets, ets, np.zeros(5), np.zeros(5))
    trk_eta = ak.Array([rng.normal(0, 0.1, k) for k in (0, 3, 5, 1, 2)])
    trk_phi = ak.Array([rng.normal(0, 0.1, k) for k in (0, 3, 5, 1, 2)])
    trk_pt = ak.Array([rng.exponential(5, k) for k in (0, 3, 5, 1, 2)])
    raw = jet_images(*calo, trk_pt=trk_pt, trk_eta=trk_eta, trk_phi=trk_phi, normalise="none")
    norm = jet_images(*calo, trk_pt=trk_pt, trk_eta=trk_eta, trk_phi=trk_phi, normalise="jet")
    calo_total = raw[:, 0].sum(axis=(1, 2))
    np.testing.assert_allclose(norm[:, 0].sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(norm[:, 1].sum(axis=(1, 2)), raw[:, 1].sum(axis=(1, 2)) / calo_total, rtol=1e-5)
    np.testing.assert_array_equal(norm[:, 2], raw[:, 2])  # track counts stay counts
