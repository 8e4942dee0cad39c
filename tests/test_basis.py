from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA

import popglm as nmo

FIXTURE = np.load(DATA / "nemos_basis_features.npz")
CASES = json.loads(str(FIXTURE["cases_json"]))


def build(case: dict):
    kwargs = {k: v for k, v in case.items() if k not in ("key", "class")}
    return getattr(nmo.basis, case["class"])(**kwargs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["key"])
def test_kernels_match_nemos(case):
    # Reference: NeMoS 0.2.8, float64, evaluate_on_grid(window_size) (tests/data/make_nemos_fixtures.py)
    basis = build(case)
    _, values = basis.evaluate_on_grid(case["window_size"])
    np.testing.assert_allclose(values, FIXTURE[case["key"] + "_kernel"], rtol=0, atol=1e-12)


FEATURE_CASES = [c for c in CASES if c["key"] + "_features" in FIXTURE]


@pytest.mark.parametrize("case", FEATURE_CASES, ids=lambda c: c["key"])
def test_features_match_nemos(case):
    # Reference: NeMoS 0.2.8 compute_features on the stored inputs, float64.
    basis = build(case)
    reference = FIXTURE[case["key"] + "_features"]
    inputs = FIXTURE["inputs"]
    if inputs.shape[0] < case["window_size"]:
        pytest.fail("fixture inputs must be longer than the window")
    features = basis.compute_features(inputs)
    assert features.shape == reference.shape
    np.testing.assert_array_equal(np.isnan(features), np.isnan(reference))
    np.testing.assert_allclose(features, reference, rtol=1e-12, atol=1e-12)


def numpy_history_features(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Independent re-implementation: out[t, i*K + k] = sum_l kernel[l-1, k] x[t-l, i], NaN for t < window."""
    window, n_kernels = kernel.shape
    x = x.reshape(x.shape[0], -1).astype(float)
    out = np.full((x.shape[0], x.shape[1] * n_kernels), np.nan)
    for t in range(window, x.shape[0]):
        past = x[t - window : t][::-1]  # row l-1 holds lag l
        out[t] = (past.T @ kernel).reshape(-1)
    return out


@pytest.mark.parametrize("window_size", [1, 2, 5, 30])
def test_history_conv_lags(window_size):
    rng = np.random.default_rng(window_size)
    counts = rng.poisson(0.5, size=(60, 3))
    basis = nmo.basis.HistoryConv(window_size)
    features = basis.compute_features(counts)
    assert features.shape == (60, 3 * window_size)
    assert basis.n_basis_funcs == window_size == basis.window_size
    assert basis.n_output_features == 3 * window_size
    assert np.isnan(features[:window_size]).all()
    assert not np.isnan(features[window_size:]).any()
    # lag 1 first: column i * window + (l - 1) is counts[t - l, i]
    for lag in range(1, window_size + 1):
        np.testing.assert_array_equal(
            features[window_size:, lag - 1], counts[window_size - lag : 60 - lag, 0]
        )
    np.testing.assert_allclose(
        features, numpy_history_features(counts, np.eye(window_size)), atol=0
    )


def test_raised_cosine_matches_numpy_reimplementation():
    rng = np.random.default_rng(3)
    x = rng.poisson(0.2, size=(500, 2, 2))
    basis = nmo.basis.RaisedCosineLogConv(6, window_size=40, width=2.5, time_scaling=10.0)
    features = basis.compute_features(x)
    assert features.shape == (500, 4 * 6)
    np.testing.assert_allclose(
        features, numpy_history_features(x, basis.kernel_), rtol=1e-12, atol=1e-13
    )
    split = basis.split_by_feature(features, axis=1)["RaisedCosineLogConv"]
    assert split.shape == (500, 2, 2, 6)
    np.testing.assert_array_equal(split[:, 1, 0, 3], features[:, (1 * 2 + 0) * 6 + 3])


@pytest.mark.parametrize(
    "make_input",
    [
        lambda c: c.astype(np.int8),
        lambda c: c.astype(np.uint16),
        lambda c: c.astype(np.float32),
        lambda c: c > 0,
        lambda c: np.asfortranarray(c),
        lambda c: np.repeat(c, 2, axis=0)[::2],  # non-contiguous view
        lambda c: c.tolist(),
    ],
    ids=["int8", "uint16", "float32", "bool", "fortran", "strided", "list"],
)
def test_input_types(make_input):
    counts = np.random.default_rng(0).poisson(0.7, size=(50, 3))
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=6)
    x = make_input(counts)
    expected = numpy_history_features(np.asarray(x, dtype=float), basis.kernel_)
    np.testing.assert_allclose(basis.compute_features(x), expected, rtol=1e-13, atol=1e-15)


def test_split_by_feature_coefficients(howto_counts):
    basis = nmo.basis.HistoryConv(window_size=10, label="spike-history")
    basis.compute_features(howto_counts)
    coef = np.arange(40 * 4).reshape(40, 4)
    split = basis.split_by_feature(coef, axis=0)
    assert list(split) == ["spike-history"]
    assert split["spike-history"].shape == (4, 10, 4)
    # sender i, lag k, receiver j  <->  coef[i * 10 + k, j]
    assert split["spike-history"][1, 3, 2] == coef[13, 2]


def test_split_by_feature_wrong_size():
    basis = nmo.basis.HistoryConv(window_size=3)
    basis.compute_features(np.ones((10, 4)))
    with pytest.raises(ValueError, match="expected number of features is 12"):
        basis.split_by_feature(np.ones((10, 5)), axis=1)


def test_set_input_shape():
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=8)
    assert basis.n_output_features is None
    assert basis.set_input_shape(3).n_output_features == 12
    assert basis.set_input_shape((2, 3)).n_output_features == 24
    assert basis.set_input_shape(np.ones((5, 2))).n_output_features == 8


def test_labels_and_repr():
    basis = nmo.basis.HistoryConv(window_size=4)
    assert basis.label == "HistoryConv"
    assert repr(basis) == "HistoryConv(window_size=4)"
    labelled = nmo.basis.RaisedCosineLogConv(5, window_size=10, label="x")
    assert labelled.label == "x"
    assert repr(labelled) == (
        "'x': RaisedCosineLogConv(n_basis_funcs=5, window_size=10, width=2.0, "
        "time_scaling=50.0, enforce_decay_to_zero=True)"
    )


def test_evaluate_on_grid_history():
    grid, values = nmo.basis.HistoryConv(4).evaluate_on_grid(6)
    np.testing.assert_array_equal(grid, np.linspace(0, 1, 6))
    np.testing.assert_array_equal(values, np.eye(6, 4))


def test_window_longer_than_data_warns_and_is_all_nan():
    basis = nmo.basis.HistoryConv(window_size=4)
    with pytest.warns(UserWarning, match="shorter than the convolution window size"):
        features = basis.compute_features(np.arange(3.0))
    assert features.shape == (3, 4) and np.isnan(features).all()


def test_nan_input_propagates_like_direct_convolution():
    x = np.ones(20)
    x[5] = np.nan
    basis = nmo.basis.HistoryConv(window_size=3)
    features = basis.compute_features(x)
    reference = numpy_history_features(x, np.eye(3))
    np.testing.assert_array_equal(np.isnan(features), np.isnan(reference))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: nmo.basis.HistoryConv(window_size=0), "window_size must be a positive integer"),
        (lambda: nmo.basis.HistoryConv(window_size=-2), "window_size must be a positive integer"),
        (lambda: nmo.basis.HistoryConv(window_size=2.5), "window_size must be a positive integer"),
        (lambda: nmo.basis.RaisedCosineLogConv(0, window_size=5), "n_basis_funcs"),
        (lambda: nmo.basis.RaisedCosineLogConv(1, window_size=5), "n_basis_funcs must be >= 2"),
        (lambda: nmo.basis.RaisedCosineLogConv(3, window_size=0), "window_size"),
        (lambda: nmo.basis.RaisedCosineLogConv(3, window_size=5, width=1.0), "width"),
        (lambda: nmo.basis.RaisedCosineLogConv(3, window_size=5, width=2.2), "width"),
        (lambda: nmo.basis.RaisedCosineLogConv(3, window_size=5, time_scaling=0), "time_scaling"),
    ],
)
def test_bad_parameters(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_inputs():
    basis = nmo.basis.HistoryConv(window_size=3)
    with pytest.raises(ValueError, match="at least one dimension"):
        basis.compute_features(np.float64(1.0))
    with pytest.raises(ValueError, match="at least one sample"):
        basis.compute_features(np.ones((0, 2)))
    with pytest.raises(TypeError, match="real numeric array"):
        basis.compute_features(np.array(["a", "b", "c", "d"]))
    with pytest.raises(TypeError, match="real numeric array"):
        basis.compute_features(np.ones(5, dtype=complex))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_features_do_not_depend_on_threads(n_threads, monkeypatch):
    from popglm.basis import _conv as basis_module

    x = np.random.default_rng(1).poisson(0.3, size=(2000, 7))
    basis = nmo.basis.RaisedCosineLogConv(5, window_size=25)
    reference = numpy_history_features(x, basis.kernel_)
    monkeypatch.setattr(basis_module, "available_cores", lambda: n_threads)
    np.testing.assert_allclose(basis.compute_features(x), reference, rtol=1e-12, atol=1e-13)
