"""Lasso, ElasticNet and GroupLasso by proximal Newton: NeMoS's answers, optimality, paths."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, SHARED, simulate_coupled

import popglm as nmo
from popglm.regularizer import ElasticNet, GroupLasso, Lasso

# NeMoS 0.2.8, x64, ProximalGradient at tol=1e-12, maxiter=1e5 (tests/data/make_nemos_glm_fixtures.py).
# NeMoS warns that these fits did not reach tol=1e-12; they are within ~2e-9 of popglm's answers and
# popglm's objective is lower or equal, so the comparison tolerance is 2e-8.
FIX = np.load(DATA / "nemos_glm_fixtures.npz")

CASES = {
    "lasso": (lambda: "Lasso", 0.02),
    "elasticnet": (lambda: "ElasticNet", (0.03, 0.7)),
    "grouplasso": (lambda: GroupLasso(mask=FIX["group_mask"]), 0.02),
    "grouplasso_sparse": (lambda: GroupLasso(mask=FIX["group_mask"]), 0.12),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sparse_penalties_match_nemos(name):
    make_regularizer, strength = CASES[name]
    X, counts = FIX["X"], FIX["counts"]
    model = nmo.glm.PopulationGLM(regularizer=make_regularizer(), regularizer_strength=strength)
    model.fit(X, counts)
    np.testing.assert_allclose(model.coef_, FIX[f"{name}_coef"], atol=2e-8)
    np.testing.assert_allclose(model.intercept_, FIX[f"{name}_intercept"], atol=2e-8)
    # Exact zeros where NeMoS's proximal steps put them.
    np.testing.assert_array_equal(model.coef_ == 0, np.abs(FIX[f"{name}_coef"]) < 1e-12)
    ours = model.compute_loss((model.coef_, model.intercept_), X, counts)
    theirs = model.compute_loss((FIX[f"{name}_coef"], FIX[f"{name}_intercept"]), X, counts)
    assert ours <= theirs + 1e-14
    assert model.converged_.all()
    keep = np.isfinite(X).all(axis=1)
    np.testing.assert_array_equal(
        model.dof_resid_, keep.sum() - np.count_nonzero(model.coef_, axis=0) - 1
    )


def test_single_neuron_group_lasso_matches_nemos():
    model = nmo.glm.GLM(
        regularizer=GroupLasso(mask=FIX["single_group_mask"]), regularizer_strength=0.03
    ).fit(FIX["X"], FIX["counts"][:, 2])
    np.testing.assert_allclose(model.coef_, FIX["glm_grouplasso_coef"], atol=2e-8)
    np.testing.assert_allclose(model.intercept_, FIX["glm_grouplasso_intercept"], atol=2e-8)


@pytest.fixture(scope="module")
def coupled():
    counts = simulate_coupled(3000, 5, 6, seed=21)
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=6)
    return basis, basis.compute_features(counts), counts


def mean_nll_gradient(X, y, coef, intercept):
    keep = np.isfinite(X).all(axis=1)
    residual = np.exp(X[keep] @ coef + intercept) - y[keep]
    return X[keep].T @ residual / keep.sum(), residual.mean(axis=0)


@pytest.mark.parametrize("history", [False, True])
def test_lasso_solution_satisfies_kkt(coupled, history):
    basis, X, counts = coupled
    strength = np.linspace(0.001, 0.02, X.shape[1])[:, None] * np.ones(counts.shape[1])
    model = nmo.glm.PopulationGLM(regularizer=Lasso(), regularizer_strength=strength)
    model.fit(basis.history_features(counts) if history else X, counts)
    gradient, intercept_gradient = mean_nll_gradient(X, counts, model.coef_, model.intercept_)
    nonzero = model.coef_ != 0
    assert 0 < nonzero.sum() < nonzero.size  # some, not all, coefficients selected
    assert np.abs(intercept_gradient).max() < 1e-8
    stationary = gradient + strength * np.sign(model.coef_)
    assert np.abs(stationary[nonzero]).max() < 1e-8
    assert np.all(np.abs(gradient[~nonzero]) <= strength[~nonzero] + 1e-8)


def test_group_lasso_solution_satisfies_kkt(coupled):
    _, X, counts = coupled
    mask = np.kron(np.eye(5), np.ones((1, 3)))  # one group per sender
    model = nmo.glm.PopulationGLM(regularizer=GroupLasso(mask=mask), regularizer_strength=0.01)
    model.fit(X, counts)
    gradient, _ = mean_nll_gradient(X, counts, model.coef_, model.intercept_)
    weight = 0.01 * np.sqrt(3)
    n_zero_groups = 0
    for j in range(counts.shape[1]):
        for g in range(5):
            block = slice(3 * g, 3 * g + 3)
            w, grad = model.coef_[block, j], gradient[block, j]
            if np.all(w == 0):
                n_zero_groups += 1
                assert np.linalg.norm(grad) <= weight + 1e-8
            else:
                np.testing.assert_allclose(grad + weight * w / np.linalg.norm(w), 0, atol=1e-8)
    assert 0 < n_zero_groups < 25


def test_elastic_net_ratio_one_is_lasso(coupled):
    _, X, counts = coupled
    lasso = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=0.01).fit(X, counts)
    net = nmo.glm.PopulationGLM(regularizer="ElasticNet", regularizer_strength=(0.01, 1.0))
    np.testing.assert_allclose(net.fit(X, counts).coef_, lasso.coef_, atol=1e-10)
    with pytest.raises(ValueError, match="ratio"):
        nmo.glm.PopulationGLM(regularizer=ElasticNet(), regularizer_strength=(0.01, 0.0)).fit(
            X, counts
        )


def test_lasso_zero_above_the_critical_strength(coupled):
    """Closed form: at the intercept-only fit the gradient is X^T (mean - y) / n; above its
    largest entry the Lasso solution is exactly zero, just below it is not."""
    _, X, counts = coupled
    keep = np.isfinite(X).all(axis=1)
    y = counts[keep, 0]
    critical = np.abs(X[keep].T @ (y.mean() - y) / keep.sum()).max()
    above = nmo.glm.GLM(regularizer="Lasso", regularizer_strength=1.001 * critical)
    assert np.all(above.fit(X, counts[:, 0]).coef_ == 0)
    assert above.intercept_[0] == pytest.approx(np.log(y.mean()), abs=1e-12)
    below = nmo.glm.GLM(regularizer="Lasso", regularizer_strength=0.95 * critical)
    assert np.count_nonzero(below.fit(X, counts[:, 0]).coef_) >= 1


def test_results_do_not_depend_on_threads(coupled):
    _, X, counts = coupled
    fits = [
        nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=0.005, n_threads=t).fit(
            X, counts
        )
        for t in (1, 2, 4)
    ]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)


def test_fit_path_matches_independent_fits(coupled):
    _, X, counts = coupled
    strengths = np.array([0.001, 0.02, 0.005])
    model = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=1.0)
    path = model.fit_path(X, counts, strengths)
    assert path["coef"].shape == (3, X.shape[1], counts.shape[1])
    for k, strength in enumerate(strengths):
        alone = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=strength)
        alone.fit(X, counts)
        # Both stop at a subgradient <= 1e-8; an ill-conditioned neuron turns that into ~1e-7 on
        # its coefficients, while the objectives agree to rounding.
        np.testing.assert_allclose(path["coef"][k], alone.coef_, atol=1e-6)
        path_loss = alone.compute_loss((path["coef"][k], path["intercept"][k]), X, counts)
        assert path_loss == pytest.approx(
            alone.compute_loss((alone.coef_, alone.intercept_), X, counts), abs=1e-13
        )
    # Sparser for stronger penalties; the model ends fitted at the last strength given.
    nonzero = [np.count_nonzero(c) for c in path["coef"]]
    assert nonzero[1] < nonzero[2] < nonzero[0]
    assert model.regularizer_strength == 0.005
    np.testing.assert_array_equal(model.coef_ != 0, path["coef"][2] != 0)
    with pytest.raises(ValueError, match="needs a penalised model"):
        nmo.glm.PopulationGLM().fit_path(X, counts, strengths)


def group_lasso_kkt_violation(X, counts, coef, intercept, strength, size):
    """Largest entry of the minimum-norm subgradient, one group of `size` columns per sender."""
    gradient, intercept_gradient = mean_nll_gradient(X, counts, coef, intercept)
    worst, n_zero = np.abs(intercept_gradient).max(), 0
    weight = strength * np.sqrt(size)
    for j in range(counts.shape[1]):
        for start in range(0, X.shape[1], size):
            w, grad = coef[start : start + size, j], gradient[start : start + size, j]
            norm = np.linalg.norm(w)
            if norm == 0:
                n_zero += 1
                entries = grad * max(1 - weight / max(np.linalg.norm(grad), 1e-300), 0)
            else:
                entries = grad + weight * w / norm
            worst = max(worst, np.abs(entries).max())
    return worst, n_zero


def test_group_lasso_path_satisfies_kkt_at_every_strength(coupled):
    # Warm starts along a path exercise the kept Hessians and the exact group solves; every
    # strength from all-zero to nearly unpenalised must still be the exact optimum.
    _, X, counts = coupled
    mask = np.kron(np.eye(5), np.ones((1, 3)))
    keep = np.isfinite(X).all(axis=1)  # the intercept-only optimum is on the fitted rows
    gradient, _ = mean_nll_gradient(
        X, counts, np.zeros((X.shape[1], counts.shape[1])), np.log(counts[keep].mean(axis=0))
    )
    top = max(np.linalg.norm(gradient[3 * g : 3 * g + 3], axis=0).max() for g in range(5))
    strengths = top / np.sqrt(3) * np.logspace(0, -3, 8)
    model = nmo.glm.PopulationGLM(regularizer=GroupLasso(mask=mask), regularizer_strength=1.0)
    path = model.fit_path(X, counts, strengths)
    zeros = []
    for k, strength in enumerate(strengths):
        worst, n_zero = group_lasso_kkt_violation(
            X, counts, path["coef"][k], path["intercept"][k], strength, 3
        )
        assert worst < 1e-8, (k, worst)
        zeros.append(n_zero)
    assert zeros[0] == 25 and zeros[-1] == 0  # from all groups out to all in
    assert np.all(path["converged"])
    # A decreasing path ends where the model is left: no refit, the same numbers.
    np.testing.assert_array_equal(model.coef_, path["coef"][-1])
    assert model.regularizer_strength == strengths[-1]


def test_elastic_net_path_satisfies_kkt(coupled):
    _, X, counts = coupled
    strengths = np.array([0.02, 0.008, 0.003, 0.001])
    model = nmo.glm.PopulationGLM(regularizer=ElasticNet(), regularizer_strength=(1.0, 0.5))
    path = model.fit_path(X, counts, strengths)
    for k, strength in enumerate(strengths):
        coef = path["coef"][k]
        gradient, intercept_gradient = mean_nll_gradient(X, counts, coef, path["intercept"][k])
        # NeMoS's ElasticNet: strength * (ratio |w| + (1 - ratio) w^2 / 2).
        smooth = gradient + strength * 0.5 * coef
        nonzero = coef != 0
        assert np.abs(intercept_gradient).max() < 1e-8
        assert np.abs(smooth + strength * 0.5 * np.sign(coef))[nonzero].max() < 1e-8
        assert np.all(np.abs(smooth[~nonzero]) <= strength * 0.5 + 1e-8)


def test_bad_group_masks():
    with pytest.raises(ValueError, match="at most one group"):
        GroupLasso(mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        GroupLasso(mask=np.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="at least one feature"):
        GroupLasso(mask=np.array([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="span several neurons"):
        GroupLasso(mask=np.ones((1, 3, 2)))
    X = FIX["X"]
    model = nmo.glm.PopulationGLM(regularizer=GroupLasso(mask=np.eye(3)), regularizer_strength=0.1)
    with pytest.raises(ValueError, match="GroupLasso mask covers"):
        model.fit(X, FIX["counts"])


def test_inference_refuses_sparse_fits(coupled):
    _, X, counts = coupled
    model = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=0.01).fit(X, counts)
    with pytest.raises(ValueError, match="inference after a Lasso"):
        model.inference(X)


RECORDING = SHARED / "data" / "s1_spikes.npz"


@pytest.mark.skipif(not RECORDING.exists(), reason="the S1 recording is not in ../shared/data")
def test_lasso_path_on_the_real_recording_converges_everywhere():
    # Busy neurons (up to 29,000 spikes) once stalled at 1.0e-8-1.5e-8 when a path's last steps
    # reused a kept Hessian; every neuron and strength must reach the tolerance.
    counts = np.load(RECORDING)["counts"].astype(float)
    X = nmo.basis.RaisedCosineLogConv(4, window_size=10).compute_features(counts)
    keep = np.isfinite(X).all(axis=1)
    X, Y = np.asfortranarray(X[keep]), np.asfortranarray(counts[keep])
    top = np.abs(X.T @ (Y - Y.mean(axis=0)) / len(Y)).max()
    strengths = top * np.logspace(0, -3, 8)
    path = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=1.0).fit_path(
        X, Y, strengths
    )
    assert np.all(path["converged"])
    for k, strength in enumerate(strengths):
        coef, intercept = path["coef"][k], path["intercept"][k]
        gradient, intercept_gradient = mean_nll_gradient(X, Y, coef, intercept)
        nonzero = coef != 0
        assert np.abs(intercept_gradient).max() < 1e-8
        assert np.abs(gradient + strength * np.sign(coef))[nonzero].max(initial=0) < 1e-8
        assert np.all(np.abs(gradient[~nonzero]) <= strength + 1e-8)
