"""Inference on couplings: standard errors, Wald and LR tests, BH, filters; checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import simulate_coupled

import popglm as nmo
from popglm.inference import benjamini_hochberg, coupling_likelihood_ratio_test

sm = pytest.importorskip("statsmodels.api")
multitest = pytest.importorskip("statsmodels.stats.multitest")

N_BASIS = 3


@pytest.fixture(scope="module")
def data():
    counts = simulate_coupled(4000, 4, 6, seed=3)
    basis = nmo.basis.RaisedCosineLogConv(N_BASIS, window_size=6)
    X = basis.compute_features(counts)
    return basis, X, counts


def statsmodels_result(X, y, columns=None):
    keep = np.isfinite(X).all(axis=1)
    design = X[keep] if columns is None else X[keep][:, columns]
    design = np.column_stack([np.ones(keep.sum()), design])
    return sm.GLM(y[keep], design, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=500)


@pytest.mark.parametrize("history", [False, True])
def test_standard_errors_match_statsmodels(data, history):
    basis, X, counts = data
    model = nmo.glm.PopulationGLM().fit(X, counts)
    design = basis.history_features(counts) if history else X
    inference = model.inference(design)
    lower, upper = inference.coef_conf_int(0.9)
    for j in range(counts.shape[1]):
        ref = statsmodels_result(X, counts[:, j])
        np.testing.assert_allclose(inference.coef_se[:, j], ref.bse[1:], rtol=1e-6)
        assert inference.intercept_se[j] == pytest.approx(ref.bse[0], rel=1e-6)
        np.testing.assert_allclose(inference.z_values[:, j], ref.tvalues[1:], rtol=1e-6)
        np.testing.assert_allclose(inference.p_values[:, j], ref.pvalues[1:], rtol=1e-5, atol=1e-12)
        interval = ref.conf_int(alpha=0.1)
        np.testing.assert_allclose(lower[:, j], interval[1:, 0], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(upper[:, j], interval[1:, 1], rtol=1e-6, atol=1e-9)


def test_masked_and_single_neuron_standard_errors(data):
    _, X, counts = data
    mask = np.ones((X.shape[1], counts.shape[1]))
    mask[3:6, 0] = 0
    model = nmo.glm.PopulationGLM(feature_mask=mask).fit(X, counts)
    inference = model.inference(X)
    keep = np.flatnonzero(mask[:, 0])
    ref = statsmodels_result(X, counts[:, 0], columns=keep)
    np.testing.assert_allclose(inference.coef_se[keep, 0], ref.bse[1:], rtol=1e-6)
    assert np.isnan(inference.coef_se[3:6, 0]).all()
    single = nmo.glm.GLM().fit(X, counts[:, 2]).inference(X)
    ref = statsmodels_result(X, counts[:, 2])
    np.testing.assert_allclose(single.coef_se, ref.bse[1:], rtol=1e-6)
    assert single.coef_se.shape == (X.shape[1],)


def test_wald_coupling_test_matches_statsmodels(data):
    _, X, counts = data
    model = nmo.glm.PopulationGLM().fit(X, counts)
    statistic, p_value = model.inference(X).coupling_test(N_BASIS)
    n = counts.shape[1]
    assert statistic.shape == (n, n)
    for receiver in (0, 3):
        ref = statsmodels_result(X, counts[:, receiver])
        for sender in range(n):
            restriction = np.zeros((N_BASIS, X.shape[1] + 1))
            restriction[np.arange(N_BASIS), 1 + sender * N_BASIS + np.arange(N_BASIS)] = 1.0
            wald = ref.wald_test(restriction, scalar=True, use_f=False)
            assert statistic[sender, receiver] == pytest.approx(float(wald.statistic), rel=1e-5)
            assert p_value[sender, receiver] == pytest.approx(
                float(wald.pvalue), rel=1e-4, abs=1e-14
            )


def test_likelihood_ratio_test_matches_statsmodels(data):
    _, X, counts = data
    model = nmo.glm.PopulationGLM().fit(X, counts)
    statistic, p_value = coupling_likelihood_ratio_test(model, X, counts, N_BASIS)
    receiver = 1
    full = statsmodels_result(X, counts[:, receiver])
    for sender in range(counts.shape[1]):
        columns = np.setdiff1d(np.arange(X.shape[1]), sender * N_BASIS + np.arange(N_BASIS))
        reduced = statsmodels_result(X, counts[:, receiver], columns=columns)
        expected = 2 * (full.llf - reduced.llf)
        assert statistic[sender, receiver] == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_benjamini_hochberg_matches_statsmodels():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 1e-3, size=20)]).reshape(10, 10)
    expected = multitest.multipletests(p.ravel(), alpha=0.1, method="fdr_bh")[0].reshape(10, 10)
    np.testing.assert_array_equal(benjamini_hochberg(p, fdr=0.1), expected)
    p_nan = p.copy()
    p_nan[0, :3] = np.nan
    finite = np.isfinite(p_nan.ravel())
    expected = multitest.multipletests(p_nan.ravel()[finite], alpha=0.1, method="fdr_bh")[0]
    result = benjamini_hochberg(p_nan, fdr=0.1).ravel()
    np.testing.assert_array_equal(result[finite], expected)
    assert not result[~finite].any()
    with pytest.raises(ValueError, match="fdr must be"):
        benjamini_hochberg(p, fdr=1.5)


def test_coupling_filters_and_bands(data):
    basis, X, counts = data
    model = nmo.glm.PopulationGLM().fit(X, counts)
    filters, lower, upper = model.inference(X).coupling_filters(basis, level=0.95)
    n = counts.shape[1]
    assert filters.shape == (n, 6, n)
    kernel = basis.kernel_
    receiver, sender = 2, 1
    block = sender * N_BASIS + np.arange(N_BASIS)
    np.testing.assert_allclose(filters[sender, :, receiver], kernel @ model.coef_[block, receiver])
    covariance = statsmodels_result(X, counts[:, receiver]).cov_params()[
        np.ix_(block + 1, block + 1)
    ]
    half = 1.959963984540054 * np.sqrt(np.diag(kernel @ covariance @ kernel.T))
    np.testing.assert_allclose(
        upper[sender, :, receiver] - filters[sender, :, receiver], half, rtol=1e-5
    )
    np.testing.assert_allclose(filters - lower, upper - filters, atol=1e-12)


def test_inference_rejects_a_different_design(data):
    _, X, counts = data
    model = nmo.glm.PopulationGLM().fit(X, counts)
    with pytest.raises(ValueError, match="pass the design the model was fitted on"):
        model.inference(X[:-100])
    with pytest.raises(ValueError, match="not a multiple of n_basis_funcs"):
        model.inference(X).coupling_test(5)


def test_ground_truth_connectivity_is_recovered():
    """A 20-neuron network with known sparse couplings: Wald tests + BH find the connections."""
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=20)
    network = nmo.simulation.random_coupled_network(
        basis, 20, spike_probability=(0.03, 0.08), connection_probability=0.1,
        coupling_strength=1.5, seed=5,
    )  # fmt: skip
    coupling = nmo.simulation.coupling_coef_from_model(network.coef, 4)
    n_samples = 60_000
    spikes, _ = nmo.simulation.simulate_recurrent(
        coupling, np.zeros((20, 1)), network.intercept, 1, np.zeros((n_samples, 20, 1)),
        basis.kernel_, np.zeros((20, 20)),
    )  # fmt: skip
    X = basis.compute_features(spikes)
    model = nmo.glm.PopulationGLM().fit(X, spikes)
    _, p_value = model.inference(X).coupling_test(4)
    off_diagonal = ~np.eye(20, dtype=bool)
    truth = np.abs(network.coef).reshape(20, 4, 20).sum(axis=1) > 0
    found = benjamini_hochberg(np.where(off_diagonal, p_value, np.nan), fdr=0.05)
    true_positives = np.sum(found & truth)
    sensitivity = true_positives / truth[off_diagonal].sum()
    false_discovery = np.sum(found & ~truth) / max(found.sum(), 1)
    print(f"recovery: {truth[off_diagonal].sum()} true couplings, sensitivity {sensitivity:.2f}, "
          f"false discovery rate {false_discovery:.3f}")  # fmt: skip
    assert sensitivity >= 0.8
    assert false_discovery <= 0.1
