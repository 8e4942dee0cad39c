"""Simulate recurrently coupled Poisson GLM networks with known filters (ground truth for fits).

The generative model is exactly the one ``PopulationGLM`` fits on ``basis.compute_features(counts)``:

    counts[t, j] ~ Poisson(exp(intercept[j] + sum_{i, k} coef[i * n_basis_funcs + k, j] * F[t, i, k]))

with ``F[t, i, k] = sum_l basis.kernel_[l - 1, k] * counts[t - l, i]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._validation import check_positive_int

__all__ = ["CoupledNetwork", "random_coupled_network", "simulate_counts"]


@dataclass
class CoupledNetwork:
    """Ground truth of a coupled network in a basis.

    Attributes
    ----------
    basis : convolutional basis
        The basis whose ``kernel_`` (window_size, n_basis_funcs) carries the filters.
    coef : ndarray, shape (n_neurons * n_basis_funcs, n_neurons)
        Coupling weights, sender-major rows as in ``PopulationGLM.coef_``.
    intercept : ndarray, shape (n_neurons,)
        Baseline log-rates.
    """

    basis: object
    coef: NDArray
    intercept: NDArray

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return self.intercept.shape[0]

    def filters(self) -> NDArray:
        """Coupling filters in time, shape ``(n_senders, window_size, n_receivers)`` (lag 1 first)."""
        kernel = self.basis.kernel_
        weights = self.coef.reshape(self.n_neurons, kernel.shape[1], self.n_neurons)
        return np.einsum("lk,skr->slr", kernel, weights)


def random_coupled_network(
    basis,
    n_neurons: int,
    spike_probability: tuple[float, float] = (0.01, 0.1),
    connection_probability: float = 0.1,
    coupling_strength: float = 0.6,
    refractory_strength: float = 3.0,
    seed: int | None = None,
) -> CoupledNetwork:
    """Draw a sparse excitatory/inhibitory network with refractory self-coupling.

    Parameters
    ----------
    basis : convolutional basis
        E.g. ``RaisedCosineLogConv(8, window_size=100)``.
    n_neurons : int
        Number of neurons.
    spike_probability : (float, float)
        Range of baseline spike probabilities per bin.
    connection_probability : float
        Probability of a directed coupling between two distinct neurons.
    coupling_strength : float
        Total gain of a coupling filter (summed over lags), half excitatory, half inhibitory.
    refractory_strength : float
        Depth of the negative self-coupling at its peak (on the earliest basis function).
    seed : int, optional
        Random seed.

    Returns
    -------
    CoupledNetwork
    """
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    rng = np.random.default_rng(seed)
    kernel = np.asarray(basis.kernel_)
    n_basis = kernel.shape[1]
    # Weights are per unit of each kernel's area, so a coupling's total gain (its filter summed
    # over lags) is about +-coupling_strength whatever the window: long windows do not run away.
    area = np.maximum(np.abs(kernel).sum(axis=0), 1e-12)
    connected = rng.uniform(size=(n_neurons, n_neurons)) < connection_probability
    np.fill_diagonal(connected, False)
    sign = np.where(rng.uniform(size=(n_neurons, n_neurons)) < 0.5, 1.0, -1.0)
    profile = rng.uniform(0.3, 1.0, size=(n_neurons, n_basis, n_neurons))
    profile /= profile.sum(axis=1, keepdims=True)
    weights = (connected * sign)[:, None, :] * coupling_strength * profile / area[None, :, None]
    # Refractoriness: the earliest kernel, scaled so that the filter reaches about
    # -refractory_strength at its peak.
    diagonal = np.arange(n_neurons)
    weights[diagonal, :, diagonal] = 0.0
    weights[diagonal, 0, diagonal] = -refractory_strength / max(np.abs(kernel[:, 0]).max(), 1e-12)
    low, high = spike_probability
    intercept = np.log(rng.uniform(low, high, size=n_neurons))
    return CoupledNetwork(
        basis=basis, coef=weights.reshape(n_neurons * n_basis, n_neurons), intercept=intercept
    )


def simulate_counts(
    network: CoupledNetwork,
    n_samples: int,
    max_log_rate: float = 1.5,
    burst_probability: float = 0.0,
    burst_log_rate: float = 1.5,
    seed: int | None = None,
) -> NDArray:
    """Simulate spike counts from a coupled network.

    Parameters
    ----------
    network : CoupledNetwork
        Ground truth.
    n_samples : int
        Number of time bins.
    max_log_rate : float
        Log-rates are clipped here during simulation, so excitation cannot run away.
    burst_probability : float
        Per-bin probability that a population burst starts (lasting 5 bins, adding
        ``burst_log_rate`` to every neuron's log-rate): occasional bursts, not in the model.
    burst_log_rate : float
        Extra log-rate during bursts.
    seed : int, optional
        Random seed.

    Returns
    -------
    ndarray of int, shape (n_samples, n_neurons)
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = np.random.default_rng(seed)
    filters = network.filters()  # (sender, lag, receiver)
    window = filters.shape[1]
    n_neurons = network.n_neurons
    # Ring buffer of the drive that past spikes will add to future bins.
    future = np.zeros((window + 1, n_neurons))
    counts = np.zeros((n_samples, n_neurons), dtype=np.int64)
    bursts = rng.uniform(size=n_samples) < burst_probability
    burst_left = 0
    uniforms = rng.uniform(size=(n_samples, n_neurons))
    for t in range(n_samples):
        slot = t % (window + 1)
        log_rate = network.intercept + future[slot]
        future[slot] = 0.0
        if bursts[t]:
            burst_left = 5
        if burst_left > 0:
            log_rate = log_rate + burst_log_rate
            burst_left -= 1
        rate = np.exp(np.minimum(log_rate, max_log_rate))
        spikes = _poisson_from_uniform(rate, uniforms[t])
        counts[t] = spikes
        for sender in np.flatnonzero(spikes):
            idx = (t + 1 + np.arange(window)) % (window + 1)
            future[idx] += spikes[sender] * filters[sender]
    return counts


def _poisson_from_uniform(rate: NDArray, uniform: NDArray) -> NDArray:
    """Poisson draws by inverting the CDF (rates here are small, so few terms are needed)."""
    counts = np.zeros(rate.shape, dtype=np.int64)
    probability = np.exp(-rate)
    cumulative = probability.copy()
    remaining = uniform > cumulative
    k = 0
    while remaining.any() and k < 100:
        k += 1
        probability = probability * rate / k
        cumulative = cumulative + probability
        counts[remaining] = k
        remaining &= uniform > cumulative
    return counts
