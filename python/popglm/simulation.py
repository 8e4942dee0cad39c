"""Simulate recurrently coupled Poisson GLM networks with known filters (ground truth for fits).

The generative model is exactly the one ``PopulationGLM`` fits on ``basis.compute_features(counts)``:

    counts[t, j] ~ Poisson(exp(intercept[j] + sum_{i, k} coef[i * n_basis_funcs + k, j] * F[t, i, k]))

with ``F[t, i, k] = sum_l basis.kernel_[l - 1, k] * counts[t - l, i]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._native import core as _core
from ._validation import as_numeric_array, check_positive_int

__all__ = [
    "CoupledNetwork",
    "coupling_coef_from_model",
    "random_coupled_network",
    "simulate_counts",
    "simulate_recurrent",
]


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


def simulate_recurrent(
    coupling_coef: ArrayLike,
    feedforward_coef: ArrayLike,
    intercepts: ArrayLike,
    random_key: Any,
    feedforward_input: ArrayLike,
    coupling_basis_matrix: ArrayLike,
    init_y: ArrayLike,
    inverse_link_function: Callable | str = "exp",
    max_rate: float = 1e4,
) -> tuple[NDArray, NDArray]:
    """Simulate a coupled GLM network bin by bin (NeMoS's ``simulate_recurrent``, in C++).

    At bin ``t`` neuron ``i`` fires ``Poisson(rate[t, i])`` spikes, with ``rate[t, i] =
    link(intercepts[i] + feedforward_input[t, i] @ feedforward_coef[i] + sum_{j, b}
    coupling_coef[i, j, b] * h[t, j, b])`` and ``h[t, j, b] = sum_{lag=1..window}
    coupling_basis_matrix[lag - 1, b] * y[t - lag, j]``: the convention of
    ``basis.compute_features`` (so the coefficients of a fitted PopulationGLM on
    ``compute_features(counts)`` plug in directly, see ``coupling_coef_from_model``).

    Parameters
    ----------
    coupling_coef : array-like, shape (n_neurons, n_neurons, n_basis_funcs)
        ``[receiver, sender, basis]`` weights.
    feedforward_coef : array-like, shape (n_neurons, n_features)
    intercepts : array-like, shape (n_neurons,)
    random_key : int, numpy.random.Generator or None
        Seed (NeMoS takes a JAX key; popglm's draws are its own, reproducible on every
        platform for a given seed).
    feedforward_input : array-like, shape (n_samples, n_neurons, n_features)
    coupling_basis_matrix : array-like, shape (window_size, n_basis_funcs)
    init_y : array-like, shape (window_size, n_neurons)
        Activity before the first bin, oldest first.
    inverse_link_function : "exp", "softplus" or an exp/softplus function
        Default exp, the Poisson GLM's link (NeMoS defaults to softplus here).
    max_rate : float
        A rate above this (per bin) stops the simulation with a ValueError: the network is
        unstable.

    Returns
    -------
    simulated_activity, firing_rates : ndarray, shape (n_samples, n_neurons)
    """
    coupling = _float_array(coupling_coef, "coupling_coef", 3)
    basis = _float_array(coupling_basis_matrix, "coupling_basis_matrix", 2)
    feedforward = _float_array(feedforward_input, "feedforward_input", 3)
    weights = _float_array(feedforward_coef, "feedforward_coef", 2)
    intercepts = _float_array(intercepts, "intercepts", 1)
    history = _float_array(init_y, "init_y", 2)
    n_neurons = intercepts.shape[0]
    if not (
        coupling.shape[:2] == (n_neurons, n_neurons)
        and feedforward.shape[1] == n_neurons
        and weights.shape[0] == n_neurons
        and history.shape[1] == n_neurons
    ):
        raise ValueError(
            "The number of neurons provided in the inputs is inconsistent: intercepts has "
            f"{n_neurons}, coupling_coef {coupling.shape[:2]}, feedforward_input "
            f"{feedforward.shape[1]}, feedforward_coef {weights.shape[0]}, init_y {history.shape[1]}"
        )
    if weights.shape[1] != feedforward.shape[2]:
        raise ValueError(
            f"Inconsistent number of features: feedforward_coef has {weights.shape[1]}, "
            f"feedforward_input has {feedforward.shape[2]}"
        )
    if coupling.shape[2] != basis.shape[1]:
        raise ValueError(
            f"Inconsistent number of features: coupling_basis_matrix has {basis.shape[1]} basis "
            f"functions, coupling_coef assumes {coupling.shape[2]}"
        )
    if history.shape[0] != basis.shape[0] or basis.shape[0] == 0:
        raise ValueError(
            "init_y and coupling_basis_matrix should have the same (non-zero) window size: "
            f"init_y window size {history.shape[0]}, coupling_basis_matrix {basis.shape[0]}"
        )
    for name, array in (
        ("coupling_coef", coupling),
        ("feedforward_coef", weights),
        ("intercepts", intercepts),
        ("feedforward_input", feedforward),
        ("coupling_basis_matrix", basis),
        ("init_y", history),
    ):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or inf")
    if not (np.isfinite(max_rate) and max_rate > 0):
        raise ValueError(f"max_rate must be a positive finite number, got {max_rate!r}")
    link = _link_name(inverse_link_function)
    rng = random_key if isinstance(random_key, np.random.Generator) else None
    if rng is None:
        if random_key is not None and not isinstance(random_key, (int, np.integer)):
            raise TypeError(
                "random_key must be an int seed, a numpy.random.Generator or None, got "
                f"{type(random_key).__name__}"
            )
        rng = np.random.default_rng(random_key)
    seed = int(rng.integers(0, 2**63))

    n_samples = feedforward.shape[0]
    drive = np.asfortranarray(np.einsum("ik,tik->ti", weights, feedforward))
    spikes = np.empty((n_samples, n_neurons), order="F")
    rates = np.empty((n_samples, n_neurons), order="F")
    _core.simulate_recurrent(
        np.asfortranarray(coupling.reshape(n_neurons, -1)), np.asfortranarray(basis), drive,
        np.ascontiguousarray(intercepts), np.asfortranarray(history), link, seed,
        float(max_rate), spikes, rates,
    )  # fmt: skip
    return spikes, rates


def coupling_coef_from_model(coef: ArrayLike, n_basis_funcs: int) -> NDArray:
    """Reshape a PopulationGLM's ``coef_`` on history features to ``simulate_recurrent``'s layout.

    ``coef_`` of shape ``(n_neurons * n_basis_funcs, n_neurons)`` (``[sender * K + b,
    receiver]``) becomes ``(n_neurons, n_neurons, n_basis_funcs)`` (``[receiver, sender, b]``).
    """
    coef = _float_array(coef, "coef", 2)
    n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
    n_features, n_receivers = coef.shape
    if n_features % n_basis_funcs:
        raise ValueError(
            f"coef has {n_features} rows, not a multiple of n_basis_funcs = {n_basis_funcs}"
        )
    return coef.reshape(n_features // n_basis_funcs, n_basis_funcs, n_receivers).transpose(2, 0, 1)


def _float_array(x: ArrayLike, name: str, ndim: int) -> NDArray:
    array = as_numeric_array(x, name).astype(np.float64, copy=False)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    return array


def _link_name(link: Callable | str) -> str:
    name = link if isinstance(link, str) else getattr(link, "__name__", "")
    if name in ("exp", "softplus"):
        return name
    raise ValueError(
        f"inverse_link_function must be 'exp' or 'softplus' (or such a function), got {link!r}"
    )
