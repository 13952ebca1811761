"""N-subjettiness and expert jet variables against FastJet (contrib Nsubjettiness) on generated jets."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepdl.errors import ConfigError
from hepdl.represent.expert_variables import EXPERT_FEATURES, expert_jet_variables
from hepdl.represent.jagged import offsets_of
from hepdl.represent.kt_clustering import MAX_ALLOWABLE_R, exclusive_kt_subjets
from hepdl.represent.nsubjettiness import nsubjettiness

fastjet = pytest.importorskip("fastjet")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from hepdl.generate import generate_jets
    from hepdl.io import read_events

    path = tmp_path_factory.mktemp("nsub") / "jets.root"
    generate_jets(str(path), variant="sim", n_signal=50, n_background=50, seed=11)
    return read_events(str(path), "events", ["calo_eta", "calo_phi", "calo_e", "jet_pt", "trk_pt", "label"])


def momenta(chunk):
    eta, phi, e = (ak.values_astype(chunk[f], np.float64) for f in ("calo_eta", "calo_phi", "calo_e"))
    pt = e / np.cosh(eta)
    return ak.zip({"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": e}, with_name="Momentum4D")


def contrib_taus(chunk, axes_definition="OnePass_KT_Axes"):
    seq = fastjet.ClusterSequence(momenta(chunk), fastjet.JetDefinition(fastjet.kt_algorithm, 1.0))
    taus = seq.njettiness(njets=[1, 2, 3], R0=1.0, beta=1.0, axes_definition=axes_definition)
    return ak.to_numpy(taus).reshape(-1, 3)


def test_taus_agree_with_fastjet_contrib(generated):
    taus = nsubjettiness(generated["calo_eta"], generated["calo_phi"], generated["calo_e"])
    kt_only = nsubjettiness(generated["calo_eta"], generated["calo_phi"], generated["calo_e"], axes="kt")
    for mine, axes_definition in ((taus, "OnePass_KT_Axes"), (kt_only, "KT_Axes")):
        ref = contrib_taus(generated, axes_definition)
        agree = (np.abs(mine - ref) <= 1e-5 * ref).all(axis=1)
        # Same algorithm, so equal to rounding - except where exact d_ij ties decide a merge:
        # calorimeter towers sit on a grid, so a soft tower is often exactly as far from two
        # neighbours, and FastJet (its N2MHTLazy9 strategy for > ~30 particles) breaks such
        # ties in its heap's order, ours in N2Plain's. That moves the exclusive subjets of a
        # few per cent of jets (seen: 3.5% of jets after the one-pass minimisation, 11% with
        # plain kT axes, on 200 generated jets); the tie-free test below has no exception.
        assert agree.mean() >= (0.9 if axes_definition == "OnePass_KT_Axes" else 0.8), axes_definition
        assert np.abs(mine[:, 0] - ref[:, 0]).max() <= 1e-5 * ref[:, 0].min()  # N = 1: no merges matter


def tie_free_jets(n_jets=60, seed=5):
    """Jets of 2..70 particles at continuous (eta, phi), some across phi = +-pi: no exact distance ties."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 70, n_jets)
    centre_phi = np.repeat(rng.choice([np.pi - 0.1, 0.4, -2.0], n_jets), counts)
    centre_eta = np.repeat(rng.uniform(-2, 2, n_jets), counts)
    prong = rng.integers(0, 3, counts.sum())  # up to three prongs, so that tau2 and tau3 mean something
    eta = centre_eta + 0.3 * (prong - 1) + rng.normal(0, 0.12, counts.sum())
    phi = centre_phi + 0.25 * (prong % 2) + rng.normal(0, 0.12, counts.sum())
    phi = (phi + np.pi) % (2 * np.pi) - np.pi
    e = rng.exponential(5.0, counts.sum()) * np.cosh(eta)
    return ak.Array({f: ak.unflatten(a, counts) for f, a in (("calo_eta", eta), ("calo_phi", phi), ("calo_e", e))})


def test_kt_axes_and_taus_equal_contrib_without_ties():
    jets = tie_free_jets()
    for axes, axes_definition in (("onepass_kt", "OnePass_KT_Axes"), ("kt", "KT_Axes")):
        mine = nsubjettiness(jets["calo_eta"], jets["calo_phi"], jets["calo_e"], axes=axes)
        ref = contrib_taus(jets, axes_definition)
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=0)


@pytest.mark.parametrize(("n_max", "beta", "threads"), [(5, 1.0, 2), (3, 0.5, 1), (4, 2.0, 1)])
def test_more_axes_other_betas_and_threads_equal_contrib_without_ties(n_max, beta, threads):
    # Past three axes the minimisation sums through memory, not in scalars; other betas weigh
    # the particles with contrib's other formulas; threads split the jets into runs.
    jets = tie_free_jets(seed=3)
    mine = nsubjettiness(jets["calo_eta"], jets["calo_phi"], jets["calo_e"], n_max=n_max, beta=beta, threads=threads)
    seq = fastjet.ClusterSequence(momenta(jets), fastjet.JetDefinition(fastjet.kt_algorithm, 1.0))
    ref = seq.njettiness(njets=list(range(1, n_max + 1)), R0=1.0, beta=beta, axes_definition="OnePass_KT_Axes")
    np.testing.assert_allclose(mine, ak.to_numpy(ref).reshape(-1, n_max), rtol=1e-5, atol=1e-12)


def test_exclusive_subjets_equal_fastjet_without_ties():
    jets = tie_free_jets(seed=8)
    mom = momenta(jets)
    flat = {c: ak.to_numpy(ak.flatten(mom[c])) for c in ("px", "py", "pz", "E")}
    counts = ak.to_numpy(ak.num(mom))
    sub = exclusive_kt_subjets(flat["px"], flat["py"], flat["pz"], flat["E"], offsets_of(counts), 3)
    seq = fastjet.ClusterSequence(mom, fastjet.JetDefinition(fastjet.kt_algorithm, MAX_ALLOWABLE_R))
    for n_sub in (1, 2, 3):
        with pytest.warns(UserWarning, match="exclusive"):  # fastjet warns even for kT
            ref = seq.exclusive_jets(n_jets=n_sub)
        ref = np.stack([ak.to_numpy(ref[c]) for c in ("px", "py", "pz", "E")], axis=-1)
        mine = sub[:, n_sub * (n_sub - 1) // 2:n_sub * (n_sub + 1) // 2]
        # The same subjets, in either order: compare sorted by energy.
        order = np.argsort(ref[..., 3], axis=1)[..., None]
        mine_order = np.argsort(mine[..., 3], axis=1)[..., None]
        clustered = counts > n_sub  # with fewer constituents ours are left zero (tau_N = 0 there)
        assert clustered.sum() > 50
        np.testing.assert_allclose(np.take_along_axis(mine, mine_order, 1)[clustered],
                                   np.take_along_axis(ref, order, 1)[clustered], rtol=1e-9, atol=1e-9)


def test_threads_give_the_same_taus(generated):
    one = nsubjettiness(generated["calo_eta"], generated["calo_phi"], generated["calo_e"])
    two = nsubjettiness(generated["calo_eta"], generated["calo_phi"], generated["calo_e"], threads=2)
    np.testing.assert_array_equal(one, two)


def test_fast_cone_axes_approximate_contrib(generated):
    # The FastJet-free approximation: a few per cent off contrib, same discrimination.
    cone = nsubjettiness(generated["calo_eta"], generated["calo_phi"], generated["calo_e"], axes="cone")
    exact = nsubjettiness(generated["calo_eta"], generated["calo_phi"], generated["calo_e"])
    rel = np.abs(cone - exact) / exact
    assert (np.median(rel, axis=0) < 0.2).all()
    assert (cone >= exact * 0.999).mean() > 0.8  # contrib's minimised axes give the lower tau, mostly
    label = ak.to_numpy(generated["label"])
    tau21 = cone[:, 1] / cone[:, 0]
    assert np.median(tau21[label == 1]) < np.median(tau21[label == 0])


def test_expert_variables_mass_and_discrimination(generated):
    ex = expert_jet_variables(
        generated["calo_eta"], generated["calo_phi"], generated["calo_e"],
        ak.to_numpy(generated["jet_pt"]), ak.to_numpy(ak.num(generated["trk_pt"])),
    )
    assert ex.shape == (len(generated), len(EXPERT_FEATURES)) and ex.dtype == np.float32
    col = {name: ex[:, i] for i, name in enumerate(EXPERT_FEATURES)}
    seq = fastjet.ClusterSequence(momenta(generated), fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))
    with pytest.warns(UserWarning, match="exclusive"):  # fastjet warns even for kT
        whole = seq.exclusive_jets(n_jets=1)[:, 0]
    fj_mass = np.sqrt(np.maximum(ak.to_numpy(whole.E**2 - whole.px**2 - whole.py**2 - whole.pz**2), 0))
    np.testing.assert_allclose(col["mass"], fj_mass, rtol=1e-4)
    np.testing.assert_allclose(col["tau21"], col["tau2"] / col["tau1"], rtol=1e-5)
    np.testing.assert_array_equal(col["n_constituents"], ak.to_numpy(ak.num(generated["calo_e"])))
    np.testing.assert_array_equal(col["n_tracks"], ak.to_numpy(ak.num(generated["trk_pt"])))
    label = ak.to_numpy(generated["label"])
    # Two-prong W jets have lower tau21 than QCD jets.
    assert np.median(col["tau21"][label == 1]) < np.median(col["tau21"][label == 0])


def test_few_constituents_give_zero_not_nan():
    eta = ak.Array([[0.0, 0.5], [0.1], [], [0.0, 0.3, -0.2, 0.1]])
    phi = ak.Array([[0.0, 0.1], [0.2], [], [0.0, 0.1, 0.2, -0.3]])
    e = ak.Array([[10.0, 5.0], [3.0], [], [4.0, 3.0, 2.0, 1.0]])
    taus = nsubjettiness(eta, phi, e)
    assert np.isfinite(taus).all()
    assert taus[0, 0] > 0 and taus[0, 1] == 0 and taus[0, 2] == 0  # two towers: tau2 = 0
    assert (taus[1] == 0).all() and (taus[2] == 0).all()
    assert taus[3, 0] > taus[3, 1] > taus[3, 2] > 0
    ex = expert_jet_variables(eta, phi, e, np.ones(4), np.zeros(4))
    assert np.isfinite(ex).all() and ex[1, 4] == 0  # tau21 of a one-tower jet is 0, not NaN


def test_bad_axes_raise():
    with pytest.raises(ConfigError, match="axes"):
        nsubjettiness(ak.Array([[0.0]]), ak.Array([[0.0]]), ak.Array([[1.0]]), axes="wta")
