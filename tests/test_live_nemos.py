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


@pytest.mark.parametrize(
    "conv_kwargs",
    [
        {},
        {"predictor_causality": "acausal"},
        {"predictor_causality": "anti-causal", "shift": False},
    ],
)
def test_composite_basis_features_match(conv_kwargs):
    rng = np.random.default_rng(5)
    angle, counts = rng.uniform(0, 2 * np.pi, 300), rng.poisson(0.6, size=(300, 4)).astype(float)

    def make(module):
        tuning = module.basis.CyclicBSplineEval(6, bounds=(0, 2 * np.pi))
        return tuning + module.basis.RaisedCosineLogConv(3, 11, conv_kwargs=conv_kwargs)

    theirs = np.asarray(make(nemos).compute_features(angle, counts))
    ours = make(popglm).compute_features(angle, counts)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.filterwarnings("ignore:Converting 'd' to numpy.array")  # pynapple, on NeMoS's output
def test_pynapple_features_match():
    nap = pytest.importorskip("pynapple")
    rng = np.random.default_rng(6)
    t = np.arange(200.0)
    support = nap.IntervalSet(start=[0.0, 120.0], end=[89.0, 199.0])
    counts = nap.TsdFrame(t=t, d=rng.poisson(1.0, size=(200, 3)).astype(float))
    counts = counts.restrict(support)
    theirs = nemos.basis.MSplineConv(5, window_size=9).compute_features(counts)
    ours = popglm.basis.MSplineConv(5, window_size=9).compute_features(counts)
    assert type(ours) is type(theirs)
    np.testing.assert_array_equal(ours.t, theirs.t)
    np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-12, atol=1e-12, equal_nan=True)


def _cases():
    rng = np.random.default_rng(8)
    n = rng.normal
    return {
        "custom-ndim2": (
            lambda m: m.basis.CustomBasis(
                [lambda x: x.sum(axis=1), lambda x: x[:, 0]], ndim_input=2
            ),
            [n(size=(20, 3, 2))],
        ),
        "custom-output-shape": (
            lambda m: m.basis.CustomBasis([lambda x: np.stack([x, x**2], axis=1)]),
            [n(size=(20, 3))],
        ),
        "custom-two-inputs-kwargs-bounds": (
            lambda m: m.basis.CustomBasis(
                [lambda x, y, a=1.0: a * x * y], basis_kwargs={"a": 3.0}, bounds=(-1, 1)
            ),
            [n(size=20), n(size=20)],
        ),
        "zero-product": (
            lambda m: m.basis.Zero() * m.basis.BSplineEval(3, order=2),
            [n(size=10), n(size=10)],
        ),
        "fourier-2d-mask": (
            lambda m: m.basis.FourierEval(
                [2, 3], ndim=2, frequency_mask=np.array([[0, 1, 1], [1, 0, 1]])
            ),
            [n(size=10), n(size=10)],
        ),
        "fourier-callable-mask": (
            lambda m: m.basis.FourierEval(4, ndim=2, frequency_mask=lambda a, b: a + b < 3),
            [n(size=10), n(size=10)],
        ),
        "fourier-times-spline-2d": (
            lambda m: m.basis.FourierEval(3) * m.basis.BSplineEval(4),
            [n(size=(10, 2)), n(size=(10, 2))],
        ),
        "power": (lambda m: m.basis.BSplineEval(4) ** 2, [n(size=10), n(size=10)]),
        "integer-multiple": (
            lambda m: m.basis.HistoryConv(3) * 2,
            [rng.poisson(1, size=(10, 2)), rng.poisson(1, size=10)],
        ),
        "sum-times-identity": (
            lambda m: (
                (m.basis.BSplineEval(3, order=2) + m.basis.MSplineEval(3, order=2))
                * m.basis.IdentityEval()
            ),
            [n(size=10), n(size=10), n(size=10)],
        ),
        "nested-labels": (
            lambda m: (
                m.basis.BSplineEval(4)
                + m.basis.BSplineEval(3, order=3) * m.basis.BSplineEval(5)
                + m.basis.HistoryConv(3, label="h")
            ),
            [n(size=12), n(size=12), n(size=12), rng.poisson(1, size=(12, 2))],
        ),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_more_bases_match(name):
    make, inputs = _cases()[name]
    theirs_basis, ours_basis = make(nemos), make(popglm)
    theirs = np.asarray(theirs_basis.compute_features(*inputs))
    ours = ours_basis.compute_features(*inputs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert ours_basis.n_output_features == theirs_basis.n_output_features
    assert ours_basis.label == theirs_basis.label
    assert [b.label for b in ours_basis] == [b.label for b in theirs_basis]
    split_theirs = theirs_basis.split_by_feature(theirs)
    split_ours = ours_basis.split_by_feature(ours)
    assert {k: v.shape for k, v in split_ours.items()} == {
        k: np.shape(v) for k, v in split_theirs.items()
    }
