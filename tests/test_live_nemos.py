"""Live comparisons with NeMoS, where it is installed (CI does not install it: these skip there).

pip install nemos==0.2.8   # Python 3.11; 0.2.9 needs Python 3.12
"""

from __future__ import annotations

import numpy as np
import pytest

import popglm

nemos = pytest.importorskip("nemos")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

TIGHT = {"tol": 1e-12, "maxiter": 100000}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.4, size=(600, 3)).astype(float)
    X = np.asarray(nemos.basis.RaisedCosineLogConv(3, window_size=8).compute_features(counts))
    return X, counts


def test_features_match(data):
    _, counts = data
    ours = popglm.basis.RaisedCosineLogConv(3, window_size=8).compute_features(counts)
    np.testing.assert_allclose(ours, data[0], atol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("regularizer", "strength", "solver"),
    [
        ("UnRegularized", None, "LBFGS"),
        ("Ridge", 0.05, "LBFGS"),
        ("Lasso", 0.01, "ProximalGradient"),
    ],
)
def test_population_fits_match(data, regularizer, strength, solver):
    X, counts = data
    theirs = nemos.glm.PopulationGLM(
        regularizer=regularizer, regularizer_strength=strength, solver_name=solver,
        solver_kwargs=TIGHT,
    ).fit(X, counts)  # fmt: skip
    ours = popglm.glm.PopulationGLM(regularizer=regularizer, regularizer_strength=strength)
    ours.fit(X, counts)
    np.testing.assert_allclose(ours.coef_, np.asarray(theirs.coef_), atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, np.asarray(theirs.intercept_), atol=1e-7)
    for score_type in ("log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen"):
        assert ours.score(X, counts, score_type=score_type) == pytest.approx(
            float(theirs.score(X, counts, score_type=score_type)), rel=1e-6
        )
