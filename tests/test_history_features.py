"""Fits from history features held as counts + kernels (``basis.history_features``).

The reference is the same fit on the materialised matrix ``basis.compute_features(counts)``,
whose values are themselves checked against NeMoS in test_basis.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import popglm as nmo
from popglm.simulation import random_coupled_network, simulate_counts


@pytest.fixture(scope="module")
def network_counts():
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=20)
    network = random_coupled_network(basis, 6, seed=3, refractory_strength=1.5)
    return basis, simulate_counts(network, 6000, burst_probability=1e-3, seed=4)


def test_history_features_equal_compute_features(network_counts):
    basis, counts = network_counts
    lazy = basis.history_features(counts)
    dense = basis.compute_features(counts)
    assert lazy.shape == dense.shape and lazy.ndim == 2
    np.testing.assert_array_equal(np.asarray(lazy), dense)  # NaN rows compare equal too


@pytest.mark.parametrize("masked", [False, True])
def test_fit_from_history_features_equals_dense_fit(network_counts, masked):
    basis, counts = network_counts
    n_features = counts.shape[1] * basis.n_basis_funcs
    mask = None
    if masked:
        mask = np.random.default_rng(0).random((n_features, counts.shape[1])) < 0.6
    dense = nmo.glm.PopulationGLM(feature_mask=mask).fit(basis.compute_features(counts), counts)
    lazy = nmo.glm.PopulationGLM(feature_mask=mask).fit(basis.history_features(counts), counts)
    assert lazy.converged_.all()
    # Same features bit for bit and the same arithmetic order in every reduction.
    np.testing.assert_allclose(lazy.coef_, dense.coef_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lazy.intercept_, dense.intercept_, rtol=1e-12, atol=1e-12)
    assert lazy.fit_info_["n_samples_used"] == dense.fit_info_["n_samples_used"]


def test_receivers_need_not_be_the_senders(network_counts):
    basis, counts = network_counts
    receivers = counts[:, [1, 4]]
    lazy = nmo.glm.PopulationGLM().fit(basis.history_features(counts), receivers)
    dense = nmo.glm.PopulationGLM().fit(basis.compute_features(counts), receivers)
    np.testing.assert_allclose(lazy.coef_, dense.coef_, rtol=1e-12, atol=1e-12)


def test_gradient_at_the_answer_is_zero(network_counts):
    # Independent check of optimality: the NumPy gradient of the mean NLL on the dense matrix.
    basis, counts = network_counts
    model = nmo.glm.PopulationGLM().fit(basis.history_features(counts), counts)
    X = basis.compute_features(counts)[basis.window_size :]
    y = counts[basis.window_size :]
    residual = np.exp(X @ model.coef_ + model.intercept_) - y
    gradient = np.vstack([residual.sum(axis=0), X.T @ residual]) / len(y)
    assert np.abs(gradient).max() <= 1e-8


def test_predict_from_history_features(network_counts):
    basis, counts = network_counts
    model = nmo.glm.PopulationGLM().fit(basis.compute_features(counts), counts)
    lazy_rate = model.predict(basis.history_features(counts))
    dense_rate = model.predict(basis.compute_features(counts))
    assert np.isnan(lazy_rate[: basis.window_size]).all()
    np.testing.assert_allclose(lazy_rate, dense_rate, rtol=1e-13)


def test_history_features_bad_input():
    basis = nmo.basis.HistoryConv(window_size=5)
    with pytest.raises(ValueError, match="finite"):
        basis.history_features(np.array([[0.0], [np.nan]] * 10))
    with pytest.raises(ValueError, match="more samples than window_size"):
        basis.history_features(np.zeros((5, 2)))
    lazy = basis.history_features(np.ones((20, 2)))
    model = nmo.glm.PopulationGLM().fit(np.asarray(lazy), np.ones((20, 1)))
    with pytest.raises(ValueError, match="shape"):
        model.predict(nmo.basis.HistoryConv(window_size=4).history_features(np.ones((20, 2))))


def test_history_fit_does_not_depend_on_threads(network_counts):
    basis, counts = network_counts
    features = basis.history_features(counts)
    fits = [nmo.glm.PopulationGLM(n_threads=k).fit(features, counts) for k in (1, 2, 4)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
        np.testing.assert_array_equal(other.intercept_, fits[0].intercept_)


def test_rows_with_nan_counts_are_dropped_as_in_the_dense_fit(network_counts):
    basis, counts = network_counts
    y = counts.astype(np.float64)
    y[[100, 2500], 2] = np.nan
    lazy = nmo.glm.PopulationGLM().fit(basis.history_features(counts), y)
    dense = nmo.glm.PopulationGLM().fit(basis.compute_features(counts), y)
    assert lazy.fit_info_["n_samples_used"] == dense.fit_info_["n_samples_used"] == 6000 - 20 - 2
    np.testing.assert_allclose(lazy.coef_, dense.coef_, rtol=1e-12, atol=1e-12)
