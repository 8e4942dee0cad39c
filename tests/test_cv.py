"""Cross-validated penalty strengths per neuron (GLMCV, PopulationGLMCV).

Every expectation is rebuilt here from the public plain models: each fold's fit is a
``PopulationGLM`` on the fold's training rows, scored on its test rows, and the chosen strength
is the argmax of the mean over folds, per neuron.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.model_selection import TimeSeriesSplit

import popglm as nmo


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n_samples, n_neurons = 1500, 3
    X = rng.normal(size=(n_samples, 8))
    weights = rng.normal(scale=0.3, size=(8, n_neurons)) * (rng.random((8, n_neurons)) < 0.5)
    y = rng.poisson(np.exp(-1.0 + X @ weights)).astype(float)
    return X, y


def reference_scores(X, y, grid, blocks, regularizer="Ridge"):
    """(n_strengths, n_folds, n_neurons) held-out Poisson log-likelihood per bin, refitted."""
    scores = np.empty((len(grid), len(blocks), y.shape[1]))
    for f, test in enumerate(blocks):
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        for k, strength in enumerate(grid):
            model = nmo.glm.PopulationGLM(regularizer=regularizer, regularizer_strength=strength)
            model.fit(X[train], y[train])
            rate = model.predict(X[test])
            ll = y[test] * np.log(rate) - rate - gammaln(y[test] + 1)
            scores[k, f] = ll.mean(axis=0)
    return scores


def test_population_cv_scores_and_choice_match_fold_by_fold_fits(data):
    X, y = data
    grid = np.array([3.0, 0.3, 0.03, 0.003])
    model = nmo.glm.PopulationGLMCV(regularizer_strength=grid, cv=3).fit(X, y)
    blocks = np.array_split(np.arange(X.shape[0]), 3)
    expected = reference_scores(X, y, grid, blocks)
    finite = np.isfinite(model.cv_scores_)
    assert finite[:2].all()  # nobody leaves the path before three strengths without gain
    np.testing.assert_allclose(model.cv_scores_[finite], expected[finite], rtol=1e-7)
    np.testing.assert_array_equal(model.cv_strengths_, grid)
    best = np.argmax(expected.mean(axis=1), axis=0)
    np.testing.assert_array_equal(model.regularizer_strength_, grid[best])
    # The refit on every row is the plain model with each neuron's chosen strength.
    plain = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=grid[best]).fit(X, y)
    np.testing.assert_allclose(model.coef_, plain.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, plain.intercept_, rtol=1e-8)


def test_single_neuron_cv_is_the_population_cv_of_one_column(data):
    X, y = data
    grid = np.array([1.0, 0.1, 0.01])
    single = nmo.glm.GLMCV(regularizer_strength=grid, cv=4).fit(X, y[:, 1])
    population = nmo.glm.PopulationGLMCV(regularizer_strength=grid, cv=4).fit(X, y[:, [1]])
    assert isinstance(single.regularizer_strength_, float)
    assert single.regularizer_strength_ == population.regularizer_strength_[0]
    np.testing.assert_allclose(single.cv_scores_, population.cv_scores_[:, :, 0], rtol=1e-12)
    np.testing.assert_allclose(single.coef_, population.coef_[:, 0], rtol=1e-10)


def test_lasso_default_grid_starts_where_every_coefficient_is_zero(data):
    X, y = data
    model = nmo.glm.PopulationGLMCV(regularizer="Lasso", n_strengths=4, cv=2).fit(X, y)
    largest = model.cv_strengths_[0]
    np.testing.assert_allclose(model.cv_strengths_[-1], largest * 1e-4, rtol=1e-12)
    # The closed form: |gradient of the mean Poisson loss at the intercept-only fit|.
    residual = y.mean(axis=0) - y
    expected = np.abs(X.T @ residual / X.shape[0]).max()
    np.testing.assert_allclose(largest, expected, rtol=1e-6)
    at = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=largest * (1 + 1e-5))
    assert np.all(at.fit(X, y).coef_ == 0)
    below = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=largest * 0.95)
    assert np.any(below.fit(X, y).coef_ != 0)


def test_cv_beats_the_unpenalised_fit_on_held_out_data_when_features_are_noise():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 60))  # 60 features, only the first matters
    y = rng.poisson(np.exp(-0.5 + 0.4 * X[:, [0]] + np.zeros((1, 2)))).astype(float)
    X_new = rng.normal(size=(3000, 60))
    y_new = rng.poisson(np.exp(-0.5 + 0.4 * X_new[:, [0]] + np.zeros((1, 2)))).astype(float)
    cv = nmo.glm.PopulationGLMCV(cv=5).fit(X, y)
    plain = nmo.glm.PopulationGLM().fit(X, y)
    per_bin = dict(aggregate_sample_scores=lambda s: s.mean(axis=0))
    assert np.all(cv.score(X_new, y_new, **per_bin) > plain.score(X_new, y_new, **per_bin))


def test_history_features_splitters_and_gap(data):
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.3, (1200, 3)).astype(float)
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=6)
    grid = np.array([1.0, 0.1, 0.01])
    dense = nmo.glm.PopulationGLMCV(regularizer_strength=grid, cv=3, gap=6)
    dense.fit(basis.compute_features(counts), counts)
    lazy = nmo.glm.PopulationGLMCV(regularizer_strength=grid, cv=3, gap=6)
    lazy.fit(basis.history_features(counts), counts)
    np.testing.assert_allclose(lazy.cv_scores_, dense.cv_scores_, rtol=1e-9)
    np.testing.assert_allclose(lazy.coef_, dense.coef_, rtol=1e-8, atol=1e-12)
    split = nmo.glm.PopulationGLMCV(regularizer_strength=grid, cv=TimeSeriesSplit(3))
    split.fit(basis.compute_features(counts), counts)
    assert split.cv_scores_.shape == (3, 3, 3)


def test_parameters_clone_save_and_load(tmp_path, data):
    X, y = data
    model = nmo.glm.PopulationGLMCV(regularizer="ElasticNet", n_strengths=3, cv=2)
    params = clone(model).get_params()
    assert params["regularizer_strength"] is None and params["n_strengths"] == 3
    model.fit(X, y)
    assert model.get_params()["regularizer_strength"] is None  # fit keeps the parameters
    path = tmp_path / "cv.npz"
    model.save_params(path)
    loaded = nmo.load_model(path)
    assert type(loaded) is nmo.glm.PopulationGLM
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-12)
    # ElasticNet's ratio stays the default, 0.5, on both sides.
    np.testing.assert_array_equal(loaded.regularizer_strength, model.regularizer_strength_)
    assert loaded.regularizer.split(loaded.regularizer_strength)[1] == 0.5


def test_group_lasso_per_neuron_strengths_round_trip(tmp_path, data):
    X, y = data
    mask = np.zeros((2, 8))
    mask[0, :4] = mask[1, 4:] = 1
    model = nmo.glm.PopulationGLMCV(
        regularizer=nmo.regularizer.GroupLasso(mask), n_strengths=3, cv=2
    ).fit(X, y)
    loaded_path = tmp_path / "group.npz"
    model.save_params(loaded_path)
    loaded = nmo.load_model(loaded_path)
    refit = nmo.glm.PopulationGLM(
        regularizer=nmo.regularizer.GroupLasso(mask),
        regularizer_strength=loaded.regularizer_strength,
    ).fit(X, y)
    np.testing.assert_allclose(refit.coef_, model.coef_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"regularizer": "UnRegularized"}, ValueError, "chooses a penalty"),
        ({"regularizer_strength": [1.0, -1.0]}, ValueError, "regularizer_strength"),
        ({"regularizer_strength": [[1.0]]}, ValueError, "regularizer_strength"),
        ({"cv": 1}, ValueError, "cv must be"),
        ({"cv": "five"}, TypeError, "cv must be"),
        ({"scoring": "accuracy"}, ValueError, "scoring must be"),
        ({"gap": -1}, ValueError, "gap"),
        ({"n_strengths": 0}, ValueError, "n_strengths"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, error, match):
    with pytest.raises(error, match=match):
        nmo.glm.PopulationGLMCV(**kwargs)


def test_a_fold_without_rows_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="cv=5 folds need"):
        nmo.glm.PopulationGLMCV(regularizer_strength=[1.0], cv=5).fit(X[:9], y[:9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nmo.glm.PopulationGLMCV(regularizer_strength=[1.0], cv=2).fit(X[:40], y[:40])


def test_per_neuron_scores_are_each_neurons_own(data):
    X, y = data
    model = nmo.glm.PopulationGLM().fit(X, y)
    rate = model.predict(X)
    ll = y * np.log(rate) - rate - gammaln(y + 1)
    np.testing.assert_allclose(model.score(X, y, per_neuron=True), ll.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        model.score(X, y, per_neuron=True, aggregate_sample_scores=np.sum), ll.sum(axis=0)
    )
    null = y * np.log(y.mean(axis=0)) - y.mean(axis=0) - gammaln(y + 1)
    mcfadden = 1 - ll.mean(axis=0) / null.mean(axis=0)
    np.testing.assert_allclose(
        model.score(X, y, score_type="pseudo-r2-McFadden", per_neuron=True), mcfadden, rtol=1e-10
    )
    single = nmo.glm.GLM().fit(X, y[:, 0])
    assert single.score(X, y[:, 0], per_neuron=True).shape == (1,)
