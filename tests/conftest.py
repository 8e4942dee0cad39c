from __future__ import annotations

import pathlib

import numpy as np
import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests skip themselves without hypothesis
    settings = None
else:
    # "ci" (the default): the same examples on every run, bounded time. "thorough": many more,
    # randomised, with `pytest --hypothesis-profile=thorough tests/test_properties.py`.
    _quiet = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
    settings.register_profile(
        "ci",
        max_examples=1000,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=_quiet,
    )
    settings.register_profile(
        "thorough", max_examples=20000, deadline=None, suppress_health_check=_quiet
    )
    settings.load_profile("ci")

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


@pytest.fixture(scope="session")
def coupled_design(coupled_counts) -> np.ndarray:
    """RaisedCosineLogConv(4, window_size=8) features of ``coupled_counts`` (NaN first rows)."""
    import popglm as nmo

    return nmo.basis.RaisedCosineLogConv(4, window_size=8).compute_features(coupled_counts)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--huge",
        action="store_true",
        help="also run the tests marked huge (tens of GB of memory-mapped data, minutes)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("--huge"):
        return
    skip = pytest.mark.skip(reason="needs --huge (tens of GB of disk-backed data)")
    for item in items:
        if "huge" in item.keywords:
            item.add_marker(skip)
