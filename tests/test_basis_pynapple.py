"""pynapple inputs: convolved epoch by epoch, returned on the same time index (as NeMoS does)."""

from __future__ import annotations

import numpy as np
import pytest

import popglm as nmo

nap = pytest.importorskip("pynapple")


def numpy_causal_history(x, kernels):
    """Causal shifted convolution of one epoch: out[t] = sum_l kernels[l-1] x[t-l], NaN for t < window."""
    n, window = x.shape[0], kernels.shape[0]
    x = x.reshape(n, -1)
    out = np.full((n, x.shape[1] * kernels.shape[1]), np.nan)
    for t in range(window, n):
        past = x[t - window : t][::-1]  # past[l - 1] = x[t - l]
        out[t] = np.concatenate([past[:, i] @ kernels for i in range(x.shape[1])])
    return out


@pytest.fixture
def two_epochs():
    t = np.arange(0.0, 100.0, 1.0)
    support = nap.IntervalSet(start=[0.0, 60.0], end=[39.0, 99.0])
    rng = np.random.default_rng(0)
    counts = nap.TsdFrame(t=t, d=rng.poisson(1.0, size=(100, 2)).astype(float)).restrict(support)
    angle = nap.Tsd(t=t, d=rng.uniform(0, 2 * np.pi, 100)).restrict(support)
    return counts, angle


def test_conv_features_are_per_epoch(two_epochs):
    counts, _ = two_epochs
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=5)
    features = basis.compute_features(counts)
    assert isinstance(features, nap.TsdFrame)
    np.testing.assert_array_equal(features.t, counts.t)
    values = counts.values
    n_first = 40
    expected = np.vstack(
        [
            numpy_causal_history(values[:n_first], basis.kernel_),
            numpy_causal_history(values[n_first:], basis.kernel_),
        ]
    )
    np.testing.assert_allclose(features.values, expected, rtol=1e-13, atol=1e-14)
    # each epoch starts with window_size NaN rows
    assert np.isnan(features.values[n_first : n_first + 5]).all()


def test_composite_with_pynapple_inputs(two_epochs):
    counts, angle = two_epochs
    basis = nmo.basis.CyclicBSplineEval(5, bounds=(0, 2 * np.pi)) + nmo.basis.HistoryConv(3)
    features = basis.compute_features(angle, counts)
    assert isinstance(features, nap.TsdFrame) and features.shape == (80, 11)
    np.testing.assert_array_equal(
        features.values[:, :5], basis.basis1.compute_features(angle.values)
    )
    np.testing.assert_array_equal(features.time_support.values, counts.time_support.values)


def test_eval_features_keep_the_time_index(two_epochs):
    _, angle = two_epochs
    features = nmo.basis.BSplineEval(4).compute_features(angle)
    assert isinstance(features, nap.TsdFrame)
    np.testing.assert_array_equal(features.t, angle.t)
    np.testing.assert_array_equal(
        features.values, nmo.basis.BSplineEval(4).compute_features(angle.values)
    )


def test_population_fit_and_predict_take_and_give_pynapple_objects():
    import popglm as nmo

    rng = np.random.default_rng(4)
    t = np.arange(4000) * 0.01
    counts = rng.poisson(0.3, size=(4000, 3)).astype(float)
    epochs = nap.IntervalSet(start=[0.0, 22.0], end=[19.99, 39.99])  # a gap from 20 s to 22 s
    spikes = nap.TsdFrame(t=t, d=counts, time_support=epochs)
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
    X = basis.compute_features(spikes)
    assert isinstance(X, nap.TsdFrame)
    model = nmo.glm.PopulationGLM().fit(X, spikes)
    # The same fit on plain arrays: history never crosses the epoch gap (NaN rows are dropped).
    plain = nmo.glm.PopulationGLM().fit(np.asarray(X.values), np.asarray(spikes.values))
    np.testing.assert_allclose(model.coef_, plain.coef_, rtol=0, atol=1e-12)
    second = np.searchsorted(np.asarray(spikes.t), 22.0)
    assert np.isnan(np.asarray(X.values)[second : second + 10]).all()
    rate = model.predict(X)
    assert isinstance(rate, nap.TsdFrame)
    np.testing.assert_array_equal(np.asarray(rate.t), np.asarray(X.t))
    np.testing.assert_allclose(np.asarray(rate.values), plain.predict(np.asarray(X.values)))
    values = np.asarray(spikes.values)
    assert model.score(X, spikes) == pytest.approx(plain.score(np.asarray(X.values), values))
