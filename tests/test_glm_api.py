"""The GLM API beyond fit: GLM vs PopulationGLM, Ridge, scores, loss, persistence, scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, simulate_coupled
from scipy import stats

import popglm as nmo
from popglm import NotFittedError

FIX = np.load(DATA / "nemos_glm_fixtures.npz")  # NeMoS 0.2.8, x64, LBFGS tol 1e-12; see script


@pytest.fixture(scope="module")
def coupled():
    counts = simulate_coupled(2000, 4, 6, seed=11)
    X = nmo.basis.RaisedCosineLogConv(3, window_size=6).compute_features(counts)
    return X, counts


def ridge_gradient(X, y, coef, intercept, strength):
    """NumPy reference: gradient of mean NLL + 0.5 * sum(strength * coef^2), per neuron."""
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y).all(axis=1)
    Xk, yk = X[keep], y[keep]
    residual = np.exp(Xk @ coef + intercept) - yk
    return Xk.T @ residual / keep.sum() + strength * coef, residual.mean(axis=0)


# -- Ridge --


@pytest.mark.parametrize("name", ["ridge", "ridge_strong", "ridge_array"])
def test_ridge_matches_nemos(name):
    strength = FIX[f"{name}_strength"]
    strength = float(strength) if strength.ndim == 0 else strength
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=strength)
    model.fit(FIX["X"], FIX["counts"])
    np.testing.assert_allclose(model.coef_, FIX[f"{name}_coef"], atol=1e-8)
    np.testing.assert_allclose(model.intercept_, FIX[f"{name}_intercept"], atol=1e-8)


def test_single_neuron_ridge_matches_nemos():
    model = nmo.glm.GLM(regularizer=nmo.regularizer.Ridge(), regularizer_strength=0.1)
    model.fit(FIX["X"], FIX["counts"][:, 1])
    assert model.coef_.shape == (40,) and model.intercept_.shape == (1,)
    np.testing.assert_allclose(model.coef_, FIX["glm_ridge_coef"], atol=1e-8)
    np.testing.assert_allclose(model.intercept_, FIX["glm_ridge_intercept"], atol=1e-8)


@pytest.mark.parametrize("history", [False, True])
def test_ridge_optimum_has_zero_penalised_gradient(coupled, history):
    X, counts = coupled
    strength = np.linspace(0.01, 0.3, X.shape[1])[:, None] * np.ones(counts.shape[1])
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=strength)
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=6)
    model.fit(basis.history_features(counts) if history else X, counts)
    gradient, intercept_gradient = ridge_gradient(
        X, counts, model.coef_, model.intercept_, strength
    )
    assert np.abs(gradient).max() < 1e-7 and np.abs(intercept_gradient).max() < 1e-7
    # The penalty shrinks: the norm is below the unregularised one.
    mle = nmo.glm.PopulationGLM().fit(X, counts)
    assert np.all(np.linalg.norm(model.coef_, axis=0) < np.linalg.norm(mle.coef_, axis=0))


def test_ridge_zero_strength_is_the_mle(coupled):
    X, counts = coupled
    ridge = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.0).fit(X, counts)
    mle = nmo.glm.PopulationGLM().fit(X, counts)
    np.testing.assert_allclose(ridge.coef_, mle.coef_, atol=1e-9)


def test_ridge_with_mask_penalises_only_kept_features(coupled):
    X, counts = coupled
    mask = np.ones((X.shape[1], counts.shape[1]))
    mask[:3, 1] = 0
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.2, feature_mask=mask)
    model.fit(X, counts)
    assert np.all(model.coef_[:3, 1] == 0)
    keep = mask[:, 1] == 1
    single = nmo.glm.GLM(regularizer="Ridge", regularizer_strength=0.2).fit(
        X[:, keep], counts[:, 1]
    )
    np.testing.assert_allclose(model.coef_[keep, 1], single.coef_, atol=1e-9)


def test_ridge_strength_shape_is_checked(coupled):
    X, counts = coupled
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=np.ones(5))
    with pytest.raises(ValueError, match="broadcastable to the coefficients' shape"):
        model.fit(X, counts)


# -- GLM vs PopulationGLM --


def test_glm_equals_population_column(coupled):
    X, counts = coupled
    population = nmo.glm.PopulationGLM().fit(X, counts)
    for j in range(counts.shape[1]):
        single = nmo.glm.GLM().fit(X, counts[:, j])
        np.testing.assert_allclose(single.coef_, population.coef_[:, j], atol=1e-10)
        np.testing.assert_allclose(single.intercept_, population.intercept_[j : j + 1], atol=1e-10)
        assert single.predict(X).shape == (X.shape[0],)
        assert isinstance(single.n_iter_, int) and single.converged_ is True


def test_glm_and_population_reject_the_other_shape(coupled):
    X, counts = coupled
    with pytest.raises(ValueError, match="y must be 1-D"):
        nmo.glm.GLM().fit(X, counts)
    with pytest.raises(ValueError, match="y must be 2-D"):
        nmo.glm.PopulationGLM().fit(X, counts[:, 0])


def test_not_fitted_error():
    model = nmo.glm.PopulationGLM()
    for call in (lambda: model.predict(FIX["X"]), lambda: model.score(FIX["X"], FIX["counts"])):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


# -- scores and loss --


def test_scores_match_nemos():
    model = nmo.glm.PopulationGLM().fit(FIX["X"], FIX["counts"])
    np.testing.assert_allclose(model.coef_, FIX["mle_coef"], atol=1e-8)
    for data, (X, y) in {
        "train": (FIX["X"], FIX["counts"]),
        "test": (FIX["test_X"], FIX["test_counts"]),
    }.items():
        for score_type in ("log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen"):
            expected = float(FIX[f"score_{data}_{score_type}"])
            assert model.score(X, y, score_type=score_type) == pytest.approx(expected, rel=1e-8)
        total = model.score(X, y, aggregate_sample_scores=np.sum)
        assert total == pytest.approx(float(FIX[f"score_{data}_loglik_sum"]), rel=1e-8)


def test_scores_against_scipy_and_sklearn(coupled):
    from sklearn.metrics import mean_poisson_deviance

    X, counts = coupled
    model = nmo.glm.PopulationGLM().fit(X, counts)
    keep = np.isfinite(X).all(axis=1)
    rate, y = model.predict(X)[keep], counts[keep]
    loglik = stats.poisson.logpmf(y, rate)
    assert model.score(X, counts) == pytest.approx(loglik.mean(), rel=1e-12)
    null = stats.poisson.logpmf(y, y.mean(axis=0))
    mcfadden = 1 - loglik.mean() / null.mean()
    assert model.score(X, counts, score_type="pseudo-r2-McFadden") == pytest.approx(mcfadden)
    # Cohen with per-element mean aggregation: D = mean deviance over all elements.
    d_model = mean_poisson_deviance(y.ravel(), rate.ravel())
    d_null = mean_poisson_deviance(y.ravel(), np.broadcast_to(y.mean(axis=0), y.shape).ravel())
    cohen = model.score(X, counts, score_type="pseudo-r2-Cohen")
    assert cohen == pytest.approx((d_null - d_model) / d_null, rel=1e-10)
    with pytest.raises(ValueError, match="score_type must be one of"):
        model.score(X, counts, score_type="r2")


def test_compute_loss_is_the_fit_objective(coupled):
    X, counts = coupled
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.1).fit(X, counts)
    loss = model.compute_loss((model.coef_, model.intercept_), X, counts)
    assert loss == pytest.approx(model.fit_info_["objective"].sum(), rel=1e-12)
    keep = np.isfinite(X).all(axis=1)
    eta = X[keep] @ model.coef_ + model.intercept_
    expected = np.sum(np.mean(np.exp(eta) - counts[keep] * eta, axis=0)) + 0.05 * np.sum(
        model.coef_**2
    )
    assert loss == pytest.approx(expected, rel=1e-12)
    # Moving away from the optimum increases it.
    assert model.compute_loss((model.coef_ * 1.1, model.intercept_), X, counts) > loss


def test_dof_resid_and_scale(coupled):
    X, counts = coupled
    keep = np.isfinite(X).all(axis=1)
    model = nmo.glm.PopulationGLM().fit(X, counts)
    expected = keep.sum() - np.linalg.matrix_rank(X[keep]) - 1
    np.testing.assert_array_equal(model.dof_resid_, np.full(counts.shape[1], expected))
    np.testing.assert_array_equal(model.scale_, np.ones(counts.shape[1]))
    collinear = np.column_stack([X, X[:, :2] + X[:, 2:4]])
    model = nmo.glm.PopulationGLM().fit(collinear, counts)
    np.testing.assert_array_equal(model.dof_resid_, np.full(counts.shape[1], expected))
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=1.0).fit(X, counts)
    np.testing.assert_array_equal(model.dof_resid_, keep.sum() - X.shape[1] - 1)
    # The rank is computed on first access from the design, held by weak reference only.
    design = X.copy()
    model = nmo.glm.PopulationGLM().fit(design, counts)
    del design
    with pytest.raises(AttributeError, match="no longer exists"):
        model.dof_resid_  # noqa: B018
    assert not hasattr(nmo.glm.PopulationGLM(), "dof_resid_")


def test_initialize_params_and_warm_start(coupled):
    X, counts = coupled
    coef, intercept = nmo.glm.PopulationGLM().initialize_params(X, counts)
    keep = np.isfinite(X).all(axis=1)
    np.testing.assert_array_equal(coef, 0.0)
    np.testing.assert_allclose(intercept, np.log(counts[keep].mean(axis=0)))
    cold = nmo.glm.PopulationGLM().fit(X, counts)
    warm = nmo.glm.PopulationGLM().fit(X, counts, init_params=(cold.coef_, cold.intercept_))
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-9)
    assert warm.n_iter_.sum() < cold.n_iter_.sum()
    single = nmo.glm.GLM().fit(X, counts[:, 0], init_params=(cold.coef_[:, 0], cold.intercept_[:1]))
    np.testing.assert_allclose(single.coef_, cold.coef_[:, 0], atol=1e-9)


def test_simulate_draws_from_the_predicted_rates(coupled):
    X, counts = coupled
    model = nmo.glm.PopulationGLM().fit(X, counts)
    keep = np.isfinite(X).all(axis=1)
    spikes, rates = model.simulate(0, X[keep])
    np.testing.assert_allclose(rates, model.predict(X[keep]))
    assert spikes.shape == rates.shape
    # Pooled: the total count is Poisson with the summed rate (a 5-sigma band).
    assert abs(spikes.sum() - rates.sum()) < 5 * np.sqrt(rates.sum())
    again, _ = model.simulate(0, X[keep])
    np.testing.assert_array_equal(spikes, again)
    with pytest.raises(ValueError, match="NaN rows"):
        model.simulate(0, X)


# -- persistence --


def test_save_and_load_round_trip(tmp_path, coupled):
    X, counts = coupled
    mask = np.ones((X.shape[1], counts.shape[1]))
    mask[0, 0] = 0
    strength = np.full(X.shape[1], 0.3)[:, None] * np.ones(counts.shape[1])
    model = nmo.glm.PopulationGLM(
        regularizer="Ridge", regularizer_strength=strength, feature_mask=mask, tol=1e-9
    ).fit(X, counts)
    model.save_params(tmp_path / "model.npz")
    loaded = nmo.load_model(tmp_path / "model.npz")
    assert type(loaded) is nmo.glm.PopulationGLM
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    np.testing.assert_array_equal(loaded.intercept_, model.intercept_)
    np.testing.assert_array_equal(loaded.feature_mask, mask)
    np.testing.assert_array_equal(loaded.regularizer_strength, strength)
    assert loaded.regularizer == nmo.regularizer.Ridge() and loaded.tol == 1e-9
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    single = nmo.glm.GLM().fit(X, counts[:, 0])
    single.save_params(tmp_path / "single.npz")
    back = nmo.load_model(tmp_path / "single.npz")
    assert type(back) is nmo.glm.GLM and back.regularizer_strength is None
    np.testing.assert_array_equal(back.coef_, single.coef_)


def test_loaded_model_scores_and_reports_like_the_fitted_one(tmp_path, coupled):
    # score and simulate read scale_; fit_info_, n_iter_, converged_ and dof_resid_ describe the
    # fit. A loaded model used to lack all of them (score raised AttributeError).
    X, counts = coupled
    model = nmo.glm.PopulationGLM().fit(X, counts)
    dof = model.dof_resid_
    model.save_params(tmp_path / "model.npz")
    loaded = nmo.load_model(tmp_path / "model.npz")
    assert loaded.score(X, counts) == model.score(X, counts)
    np.testing.assert_array_equal(loaded.scale_, model.scale_)
    np.testing.assert_array_equal(loaded.dof_resid_, dof)
    np.testing.assert_array_equal(loaded.n_iter_, model.n_iter_)
    np.testing.assert_array_equal(loaded.converged_, model.converged_)
    assert loaded.fit_info_.keys() == model.fit_info_.keys()
    for key, value in model.fit_info_.items():
        np.testing.assert_array_equal(loaded.fit_info_[key], value, err_msg=key)
    spikes, _ = loaded.simulate(np.random.default_rng(0), X[-5:])
    assert spikes.shape == (5, counts.shape[1])
    single = nmo.glm.GLM(observation_model="Gamma").fit(X, counts[:, 0] + 0.5)
    single.save_params(tmp_path / "gamma.npz")
    back = nmo.load_model(tmp_path / "gamma.npz")
    assert back.scale_ == single.scale_ and back.n_iter_ == single.n_iter_
    assert back.score(X, counts[:, 0] + 0.5) == single.score(X, counts[:, 0] + 0.5)
    # A file written before these entries existed: Poisson's scale is fixed, so it still scores.
    with np.load(tmp_path / "model.npz") as data:
        old = {key: data[key] for key in data.files if key == "dof_resid_" or "/" not in key}
    del old["scale_"], old["dof_resid_"]
    np.savez(tmp_path / "old.npz", **old)
    older = nmo.load_model(tmp_path / "old.npz")
    assert older.score(X, counts) == model.score(X, counts)
    assert not hasattr(older, "fit_info_")


def test_load_rejects_foreign_and_damaged_files(tmp_path):
    np.savez(tmp_path / "foreign.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="not a popglm model file"):
        nmo.load_model(tmp_path / "foreign.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable popglm model file"):
        nmo.load_model(tmp_path / "garbage.npz")
    # An object array would need pickle to load: refused, never executed.
    np.savez(
        tmp_path / "pickled.npz",
        format=np.array("popglm-model-1"),
        model_class=np.array("GLM"),
        settings=np.array([{"x": 1}], dtype=object),
        regularizer_strength=np.array(np.nan),
        coef_=np.zeros(2),
        intercept_=np.zeros(1),
    )
    with pytest.raises(ValueError, match="not a readable popglm model file"):
        nmo.load_model(tmp_path / "pickled.npz")


# -- scikit-learn --


def test_sklearn_clone_and_params_keep_the_mask():
    from sklearn.base import clone

    mask = np.ones((40, 4))
    mask[:5, 2] = 0
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.5, feature_mask=mask)
    params = model.get_params()
    assert params["regularizer_strength"] == 0.5 and params["feature_mask"] is model.feature_mask
    copy = clone(model)
    np.testing.assert_array_equal(copy.feature_mask, mask)
    assert copy.regularizer == model.regularizer
    copy.set_params(regularizer_strength=2.0)
    assert copy.regularizer_strength == 2.0 and model.regularizer_strength == 0.5
    with pytest.raises(ValueError, match="regularizer_strength"):
        copy.set_params(regularizer_strength=-1.0)


def test_grid_search_over_ridge_strength(coupled):
    from sklearn.model_selection import GridSearchCV, KFold

    X, counts = coupled
    keep = np.isfinite(X).all(axis=1)
    search = GridSearchCV(
        nmo.glm.GLM(regularizer="Ridge", regularizer_strength=1.0),
        {"regularizer_strength": [1e-4, 1e-2, 1.0, 100.0]},
        cv=KFold(3),
    )
    search.fit(X[keep], counts[keep, 0])
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    # A huge penalty flattens the model to its intercept and must score worst.
    assert search.best_params_["regularizer_strength"] != 100.0
    assert scores[-1] == scores.min()


def test_pipeline_with_a_scaler(coupled):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, counts = coupled
    keep = np.isfinite(X).all(axis=1)
    pipe = Pipeline([("scale", StandardScaler()), ("glm", nmo.glm.GLM())])
    pipe.fit(X[keep], counts[keep, 1])
    direct = nmo.glm.GLM().fit(StandardScaler().fit_transform(X[keep]), counts[keep, 1])
    np.testing.assert_allclose(pipe.named_steps["glm"].coef_, direct.coef_, atol=1e-10)
    assert pipe.score(X[keep], counts[keep, 1]) == pytest.approx(
        direct.score(StandardScaler().fit_transform(X[keep]), counts[keep, 1])
    )


def test_iterative_update_reaches_the_fit(coupled):
    X, counts = coupled
    model = nmo.glm.PopulationGLM()
    params = model.initialize_params(X, counts)
    assert model.optimizer_update is None  # NeMoS 0.2.9: None until initialised
    state = model.initialize_optimizer_and_state(params, X, counts)  # NeMoS 0.2.9's order
    norms = []
    for _ in range(30):
        params, state = model.update(params, state, X, counts)
        norms.append(state["gradient_norm"])
        if state["gradient_norm"] <= 1e-8:
            break
    assert state["iteration"] == len(norms) and norms[-1] <= 1e-8
    reference = nmo.glm.PopulationGLM().fit(X, counts)
    np.testing.assert_allclose(params[0], reference.coef_, atol=1e-8)
    with pytest.raises(ValueError, match="opt_state"):
        model.update(params, {}, X, counts)
    # The callables 0.2.9 exposes: one step, a whole run, both exact Newton.
    start = model.initialize_params(X, counts)
    state = model.optimizer_init_state(start, X, counts)
    stepped, state, aux = model.optimizer_update(start, state, X, counts)
    assert state["iteration"] == 1 and aux is None
    same, _ = model.update(start, {"iteration": 0, "gradient_norm": np.inf}, X, counts)
    np.testing.assert_array_equal(stepped[0], same[0])
    run, state, _ = model.optimizer_run(start, X, counts)
    np.testing.assert_allclose(run[0], reference.coef_, atol=1e-8)
    assert state["gradient_norm"] <= 1e-8


def test_nemos_028_solver_spellings_warn_and_still_work(coupled):
    X, counts = coupled
    model = nmo.glm.PopulationGLM()
    params = model.initialize_params(X, counts)
    with pytest.warns(DeprecationWarning, match="initialize_optimizer_and_state"):
        state = model.initialize_solver_and_state(X, counts, params)  # 0.2.8's order
    assert state["iteration"] == 0
    with pytest.warns(DeprecationWarning, match="optimizer_update"):
        update = model.solver_update
    params, state, _ = update(params, state, X, counts)
    assert state["iteration"] == 1
    with pytest.warns(DeprecationWarning, match="optimizer_run"):
        assert model.solver_run is not None
    with pytest.warns(DeprecationWarning, match="optimizer_init_state"):
        assert model.solver_init_state is not None


def test_solver_spec_and_backend_suffixed_names():
    # NeMoS 0.2.9's solver_spec; 0.2.8 also named solvers "Algo[backend]".
    spec = nmo.glm.GLM(solver_name="BFGS[optimistix]").solver_spec
    assert (spec.algo_name, spec.backend) == ("BFGS", "popglm")
    assert nmo.glm.GLM().solver_spec.algo_name == "LBFGS"
    assert nmo.glm.GLM(regularizer="Lasso", regularizer_strength=0.1).solver_spec.algo_name == (
        "ProximalGradient"
    )
    with pytest.raises(ValueError, match="solver_name must be None or one of"):
        nmo.glm.GLM(solver_name="Adam[optax]")
