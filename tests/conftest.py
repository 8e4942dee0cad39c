from __future__ import annotations

import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).resolve().parent / "data"
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def howto_counts() -> np.ndarray:
    """The how-to's population counts: np.random.seed(42); poisson(size=(100, 4))."""
    np.random.seed(42)
    return np.random.poisson(size=(100, 4))


def simulate_coupled(n_samples: int, n_neurons: int, window: int, seed: int) -> np.ndarray:
    """Counts from a small recurrent Poisson GLM: refractory self-coupling, weak random couplings."""
    rng = np.random.default_rng(seed)
    lags = np.arange(1, window + 1)
    weights = rng.normal(0.0, 0.15, size=(n_neurons, n_neurons))[:, :, None] * np.exp(-lags / 3.0)
    weights[np.arange(n_neurons), np.arange(n_neurons)] = -1.5 * np.exp(-lags / 2.0)
    baseline = np.log(rng.uniform(0.05, 0.3, size=n_neurons))
    counts = np.zeros((n_samples, n_neurons))
    for t in range(n_samples):
        history = counts[max(0, t - window) : t][::-1]  # lag 1 first
        drive = baseline + np.einsum("ls,srl->r", history, weights[:, :, : history.shape[0]])
        counts[t] = rng.poisson(np.exp(np.minimum(drive, 3.0)))
    return counts


@pytest.fixture(scope="session")
def coupled_counts() -> np.ndarray:
    return simulate_coupled(3000, 5, 8, seed=7)
