"""simulate_recurrent: the C++ loop against a NumPy re-implementation, and its Poisson draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import popglm as nmo
from popglm.simulation import coupling_coef_from_model, simulate_recurrent


def reference_rates(spikes, init_y, coupling, basis, drive, intercepts, link=np.exp):
    """NumPy: the rate at every bin given the simulated spikes (history through compute_features)."""
    window, n_basis = basis.shape
    history = np.concatenate([init_y, spikes])
    n_samples, n_neurons = spikes.shape
    rates = np.empty_like(spikes)
    for t in range(n_samples):
        past = history[t : t + window][::-1]  # lag 1 first
        filtered = np.einsum("lj,lb->jb", past, basis).ravel()
        rates[t] = link(intercepts + drive[t] + coupling.reshape(n_neurons, -1) @ filtered)
    return rates


@pytest.mark.parametrize("link", ["exp", "softplus"])
def test_rates_follow_the_recursion(link):
    rng = np.random.default_rng(1)
    n_neurons, window, n_basis, n_features = 3, 7, 2, 2
    basis = rng.uniform(0, 1, size=(window, n_basis))
    coupling = rng.normal(0, 0.3, size=(n_neurons, n_neurons, n_basis))
    coupling[np.arange(n_neurons), np.arange(n_neurons)] = -1.0  # refractory: stays stable
    ff_coef = rng.normal(size=(n_neurons, n_features))
    ff_input = rng.normal(0, 0.3, size=(400, n_neurons, n_features))
    intercepts = np.log([0.2, 0.5, 1.0])
    init_y = rng.poisson(0.5, size=(window, n_neurons)).astype(float)
    spikes, rates = simulate_recurrent(
        coupling, ff_coef, intercepts, 3, ff_input, basis, init_y, inverse_link_function=link
    )
    drive = np.einsum("ik,tik->ti", ff_coef, ff_input)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = reference_rates(
        spikes, init_y, coupling, basis, drive, intercepts, np.exp if link == "exp" else softplus
    )
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    assert np.all(spikes == np.round(spikes)) and spikes.min() >= 0


def test_convention_matches_compute_features_and_fit():
    """The fitted coefficients plug in: rates equal predict() on the features of the spikes."""
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=8)
    network = nmo.simulation.random_coupled_network(basis, 4, seed=2)
    coupling = coupling_coef_from_model(network.coef, 3)
    spikes, rates = simulate_recurrent(
        coupling, np.zeros((4, 1)), network.intercept, 0, np.zeros((3000, 4, 1)),
        basis.kernel_, np.zeros((8, 4)),
    )  # fmt: skip
    X = basis.compute_features(spikes)
    eta = X @ network.coef + network.intercept
    np.testing.assert_allclose(rates[8:], np.exp(eta[8:]), rtol=1e-10)


@pytest.mark.parametrize("rate", [0.05, 3.0, 9.99, 10.0, 40.0, 700.0])
def test_poisson_draws_have_the_poisson_distribution(rate):
    n = 40_000
    spikes, rates = simulate_recurrent(
        np.zeros((1, 1, 1)), np.zeros((1, 1)), np.array([np.log(rate)]), 123,
        np.zeros((n, 1, 1)), np.ones((1, 1)), np.zeros((1, 1)),
    )  # fmt: skip
    np.testing.assert_allclose(rates, rate)
    draws = spikes[:, 0]
    # Chi-square goodness of fit on bins holding >= 50 expected counts each.
    low, high = stats.poisson.ppf([1e-4, 1 - 1e-4], rate)
    edges = np.unique(np.linspace(low, high + 1, 30).astype(int))
    observed = np.histogram(draws, bins=np.concatenate([[-0.5], edges[1:-1] - 0.5, [np.inf]]))[0]
    cdf = stats.poisson.cdf(np.concatenate([edges[1:-1] - 1, [np.inf]]), rate)
    expected = n * np.diff(np.concatenate([[0.0], cdf]))
    keep = expected > 50
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4
    assert abs(draws.mean() - rate) < 5 * np.sqrt(rate / n)


def test_seed_reproducibility_and_errors():
    args = (np.zeros((2, 2, 1)), np.zeros((2, 1)), np.zeros(2))
    rest = (np.zeros((100, 2, 1)), np.ones((3, 1)), np.zeros((3, 2)))
    a, _ = simulate_recurrent(*args, 7, *rest)
    b, _ = simulate_recurrent(*args, np.random.default_rng(7), *rest)
    c, _ = simulate_recurrent(*args, 8, *rest)
    assert not np.array_equal(a, c)
    assert a.shape == b.shape == (100, 2)
    with pytest.raises(ValueError, match="inconsistent"):
        simulate_recurrent(np.zeros((3, 2, 1)), *args[1:], 7, *rest)
    with pytest.raises(ValueError, match="same \\(non-zero\\) window size"):
        simulate_recurrent(*args, 7, rest[0], rest[1], np.zeros((4, 2)))
    with pytest.raises(ValueError, match="inverse_link_function"):
        simulate_recurrent(*args, 7, *rest, inverse_link_function=np.tanh)
    with pytest.raises(TypeError, match="random_key"):
        simulate_recurrent(*args, "seed", *rest)
    runaway = np.full((2, 2, 1), 3.0)
    with pytest.raises(ValueError, match="unstable"):
        simulate_recurrent(runaway, *args[1:], 7, *rest)
