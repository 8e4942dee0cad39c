from __future__ import annotations

import numpy as np
import pytest

import popglm as nmo
from popglm.simulation import random_coupled_network, simulate_counts


def test_simulated_network_is_recovered():
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
    network = random_coupled_network(
        basis, 4, spike_probability=(0.1, 0.2), connection_probability=0.5,
        refractory_strength=1.0, seed=3,
    )  # fmt: skip
    counts = simulate_counts(network, 60_000, seed=4)
    assert counts.shape == (60_000, 4) and counts.dtype.kind == "i"
    assert 0.03 < counts.mean() < 0.5
    model = nmo.glm.PopulationGLM().fit(basis.compute_features(counts), counts)
    # With 60k bins the MLE is within a few standard errors (~0.05-0.1 here) of the truth.
    np.testing.assert_allclose(model.intercept_, network.intercept, atol=0.15)
    np.testing.assert_allclose(model.coef_, network.coef, atol=0.5)
    assert np.corrcoef(model.coef_.ravel(), network.coef.ravel())[0, 1] > 0.9


def test_filters_are_kernel_times_weights():
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=12)
    network = random_coupled_network(basis, 3, seed=0)
    filters = network.filters()
    assert filters.shape == (3, 12, 3)
    weights = network.coef.reshape(3, 4, 3)
    np.testing.assert_allclose(filters[1, :, 2], basis.kernel_ @ weights[1, :, 2])


def test_simulation_is_seeded():
    basis = nmo.basis.HistoryConv(5)
    network = random_coupled_network(basis, 3, seed=1)
    first = simulate_counts(network, 500, seed=9)
    np.testing.assert_array_equal(first, simulate_counts(network, 500, seed=9))
    assert not np.array_equal(first, simulate_counts(network, 500, seed=10))


def test_bad_arguments():
    basis = nmo.basis.HistoryConv(5)
    with pytest.raises(ValueError, match="n_neurons"):
        random_coupled_network(basis, 0)
    with pytest.raises(ValueError, match="n_samples"):
        simulate_counts(random_coupled_network(basis, 2), -1)
