from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from conftest import DATA, simulate_coupled

import popglm as nmo
from popglm import ConvergenceWarning

sm = pytest.importorskip("statsmodels.api")


def statsmodels_fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Independent reference: statsmodels' Poisson IRLS on the finite rows, run to a tight tolerance."""
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y)
    design = np.column_stack([np.ones(keep.sum()), X[keep]])
    result = sm.GLM(y[keep], design, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=500)
    return result.params[1:], result.params[0]


def mean_nll(X, y, coef, intercept):
    """Mean Poisson negative log-likelihood (without log y!) per neuron, on the finite rows."""
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y).all(axis=1)
    eta = X[keep] @ coef + intercept
    return (np.exp(eta) - y[keep] * eta).mean(axis=0)


@pytest.fixture(scope="module")
def howto_design(howto_counts):
    return nmo.basis.HistoryConv(window_size=10).compute_features(howto_counts)


def test_howto_matches_statsmodels(howto_design, howto_counts):
    model = nmo.glm.PopulationGLM().fit(howto_design, howto_counts)
    assert model.coef_.shape == (40, 4) and model.intercept_.shape == (4,)
    assert model.converged_.all()
    assert (model.fit_info_["gradient_norm"] <= 1e-8).all()
    for j in range(4):
        coef, intercept = statsmodels_fit(howto_design, howto_counts[:, j])
        np.testing.assert_allclose(model.coef_[:, j], coef, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[j], intercept, atol=1e-6)


def test_coupled_network_matches_statsmodels(coupled_design, coupled_counts):
    model = nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)
    assert model.converged_.all()
    for j in range(coupled_counts.shape[1]):
        coef, intercept = statsmodels_fit(coupled_design, coupled_counts[:, j])
        np.testing.assert_allclose(model.coef_[:, j], coef, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[j], intercept, atol=1e-6)


def newton_reference(X, y, iterations=40):
    """Poisson MLE (exp link, intercept) by plain float64 Newton in NumPy."""
    A = np.column_stack([np.ones(len(y)), X])
    theta = np.zeros(A.shape[1])
    theta[0] = np.log(y.mean())
    for _ in range(iterations):
        mu = np.exp(A @ theta)
        theta -= np.linalg.solve(A.T @ (mu[:, None] * A), A.T @ (mu - y))
    return theta


def test_few_rows_per_feature_reach_the_mle():
    # 3,000 rows for 81 parameters (37 per parameter): the smooth engine forms its Hessians on a
    # row sub-sample there (8 rows per parameter), which must not change the answer.
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 80)) * 0.15
    true = rng.normal(size=(80, 3)) * (rng.random((80, 3)) < 0.2)
    counts = rng.poisson(np.exp(-1.0 + X @ true)).astype(float)
    model = nmo.glm.PopulationGLM().fit(X, counts)
    assert np.all(model.fit_info_["converged"])
    for j in range(3):
        reference = newton_reference(X, counts[:, j])
        eta = model.intercept_[j] + X @ model.coef_[:, j]
        residual = np.exp(eta) - counts[:, j]
        assert np.abs(X.T @ residual / len(residual)).max() <= 1e-8  # the stopping rule, in NumPy
        assert abs(residual.mean()) <= 1e-8
        # A gradient of 1e-8 over curvatures of ~0.01 leaves ~1e-6 on the coefficients.
        np.testing.assert_allclose(model.coef_[:, j], reference[1:], atol=3e-6)
        eta_ref = reference[0] + X @ reference[1:]
        loss = np.mean(np.exp(eta) - counts[:, j] * eta)
        assert loss == pytest.approx(np.mean(np.exp(eta_ref) - counts[:, j] * eta_ref), rel=1e-13)


def test_masked_fit_equals_fit_on_subdesign(coupled_design, coupled_counts):
    rng = np.random.default_rng(11)
    n_features, n_neurons = coupled_design.shape[1], coupled_counts.shape[1]
    mask = (rng.uniform(size=(n_features, n_neurons)) < 0.6).astype(float)
    model = nmo.glm.PopulationGLM(feature_mask=mask).fit(coupled_design, coupled_counts)
    assert np.all(model.coef_[mask == 0] == 0.0)
    for j in range(n_neurons):
        keep = mask[:, j] == 1
        coef, intercept = statsmodels_fit(coupled_design[:, keep], coupled_counts[:, j])
        np.testing.assert_allclose(model.coef_[keep, j], coef, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[j], intercept, atol=1e-6)


HOWTO = np.load(DATA / "nemos_howto_fits.npz")
HOWTO_CASES = {"": ("X", None), "masked_": ("X", "mask"), "reduced_": ("X2", None)}


@pytest.mark.parametrize("case", list(HOWTO_CASES), ids=["full", "masked", "reduced"])
def test_howto_agrees_with_nemos(case):
    # References: NeMoS 0.2.8 PopulationGLM on the how-to data (tests/data/make_nemos_fixtures.py):
    # "tight" = LBFGS with tol=1e-12, "default" = NeMoS's defaults (stops early).
    design_key, mask_key = HOWTO_CASES[case]
    X, counts = HOWTO[design_key], HOWTO["counts"]
    mask = None if mask_key is None else HOWTO[mask_key]
    model = nmo.glm.PopulationGLM(feature_mask=mask).fit(X, counts)
    np.testing.assert_allclose(model.coef_, HOWTO[f"tight_{case}coef"], atol=1e-6)
    np.testing.assert_allclose(model.intercept_, HOWTO[f"tight_{case}intercept"], atol=1e-6)
    # NeMoS's default run stops ~1e-3 away; the exact optimum is at least as good for every neuron.
    np.testing.assert_allclose(model.coef_, HOWTO[f"default_{case}coef"], atol=2e-2)
    ours = mean_nll(X, counts, model.coef_, model.intercept_)
    theirs = mean_nll(X, counts, HOWTO[f"default_{case}coef"], HOWTO[f"default_{case}intercept"])
    assert np.all(ours <= theirs + 1e-15)


def test_rank_deficient_design_gives_minimum_norm_mle(howto_counts):
    # The how-to's X2 is rank deficient: RaisedCosineLogConv(3, window_size=3) has two kernels
    # that are proportional on the window's first sample and zero elsewhere.
    X2 = nmo.basis.RaisedCosineLogConv(3, window_size=3).compute_features(howto_counts)
    model = nmo.glm.PopulationGLM().fit(X2, howto_counts)
    assert model.converged_.all()
    keep = np.isfinite(X2).all(axis=1)
    augmented = np.column_stack([np.ones(keep.sum()), X2[keep]])
    _, singular_values, vt = np.linalg.svd(augmented)
    null_space = vt[singular_values < 1e-10 * singular_values[0]]
    assert null_space.shape[0] >= 1
    start = np.vstack([np.log(howto_counts[keep].mean(axis=0)), np.zeros((12, 4))])
    theta = np.vstack([model.intercept_, model.coef_])
    # Closed form: the MLE closest to the start has no component along the null space.
    np.testing.assert_allclose(null_space @ (theta - start), 0.0, atol=1e-9)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_results_do_not_depend_on_threads(coupled_design, coupled_counts, n_threads):
    reference = nmo.glm.PopulationGLM(n_threads=1).fit(coupled_design, coupled_counts)
    model = nmo.glm.PopulationGLM(n_threads=n_threads).fit(coupled_design, coupled_counts)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    np.testing.assert_array_equal(model.intercept_, reference.intercept_)


def test_concurrent_python_threads(coupled_design, coupled_counts):
    serial = nmo.glm.PopulationGLM(n_threads=1).fit(coupled_design, coupled_counts)
    results: list = [None] * 4

    def work(slot: int) -> None:
        results[slot] = nmo.glm.PopulationGLM(n_threads=1).fit(coupled_design, coupled_counts).coef_

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for coef in results:
        np.testing.assert_array_equal(coef, serial.coef_)


def test_nan_and_inf_rows_are_dropped(coupled_design, coupled_counts):
    X = coupled_design.copy()
    y = coupled_counts.astype(float).copy()
    X[100, 3] = np.nan
    X[200, 0] = np.inf
    y[300, 2] = np.nan
    y[400, 1] = -np.inf
    model = nmo.glm.PopulationGLM().fit(X, y)
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y).all(axis=1)
    clean = nmo.glm.PopulationGLM().fit(X[keep], y[keep])
    np.testing.assert_allclose(model.coef_, clean.coef_, rtol=1e-10, atol=1e-12)
    assert model.fit_info_["n_samples_used"] == keep.sum() == len(y) - 8 - 4


@pytest.mark.parametrize(
    "convert",
    [
        lambda X: np.ascontiguousarray(X),
        lambda X: X.astype(np.float32),
        lambda X: np.nan_to_num(X, nan=0)[:, ::1].astype(np.int64),
        lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    ],
    ids=["c-order", "float32", "int64", "strided"],
)
def test_input_layouts_and_dtypes(howto_design, howto_counts, convert):
    X = convert(howto_design)
    reference_X = np.asarray(X, dtype=np.float64)
    reference = nmo.glm.PopulationGLM().fit(np.asfortranarray(reference_X), howto_counts)
    model = nmo.glm.PopulationGLM().fit(X, howto_counts.astype(np.int32))
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("order", ["F", "C"])
def test_float64_design_is_not_copied(howto_design, howto_counts, order, monkeypatch):
    from popglm import glm as glm_module

    X = np.array(howto_design, order=order)
    X.setflags(write=False)
    seen = {}
    original = glm_module._fitting._core.fit_population

    def spy(design, *args):
        seen["design"] = design
        return original(design, *args)

    monkeypatch.setattr(glm_module._fitting._core, "fit_population", spy)
    nmo.glm.PopulationGLM().fit(X, howto_counts)
    assert seen["design"] is X


def test_neuron_without_features_is_intercept_only(howto_design, howto_counts):
    mask = np.ones((40, 4), dtype=bool)
    mask[:, 2] = False
    model = nmo.glm.PopulationGLM(feature_mask=mask).fit(howto_design, howto_counts)
    assert np.all(model.coef_[:, 2] == 0)
    # Closed form: the intercept-only Poisson MLE is log(mean count).
    np.testing.assert_allclose(model.intercept_[2], np.log(howto_counts[10:, 2].mean()), rtol=1e-10)


def test_silent_neuron_warns_and_others_are_unaffected(coupled_design, coupled_counts):
    y = coupled_counts.copy()
    y[:, 3] = 0
    with pytest.warns(ConvergenceWarning, match=r"does not exist for neurons \[3\]"):
        model = nmo.glm.PopulationGLM().fit(coupled_design, y)
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()
    assert model.fit_info_["status"].tolist() == [0, 0, 0, 3, 0]
    others = [0, 1, 2, 4]
    alone = nmo.glm.PopulationGLM().fit(coupled_design, y[:, others])
    # Same optimum; not bit-identical, since products batched over other neurons round differently.
    np.testing.assert_allclose(model.coef_[:, others], alone.coef_, rtol=1e-9, atol=1e-9)


def test_separated_neuron_warns(howto_counts):
    # Neuron 0 never fires in the bin after one of its own spikes: the lag-1 self-coupling MLE is -inf.
    y = np.random.default_rng(5).poisson(0.6, size=(400, 3))
    for t in range(1, 400):
        if y[t - 1, 0] > 0:
            y[t, 0] = 0
    X = nmo.basis.HistoryConv(window_size=2).compute_features(y)
    with pytest.warns(ConvergenceWarning, match=r"does not exist for neurons \[0\]"):
        model = nmo.glm.PopulationGLM(no_mle="stop").fit(X, y)
    assert np.isfinite(model.coef_).all()
    assert model.coef_[0, 0] < -10  # lag-1 self coupling heads to -inf
    assert model.converged_[1:].all()
    # By default that feature is removed for neuron 0 and the rest is its exact MLE.
    with pytest.warns(ConvergenceWarning, match=r"does not exist for neurons \[0\]"):
        model = nmo.glm.PopulationGLM().fit(X, y)
    np.testing.assert_array_equal(model.fit_info_["dropped_features"][0], [0])
    assert model.coef_[0, 0] == 0.0
    coef, intercept = statsmodels_fit(X[:, 1:], y[:, 0].astype(float))
    np.testing.assert_allclose(model.coef_[1:, 0], coef, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.intercept_[0], intercept, rtol=1e-7)


def test_max_iter_is_honoured_and_warns(coupled_design, coupled_counts):
    with pytest.warns(ConvergenceWarning, match=r"did not converge within max_iter=1"):
        model = nmo.glm.PopulationGLM(max_iter=1).fit(coupled_design, coupled_counts)
    assert (model.n_iter_ <= 1).all()
    assert np.isfinite(model.coef_).all()


def test_solver_kwargs_set_tolerance(coupled_design, coupled_counts):
    loose = nmo.glm.PopulationGLM(solver_kwargs={"tol": 1e-2}).fit(coupled_design, coupled_counts)
    tight = nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)
    assert (loose.fit_info_["gradient_norm"] <= 1e-2).all()
    assert loose.n_iter_.sum() < tight.n_iter_.sum()


def test_warm_start_at_the_optimum_takes_no_step(coupled_design, coupled_counts):
    model = nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)
    again = nmo.glm.PopulationGLM().fit(
        coupled_design, coupled_counts, init_params=(model.coef_, model.intercept_)
    )
    # Already within tol: one Hessian (the first) and at most a few polishing steps.
    assert (again.fit_info_["n_hessian"] == 1).all()
    assert (again.n_iter_ <= 3).all()
    np.testing.assert_allclose(again.coef_, model.coef_, atol=1e-9)


def test_predict(howto_design, howto_counts):
    model = nmo.glm.PopulationGLM().fit(howto_design, howto_counts)
    rate = model.predict(howto_design)
    assert rate.shape == (100, 4)
    np.testing.assert_allclose(rate[20], np.exp(howto_design[20] @ model.coef_ + model.intercept_))


def _with(y, index, value):
    y = np.array(y, dtype=float)
    y[index] = value
    return y


BAD_FITS = [
    (lambda X, y: (X[:, 0], y), ValueError, r"X must be 2-D with shape \(n_samples, n_features\)"),
    (lambda X, y: (X, y[:, 0]), ValueError, r"y must be 2-D with shape \(n_samples, n_neurons\)"),
    (lambda X, y: (X[:-1], y), ValueError, "same number of samples"),
    (lambda X, y: (X, -y), ValueError, "non-negative"),
    (lambda X, y: (X, y + 0.5), ValueError, "integer spike counts"),
    (lambda X, y: (X, _with(y, (5, 1), -1.0)), ValueError, "non-negative"),
    # a row dropped for NaN features (the first window) is checked too
    (lambda X, y: (X, _with(y, (0, 0), 0.5)), ValueError, "integer spike counts"),
    (lambda X, y: (X, _with(y, (40, 3), 2.25)), ValueError, "integer spike counts"),
    (lambda X, y: (X[:10], y[:10]), ValueError, "no valid samples"),
    (lambda X, y: (X.astype(str), y), TypeError, "X must be a real numeric array"),
    (lambda X, y: (X, y[:, :0]), ValueError, "at least one neuron"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_FITS)
def test_bad_fit_inputs(howto_design, howto_counts, make, error, match):
    X, y = make(howto_design, howto_counts)
    with pytest.raises(error, match=match):
        nmo.glm.PopulationGLM().fit(X, y)


def test_non_finite_counts_drop_their_rows(howto_design, howto_counts):
    # inf, -inf and NaN counts are not negative or fractional counts: their rows are dropped.
    y = np.array(howto_counts, dtype=float)
    y[30, 2], y[40, 0], y[50, 1] = np.inf, -np.inf, np.nan
    model = nmo.glm.PopulationGLM().fit(howto_design, y)
    assert model.fit_info_["n_samples_used"] == np.isfinite(howto_design).all(axis=1).sum() - 3


def test_count_checks_cover_every_row_block():
    # 20,000 rows are five blocks of the core's scan (4,096 rows each, scanned in parallel):
    # a bad count is found in any block, and non-finite counts drop their rows wherever they are.
    rng = np.random.default_rng(3)
    y = rng.poisson(0.3, size=(20_000, 3)).astype(float)
    X = rng.normal(size=(20_000, 2))
    for row, value, match in [(19_999, -1.0, "non-negative"), (12_345, 0.5, "integer spike")]:
        bad = y.copy()
        bad[row, 1] = value
        with pytest.raises(ValueError, match=match):
            nmo.glm.PopulationGLM(n_threads=2).fit(X, bad)
    y[[17, 8_000, 19_000], [0, 1, 2]] = np.nan, np.inf, -np.inf
    model = nmo.glm.PopulationGLM(n_threads=2).fit(X, y)
    assert model.fit_info_["n_samples_used"] == 20_000 - 3


def test_bad_masks(howto_design, howto_counts):
    with pytest.raises(
        ValueError,
        match=r"feature_mask must have shape \(n_features, n_neurons\) = \(40, 4\), got \(4, 4\)",
    ):
        nmo.glm.PopulationGLM(feature_mask=np.ones((4, 4))).fit(howto_design, howto_counts)
    with pytest.raises(ValueError, match="only 0 and 1"):
        nmo.glm.PopulationGLM(feature_mask=np.full((40, 4), 2.0))
    with pytest.raises(ValueError, match="feature_mask must be 2-D"):
        nmo.glm.PopulationGLM(feature_mask=np.ones(40))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"observation_model": "Categorical"}, "observation_model"),
        ({"observation_model": 3}, "observation_model"),
        ({"regularizer": "Lasso", "regularizer_strength": -0.5}, "regularizer_strength"),
        ({"regularizer": "ElasticNet", "regularizer_strength": (1.0, np.inf)}, "finite"),
        ({"regularizer": "Bogus"}, "Unknown regularizer"),
        ({"regularizer": "Ridge", "regularizer_strength": -1.0}, "regularizer_strength"),
        ({"regularizer": "Ridge", "regularizer_strength": np.nan}, "regularizer_strength"),
        ({"solver_kwargs": {"stepsize": 1}}, "solver_kwargs"),
        ({"solver_name": "Adam"}, "solver_name must be None or one of"),
        ({"inverse_link_function": np.tanh}, "inverse_link_function"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nmo.glm.PopulationGLM(**kwargs)


def test_strength_defaults_follow_nemos():
    with pytest.warns(UserWarning, match="defaulting to 1.0"):
        model = nmo.glm.PopulationGLM(regularizer="Ridge")
    assert model.regularizer_strength == 1.0
    with pytest.warns(UserWarning, match="does not use regularizer_strength"):
        model = nmo.glm.PopulationGLM(regularizer_strength=0.5)
    assert model.regularizer_strength is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n_threads": 0}, ValueError),
        ({"n_threads": "2"}, TypeError),
        ({"tol": -1.0}, ValueError),
        ({"max_iter": -1}, ValueError),
    ],
)
def test_bad_solver_settings(howto_design, howto_counts, kwargs, error):
    with pytest.raises(error):
        nmo.glm.PopulationGLM(**kwargs).fit(howto_design, howto_counts)


def test_nemos_spellings_accepted():
    model = nmo.glm.PopulationGLM(
        observation_model="Poisson", regularizer="UnRegularized", solver_name="LBFGS",
        inverse_link_function=np.exp, solver_kwargs={"tol": 1e-9, "maxiter": 50},
    )  # fmt: skip
    assert model._solver_settings()[:2] == (1e-9, 50)


def test_warnings_are_not_emitted_for_a_clean_fit(coupled_design, coupled_counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)


@pytest.mark.slow
def test_larger_population_matches_statsmodels():
    counts = simulate_coupled(20000, 12, 20, seed=3)
    X = nmo.basis.RaisedCosineLogConv(5, window_size=20).compute_features(counts)
    model = nmo.glm.PopulationGLM().fit(X, counts)
    for j in (0, 7, 11):
        coef, intercept = statsmodels_fit(X, counts[:, j])
        np.testing.assert_allclose(model.coef_[:, j], coef, atol=1e-6)


def test_long_recording_uses_subsampled_hessians_and_stays_exact():
    # 20k rows for 13 parameters: Hessians are formed on a row subsample (every 48th row) in
    # float32, yet the exact gradient test makes the answer the MLE.
    counts = simulate_coupled(20000, 3, 5, seed=12)
    X = nmo.basis.RaisedCosineLogConv(4, window_size=12).compute_features(counts)
    model = nmo.glm.PopulationGLM().fit(X, counts)
    assert model.converged_.all()
    for j in range(3):
        coef, intercept = statsmodels_fit(X, counts[:, j])
        np.testing.assert_allclose(model.coef_[:, j], coef, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[j], intercept, atol=1e-6)


def test_ill_conditioned_design_reaches_the_optimum():
    # Two nearly collinear features (scaled Gram condition ~1e7): float32 Hessians would be too
    # coarse, so the fit runs in float64 and still reaches the optimum (statsmodels' tight IRLS
    # is the reference). Collinearity beyond ~1e-11 relative counts as rank deficiency instead.
    rng = np.random.default_rng(4)
    base = rng.normal(size=(5000, 1))
    X = np.hstack([base, base + 1e-3 * rng.normal(size=(5000, 1)), rng.normal(size=(5000, 2))])
    y = rng.poisson(np.exp(0.3 * X[:, [0]] - 0.2 * X[:, [2]] - 1.0))
    model = nmo.glm.PopulationGLM().fit(X, y)
    assert model.converged_.all() and model.fit_info_["gradient_norm"][0] <= 1e-8
    coef, intercept = statsmodels_fit(X, y[:, 0])
    ours = mean_nll(X, y, model.coef_, model.intercept_)
    theirs = mean_nll(X, y, coef[:, None], intercept)
    assert ours[0] <= theirs[0] + 1e-13
    np.testing.assert_allclose(model.coef_[:, 0], coef, rtol=1e-6, atol=1e-6)
