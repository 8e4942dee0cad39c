"""Observation models other than Poisson/exp: NeMoS's fits and scores, optimality, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA
from scipy import stats

import popglm as nmo
from popglm.observation_models import NegativeBinomialObservations

# NeMoS 0.2.8, x64, LBFGS at tol=1e-12 (tests/data/make_nemos_glm_fixtures.py, family_fixtures).
FIX = np.load(DATA / "nemos_glm_fixtures.npz")

CASES = {
    "bernoulli": ("Bernoulli", None),
    "gamma_inverse": ("Gamma", None),
    "gamma_exp": ("Gamma", "exp"),
    "negbin": (NegativeBinomialObservations(scale=0.5), None),
    "gaussian": ("Gaussian", None),
    "poisson_softplus": ("Poisson", "softplus"),
}


def fitted(name, **kwargs):
    observation, link = CASES[name]
    X, y = FIX[f"family_{name}_X"], FIX[f"family_{name}_y"]
    model = nmo.glm.GLM(observation_model=observation, inverse_link_function=link, **kwargs)
    return model.fit(X, y), X, y


@pytest.mark.parametrize("name", list(CASES))
def test_fits_and_scores_match_nemos(name):
    model, X, y = fitted(name)
    assert model.converged_
    np.testing.assert_allclose(model.coef_, FIX[f"family_{name}_coef"], atol=5e-9)
    np.testing.assert_allclose(model.intercept_, FIX[f"family_{name}_intercept"], atol=5e-9)
    np.testing.assert_allclose(model.scale_, FIX[f"family_{name}_scale"], rtol=1e-8)
    assert model.scale_.shape == (1,)
    for score_type in ("log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen"):
        expected = float(FIX[f"family_{name}_{score_type}"])
        assert model.score(X, y, score_type=score_type) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_of_the_loss_vanishes(name):
    """A NumPy central-difference gradient of compute_loss at the answer is ~0."""
    model, X, y = fitted(name)
    theta = np.concatenate([model.intercept_, model.coef_])

    def loss(t):
        return model.compute_loss((t[1:], t[:1]), X, y)

    step = 1e-6
    gradient = [
        (loss(theta + step * e) - loss(theta - step * e)) / (2 * step) for e in np.eye(theta.size)
    ]
    assert np.abs(gradient).max() < 1e-6


def test_log_likelihoods_against_scipy():
    model, X, y = fitted("negbin")
    mu = model.predict(X)
    r = 1 / 0.5
    expected = stats.nbinom.logpmf(y, r, r / (r + mu)).mean()
    assert model.score(X, y) == pytest.approx(expected, rel=1e-12)
    model, X, y = fitted("bernoulli")
    assert model.score(X, y) == pytest.approx(stats.bernoulli.logpmf(y, model.predict(X)).mean())
    model, X, y = fitted("gamma_exp")
    k = 1 / model.scale_[0]
    expected = stats.gamma.logpdf(y, k, scale=model.predict(X) / k).mean()
    assert model.score(X, y) == pytest.approx(expected, rel=1e-12)
    model, X, y = fitted("gaussian")
    expected = stats.norm.logpdf(y, model.predict(X), np.sqrt(model.scale_[0])).mean()
    assert model.score(X, y) == pytest.approx(expected, rel=1e-12)


def test_population_of_other_families_equals_single_fits():
    X, y = FIX["family_bernoulli_X"], FIX["family_bernoulli_y"]
    Y = np.column_stack([y, 1 - y])
    population = nmo.glm.PopulationGLM(observation_model="Bernoulli", regularizer="Ridge",
                                       regularizer_strength=0.01).fit(X, Y)  # fmt: skip
    for j in range(2):
        single = nmo.glm.GLM(
            observation_model="Bernoulli", regularizer="Ridge", regularizer_strength=0.01
        ).fit(X, Y[:, j])
        np.testing.assert_allclose(population.coef_[:, j], single.coef_, atol=1e-10)
    # Swapping the labels flips the signs.
    np.testing.assert_allclose(population.coef_[:, 0], -population.coef_[:, 1], atol=1e-9)


def test_simulate_draws_from_the_model():
    model, X, _ = fitted("gamma_exp")
    draws, mean = model.simulate(0, X)
    assert np.all(draws > 0)
    assert abs(draws.mean() - mean.mean()) < 5 * draws.std() / np.sqrt(draws.size)


@pytest.mark.parametrize(
    ("observation", "y", "match"),
    [
        ("Bernoulli", lambda y: y + 0.5, "only 0 and 1"),
        ("Gamma", lambda y: y - 1.0, "strictly positive"),
        ("Poisson", lambda y: -y, "non-negative"),
        ("NegativeBinomial", lambda y: y + 0.25, "integer"),
    ],
)
def test_y_outside_the_support_is_rejected(observation, y, match):
    X = FIX["family_bernoulli_X"]
    with pytest.raises(ValueError, match=match):
        nmo.glm.GLM(observation_model=observation).fit(X, y(np.ones(X.shape[0])))


def test_bad_model_link_pairs_are_rejected():
    X, y = FIX["family_bernoulli_X"], FIX["family_bernoulli_y"]
    with pytest.raises(ValueError, match="not available for BernoulliObservations"):
        nmo.glm.GLM(observation_model="Bernoulli", inverse_link_function=np.exp).fit(X, y)
    with pytest.raises(ValueError, match="inverse_link_function must be"):
        nmo.glm.GLM(inverse_link_function=np.tanh)
    with pytest.raises(ValueError, match="scale must be a positive"):
        NegativeBinomialObservations(scale=0.0)
    with pytest.raises(ValueError, match="inference is implemented for the Poisson GLM"):
        fitted("gaussian")[0].inference(X)


def test_save_and_load_keeps_the_model(tmp_path):
    model, X, y = fitted("negbin", regularizer="ElasticNet", regularizer_strength=(0.01, 0.5))
    model.save_params(tmp_path / "m.npz")
    loaded = nmo.load_model(tmp_path / "m.npz")
    assert loaded.observation_model == NegativeBinomialObservations(0.5)
    assert loaded.regularizer_strength == (0.01, 0.5)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    group = nmo.glm.PopulationGLM(
        regularizer=nmo.regularizer.GroupLasso(mask=FIX["group_mask"]), regularizer_strength=0.05
    ).fit(FIX["X"], FIX["counts"])
    group.save_params(tmp_path / "g.npz")
    loaded = nmo.load_model(tmp_path / "g.npz")
    assert loaded.regularizer == group.regularizer
    np.testing.assert_array_equal(loaded.coef_, group.coef_)
