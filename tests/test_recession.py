"""Neurons without a maximum-likelihood estimate: the certificate and the bounded answer.

Every case is built so that the truth is known by construction (which features separate the
spikes, or a closed form), and the fitted part is checked against statsmodels or scipy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

import popglm as nmo
from popglm import ConvergenceWarning, _recession
from popglm._native import core

sm = pytest.importorskip("statsmodels.api")

POISSON = core.ObservationFamily.poisson_exp
AT_INFINITY = int(core.FitStatus.mle_at_infinity)


def statsmodels_poisson(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """statsmodels' Poisson IRLS on the finite rows of [1, X], to a tight tolerance."""
    keep = np.isfinite(X).all(axis=1)
    design = np.column_stack([np.ones(keep.sum()), X[keep]])
    result = sm.GLM(y[keep], design, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=500)
    return result.params[1:], result.params[0]


def rare_sender_counts(seed: int = 0, n_samples: int = 3000) -> np.ndarray:
    """Neuron 0 fires at ~0.2/bin; neuron 1 fires 3 times, and neuron 0 is silent for 10 bins
    after each of those spikes: every history feature of neuron 1 (window 10) is zero on the bins
    where neuron 0 fires and positive on some others, so each is a direction of recession for
    neuron 0. Neuron 2 is independent Poisson at ~0.3/bin."""
    rng = np.random.default_rng(seed)
    counts = np.column_stack(
        [rng.poisson(0.2, n_samples), np.zeros(n_samples), rng.poisson(0.3, n_samples)]
    )
    for t in (500, 1500, 2500):
        counts[t, 1] = 1
        counts[t + 1 : t + 11, 0] = 0
    return counts


@pytest.fixture(scope="module")
def rare_sender():
    """(basis, X of all three neurons, counts of the receivers: neurons 0 and 2)."""
    counts = rare_sender_counts()
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
    return basis, basis.compute_features(counts), counts[:, [0, 2]]


def test_rare_sender_features_are_dropped_and_the_rest_is_the_mle(rare_sender):
    basis, X, counts = rare_sender
    sender = np.arange(3, 6)  # neuron 1's three features
    with pytest.warns(ConvergenceWarning, match=r"does not exist for neurons \[0\]"):
        model = nmo.glm.PopulationGLM().fit(X, counts)
    info = model.fit_info_
    assert info["status"].tolist() == [AT_INFINITY, 0]
    np.testing.assert_array_equal(info["dropped_features"][0], sender)
    assert info["dropped_features"][1].size == 0
    assert np.all(model.coef_[sender, 0] == 0.0)
    kept = np.setdiff1d(np.arange(X.shape[1]), sender)
    coef, intercept = statsmodels_poisson(X[:, kept], counts[:, 0])
    np.testing.assert_allclose(model.coef_[kept, 0], coef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_[0], intercept, rtol=1e-8)
    assert info["gradient_norm"][0] <= 1e-8
    # A neuron without the separation is untouched: its own MLE.
    coef, intercept = statsmodels_poisson(X, counts[:, 1])
    np.testing.assert_allclose(model.coef_[:, 1], coef, rtol=1e-6, atol=1e-8)


def test_rare_sender_predictions_on_new_data_stay_bounded(rare_sender):
    basis, X, counts = rare_sender
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dropped = nmo.glm.PopulationGLM().fit(X, counts)
        stopped = nmo.glm.PopulationGLM(no_mle="stop").fit(X, counts)
    # The iterates' point puts large negative weights on the sender's features...
    assert stopped.coef_[3:6, 0].min() < -10
    # ...so where the sender fires before the receiver in new data, the stopped fit predicts
    # a rate ~0 for spikes that happen; the bounded answer does not depend on the sender at all.
    new = rare_sender_counts(seed=1)
    new[1000, 1] = 1
    new[1002, 0] = 3
    X_new = basis.compute_features(new)
    new = new[:, [0, 2]]
    rate_dropped = dropped.predict(X_new)[1002, 0]
    rate_stopped = stopped.predict(X_new)[1002, 0]
    assert rate_stopped < 1e-3 * rate_dropped
    np.testing.assert_allclose(rate_dropped, dropped.predict(X_new)[900, 0], rtol=0.5)
    per_bin = dropped.score(X_new, new, aggregate_sample_scores=lambda s: np.mean(s, axis=0))
    assert np.all(np.asarray(per_bin) > -10)


def test_masking_the_separating_sender_gives_an_mle(rare_sender):
    _, X, counts = rare_sender
    mask = np.ones((X.shape[1], 2))
    mask[3:6, 0] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = nmo.glm.PopulationGLM(feature_mask=mask).fit(X, counts)
    assert model.converged_.all()
    assert all(dropped.size == 0 for dropped in model.fit_info_["dropped_features"])
    kept = np.flatnonzero(mask[:, 0])
    coef, intercept = statsmodels_poisson(X[:, kept], counts[:, 0])
    np.testing.assert_allclose(model.coef_[kept, 0], coef, rtol=1e-6, atol=1e-8)


def test_single_neuron_glm_and_history_features_drop_the_same(rare_sender):
    basis, X, counts = rare_sender
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        glm = nmo.glm.GLM().fit(X, counts[:, 0])
        lazy = nmo.glm.PopulationGLM().fit(basis.history_features(rare_sender_counts()), counts)
    np.testing.assert_array_equal(glm.fit_info_["dropped_features"][0], np.arange(3, 6))
    np.testing.assert_array_equal(lazy.fit_info_["dropped_features"][0], np.arange(3, 6))
    np.testing.assert_allclose(glm.coef_, lazy.coef_[:, 0], rtol=1e-7, atol=1e-10)


def test_silent_neuron_keeps_the_start_intercept_and_no_feature(coupled_counts):
    counts = coupled_counts.copy()
    counts[:, 1] = 0.0
    X = nmo.basis.RaisedCosineLogConv(3, window_size=8).compute_features(counts)
    with pytest.warns(ConvergenceWarning, match=r"neurons \[1\]"):
        model = nmo.glm.PopulationGLM().fit(X, counts)
    n_used = model.fit_info_["n_samples_used"]
    assert model.fit_info_["status"][1] == AT_INFINITY
    np.testing.assert_array_equal(model.fit_info_["dropped_features"][1], np.arange(X.shape[1]))
    assert np.all(model.coef_[:, 1] == 0.0)
    # Half a spike over the fitted bins (the documented bounded answer).
    np.testing.assert_allclose(model.intercept_[1], np.log(0.5 / n_used), rtol=1e-12)


def test_complete_separation_of_a_binary_neuron():
    rng = np.random.default_rng(3)
    x = rng.normal(size=400)
    noise = rng.normal(size=400)
    y = (x > 0).astype(float)  # x separates the classes exactly
    X = np.column_stack([x, noise])
    with pytest.warns(ConvergenceWarning, match="does not exist"):
        model = nmo.glm.GLM(observation_model="Bernoulli").fit(X, y)
    np.testing.assert_array_equal(model.fit_info_["dropped_features"][0], [0])
    # What is left: a logistic regression on the noise column alone.
    reference = sm.GLM(y, np.column_stack([np.ones(400), noise]), family=sm.families.Binomial())
    params = reference.fit(tol=1e-14, maxiter=200).params
    np.testing.assert_allclose(model.coef_[1], params[1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, params[0], rtol=1e-6, atol=1e-9)


def test_near_separation_has_a_finite_mle_matching_the_closed_form():
    """Rows: n_a with x=0 (counts summing to s_a), n_b with x=1 (no count), one with x=delta and a
    count of 1. A direction of recession would need x = 0 on the counted rows, which the last row
    breaks: the MLE is finite, with w far below zero. Its score equations reduce to one equation
    in w, solved by brentq."""
    rng = np.random.default_rng(11)
    n_a, n_b, delta = 600, 200, 1e-4
    y_a = rng.poisson(0.5, n_a).astype(float)
    x = np.concatenate([np.zeros(n_a), np.ones(n_b), [delta]])
    y = np.concatenate([y_a, np.zeros(n_b), [1.0]])
    s = y.sum()

    def score(w):  # d/dw of the log-likelihood, with the intercept profiled out
        e = s / (n_a + n_b * np.exp(w) + np.exp(w * delta))
        return delta - e * (n_b * np.exp(w) + delta * np.exp(w * delta))

    w = brentq(score, -500.0, 0.0, xtol=1e-14)
    assert w < -12  # far out (rates e^w against e^0 elsewhere), but finite
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = nmo.glm.GLM().fit(x[:, None], y)
    assert model.converged_ and model.fit_info_["dropped_features"][0].size == 0
    np.testing.assert_allclose(model.coef_[0], w, rtol=1e-6)
    rows = np.arange(x.size)
    assert _recession.recession_direction(x[:, None], y, rows, np.arange(1), POISSON) is None


def test_certificate_finds_the_constructed_direction_and_only_it(rare_sender):
    _, X, counts = rare_sender
    rows = np.flatnonzero(np.isfinite(X).all(axis=1))
    active = np.arange(X.shape[1])
    direction = _recession.recession_direction(X, counts[:, 0], rows, active, POISSON)
    assert direction is not None
    values = np.column_stack([np.ones(rows.size), X[rows]]) @ direction
    spikes = counts[rows, 0] > 0
    scale = np.abs(values).max()
    assert np.abs(values[spikes]).max() <= 1e-6 * scale and values.max() <= 1e-6 * scale
    assert values.min() < 0
    # It moves the sender's features only (positions 4-6: the intercept is position 0).
    assert set(_recession.carrying_features(direction, X, rows, active)) <= {4, 5, 6}
    assert _recession.diagnose(X, counts[:, 0], rows, active, POISSON).tolist() == [3, 4, 5]
    assert _recession.diagnose(X, counts[:, 1], rows, active, POISSON) is None
    assert _recession.recession_direction(X, counts[:, 1], rows, active, POISSON) is None


def test_stop_keeps_the_iterates_point_and_saves_the_choice(tmp_path, rare_sender):
    _, X, counts = rare_sender
    model = nmo.glm.PopulationGLM(no_mle="stop")
    with pytest.warns(ConvergenceWarning, match="do not interpret"):
        model.fit(X, counts)
    assert all(dropped.size == 0 for dropped in model.fit_info_["dropped_features"])
    assert model.fit_info_["status"][0] == AT_INFINITY
    with pytest.raises(ValueError, match="no_mle"):
        nmo.glm.PopulationGLM(no_mle="keep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dropped = nmo.glm.PopulationGLM().fit(X, counts)
    path = tmp_path / "model.npz"
    dropped.save_params(path)
    loaded = nmo.load_model(path)
    assert loaded.no_mle == "drop"
    for a, b in zip(
        loaded.fit_info_["dropped_features"], dropped.fit_info_["dropped_features"], strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.coef_, dropped.coef_)


def test_inference_refuses_the_dropped_pairs(rare_sender):
    _, X, counts = rare_sender
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = nmo.glm.PopulationGLM().fit(X, counts)
    with pytest.warns(UserWarning, match=r"Neurons \[0\] .* NaN"):
        inference = model.inference(X)
    assert np.isnan(inference.coef_se[3:6, 0]).all() and np.isnan(inference.p_values[3:6, 0]).all()
    assert np.isfinite(inference.coef_se[:3, 0]).all()
    _, p = inference.coupling_test(n_basis_funcs=3)
    assert np.isnan(p[1, 0])  # sender 1 -> receiver 0
    assert np.isfinite(p[0, 0]) and np.isfinite(p[1, 1])
    assert not nmo.inference.benjamini_hochberg(p)[1, 0]


def test_connectivity_plot_marks_dropped_pairs_not_significant(rare_sender):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from popglm.plotting import plot_connectivity

    basis, X, counts = rare_sender
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = nmo.glm.PopulationGLM().fit(X, counts)
    significant = np.ones((3, 2), dtype=bool)  # claim every pair: the plot must refuse (1, 0)
    fig = plot_connectivity(model, basis, significant)
    dots, crosses = fig.axes[0].collections[:2]
    assert crosses.get_label() == "not identifiable"
    np.testing.assert_array_equal(np.asarray(crosses.get_offsets()), [[0, 1]])  # (receiver, sender)
    marked = {tuple(point) for point in np.asarray(dots.get_offsets()).tolist()}
    assert (0, 1) not in marked and len(marked) == 5
    plt.close(fig)


def test_inference_flags_a_barely_identified_finite_mle():
    # The near-separation case above, farther out: a finite MLE (w ~ -18) whose information
    # along x is ~e^w of what x would carry at the mean rate.
    rng = np.random.default_rng(11)
    n_a, n_b, delta = 600, 2000, 3e-6
    x = np.concatenate([np.zeros(n_a), np.ones(n_b), [delta]])
    y = np.concatenate([rng.poisson(0.5, n_a), np.zeros(n_b), [1.0]])
    model = nmo.glm.GLM().fit(x[:, None], y)
    assert model.converged_
    with pytest.warns(UserWarning, match="barely identified"):
        inference = model.inference(x[:, None])
    # Its standard error is finite but dwarfs the coefficient (a 1-D case: 1 / sqrt(information)).
    assert np.isfinite(inference.coef_se).all() and inference.coef_se[0] > 5 * abs(model.coef_[0])


def single_feature_reference(X, counts, rows, binary=False):
    """The definition, feature by feature and neuron by neuron, in NumPy."""
    n_features, n_neurons = X.shape[1], counts.shape[1]
    hits = np.zeros((n_features, n_neurons), dtype=bool)
    for j in range(n_neurons):
        y = counts[rows, j]
        if y.min() == y.max():
            continue
        for p in range(n_features):
            column = X[rows, p]
            size = np.abs(column).max()
            if size == 0:
                continue
            zero = 1e-6 * size
            if binary:
                up = column[y > 0].min() >= -zero and column[y == 0].max() <= zero
                down = column[y > 0].max() <= zero and column[y == 0].min() >= -zero
                hits[p, j] = up or down
            else:
                quiet = np.abs(column[y > 0]).max() <= zero
                one_sign = column[y == 0].min() >= -zero or column[y == 0].max() <= zero
                hits[p, j] = quiet and one_sign
    return hits


def refractory_counts(seed: int = 3, n_samples: int = 4000) -> np.ndarray:
    """Neuron 0 never fires in the 3 bins after its own spikes (refractory); neuron 1 fires 3
    times, each followed by 10 silent bins of neuron 0 (a rare sender); neurons 2-3 Poisson."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson([0.15, 0.0, 0.3, 0.2], (n_samples, 4)).astype(float)
    for t in range(n_samples):
        if counts[t, 0] > 0:
            counts[t + 1 : t + 4, 0] = 0
    for t in (800, 2100, 3300):
        counts[t, 1] = 1
        counts[t + 1 : t + 11, 0] = 0
    return counts


@pytest.mark.parametrize("binary", [False, True])
def test_single_feature_scan_matches_the_definition(binary):
    counts = refractory_counts()
    if binary:
        counts = np.minimum(counts, 1.0)
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
    X = basis.compute_features(counts)
    rows = np.flatnonzero(np.isfinite(X).all(axis=1))
    family = core.ObservationFamily.bernoulli_logistic if binary else POISSON
    free = np.ones((X.shape[1], counts.shape[1]), dtype=bool)
    expected = single_feature_reference(X, counts, rows, binary)
    found = _recession.single_feature_directions(X, counts, rows, free, family)
    np.testing.assert_array_equal(found, expected)
    if not binary:
        # The refractory self-history feature and the rare sender's, for neuron 0 only.
        assert 0 in np.flatnonzero(found[:, 0]) and {3, 4, 5} <= set(np.flatnonzero(found[:, 0]))
        assert not found[np.r_[0:3, 6:12], 2:].any()  # only the rare sender, by chance
    # History features (never formed) give the same answer; a mask removes candidates.
    lazy = basis.history_features(counts)
    np.testing.assert_array_equal(
        _recession.single_feature_directions(lazy, counts, rows, free, family), expected
    )
    free[3:6] = False
    masked = _recession.single_feature_directions(X, counts, rows, free, family)
    np.testing.assert_array_equal(masked, expected & free)


def test_features_that_recede_alone_leave_before_the_engine_runs():
    counts = refractory_counts()
    X = nmo.basis.RaisedCosineLogConv(3, window_size=10).compute_features(counts)
    receivers = counts[:, [0, 2]]
    with pytest.warns(ConvergenceWarning, match="does not exist"):
        model = nmo.glm.PopulationGLM().fit(X, receivers)
    rows = np.flatnonzero(np.isfinite(X).all(axis=1))
    alone = single_feature_reference(X, receivers, rows)
    assert alone[:, 0].sum() >= 4
    info = model.fit_info_
    for j in range(2):
        np.testing.assert_array_equal(info["dropped_features"][j], np.flatnonzero(alone[:, j]))
    assert info["status"].tolist() == [AT_INFINITY if alone[:, j].any() else 0 for j in range(2)]
    # The engine saw the reduced problem from the start: the same iterations and solution as a
    # fit where the user masked those features.
    mask = (~alone).astype(float)
    masked = nmo.glm.PopulationGLM(feature_mask=mask, no_mle="stop").fit(X, receivers)
    np.testing.assert_array_equal(info["n_hessian"], masked.fit_info_["n_hessian"])
    np.testing.assert_array_equal(model.coef_, masked.coef_)
    # Neuron 2's reduced problem is benign: statsmodels agrees. (Neuron 0's keeps a refractory
    # feature far out, near-separated: no IRLS reference converges there.)
    kept = np.flatnonzero(mask[:, 1])
    coef, intercept = statsmodels_poisson(X[:, kept], receivers[:, 1])
    np.testing.assert_allclose(model.coef_[kept, 1], coef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_[1], intercept, rtol=1e-8)


def test_null_space_keeps_zero_columns_exact():
    """Columns that vanish on the counted rows are null directions by themselves: their basis
    vectors must be exact, or the rest's rounding lands on rows where they are exactly zero (the
    linear program then sees a direction miss zero by 1e-6 and calls it no direction)."""
    rng = np.random.default_rng(5)
    A = np.column_stack([np.ones(30), rng.normal(size=(30, 50)) * 100.0, np.zeros((30, 3))])
    null = _recession._null_space(A.T @ A)
    # 51 used columns on 30 rows leave 21 directions among them, plus the 3 zero columns.
    assert null.shape == (54, 24)
    np.testing.assert_array_equal(null[51:, -3:], np.eye(3))
    np.testing.assert_array_equal(null[:51, -3:], 0.0)
    np.testing.assert_allclose(A @ null, 0.0, atol=1e-9 * np.abs(A).max())


def test_a_direction_whose_rows_have_vanished_is_not_certified_away():
    """Two features that cancel on every counted row and sum to >= 0 elsewhere: d = -(e1 + e2)
    recedes, though neither feature alone does. At the fitted point the receding rows' rates
    are ~0: the certificate must not be built from the other rows alone."""
    rng = np.random.default_rng(8)
    n = 3000
    y = rng.poisson(0.3, n).astype(float)
    first = rng.normal(size=n)
    second = -first.copy()
    silent = np.flatnonzero(y == 0)
    push = silent[rng.choice(silent.size, 40, replace=False)]
    second[push] += rng.uniform(0.5, 1.5, push.size)  # first + second > 0 only there
    X = np.column_stack([first, second, rng.normal(size=n)])
    rows = np.arange(n)
    active = np.arange(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stopped = nmo.glm.GLM(no_mle="stop").fit(X, y)
    point = np.concatenate([[stopped.intercept_[0]], stopped.coef_])
    null = _recession._counted_null_space(X, rows[y > 0], active)
    assert null.shape[1] == 1
    assert not _recession._certified(X, y, rows, active, POISSON, 1.0, point, null)
    assert _recession.diagnose(X, y, rows, active, POISSON, point=point).tolist() == [0, 1]
    with pytest.warns(ConvergenceWarning, match="does not exist"):
        model = nmo.glm.GLM().fit(X, y)
    np.testing.assert_array_equal(model.fit_info_["dropped_features"][0], [0, 1])


def test_certificate_decides_a_finite_mle_far_out_without_the_program(monkeypatch):
    """One feature, zero on every counted row, +1 on 200 silent rows and -delta on one: the MLE
    is finite, w = log(delta / 200) / (1 + delta) (the silent rows' part of the likelihood,
    200 e^w + e^(-w delta) up to the intercept's factor, is minimal there): rates ~5e-8 of the
    others'. The dual certificate at the fit must prove it, with no linear program."""
    rng = np.random.default_rng(2)
    delta = 1e-5
    y = np.concatenate([rng.poisson(0.8, 500), np.zeros(201)]).astype(float)
    y[:500][y[:500] == 0] = 1.0  # every row of the first block counted
    x = np.concatenate([np.zeros(500), np.ones(200), [-delta]])
    expected = np.log(delta / 200) / (1 + delta)

    def no_program(*args, **kwargs):
        raise AssertionError("the linear program ran")

    monkeypatch.setattr(_recession, "_largest_recession", no_program)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = nmo.glm.GLM().fit(x[:, None], y)
    assert model.converged_ and model.fit_info_["dropped_features"][0].size == 0
    np.testing.assert_allclose(model.coef_[0], expected, rtol=1e-6)


def full_phase_one(rows, multiplicity, bound=None):
    """The first phase of Stiemke's problem on every row at once (scipy's HiGHS): its optimum."""
    from scipy.optimize import linprog

    n_rows, width = rows.shape
    result = linprog(
        np.concatenate([np.zeros(n_rows), np.ones(2 * width)]),
        A_eq=np.hstack([rows.T, np.eye(width), -np.eye(width)]),
        b_eq=-(rows.T @ multiplicity),
        bounds=[(0.0, bound)] * n_rows + [(0.0, None)] * (2 * width),
        method="highs",
    )
    assert result.status == 0
    return result.fun


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("receding", [False, True])
def test_row_generation_solves_the_whole_program(seed, receding):
    """Few rows bind: the program solved on a growing subset of rows must reach the optimum of
    the program on every row, with a direction that no row violates."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(3000, 12))
    if receding:
        # Every row but a few is pushed to one side of a hidden direction.
        hidden = rng.normal(size=12)
        values = rows @ hidden
        rows[values > 0] -= np.outer(
            values[values > 0] + rng.uniform(0, 1, (values > 0).sum()), hidden
        ) / (hidden @ hidden)
    multiplicity = rng.integers(1, 3, rows.shape[0]).astype(float)
    for bounded in (False, True):
        expected = full_phase_one(rows, multiplicity, 1e9 if bounded else None)
        z, largest = _recession._phase_one(rows, multiplicity, bounded)
        if not receding:
            assert expected <= 1e-9 * np.abs(rows.T @ multiplicity).max()
            assert z is None and 1.0 <= largest < np.inf
            continue
        assert z is not None and expected > 1.0
        values = rows @ z
        assert values.max() <= 1e-7 and np.abs(z).max() <= 1 + 1e-9
        np.testing.assert_allclose(-(multiplicity @ values), expected, rtol=1e-7)


@pytest.mark.parametrize("order", ["C", "F"])
def test_counted_square_sums_kernel_matches_numpy_for_any_thread_count(order):
    rng = np.random.default_rng(4)
    design = np.asarray(rng.normal(size=(500, 7)), order=order)
    counts = np.asfortranarray(rng.poisson(0.2, (500, 5)).astype(float))
    rows = np.sort(rng.choice(500, 300, replace=False)).astype(np.int64)
    expected = np.column_stack(
        [(design[rows][counts[rows, j] > 0] ** 2).sum(axis=0) for j in range(5)]
    )
    results = []
    for threads in (1, 2, 3):
        sums, low, high = np.zeros((7, 5), order="F"), np.zeros(7), np.zeros(7)
        core.counted_square_sums(design, rows, counts, sums, low, high, threads)
        results.append(sums)
        np.testing.assert_array_equal(low, design[rows].min(axis=0))
        np.testing.assert_array_equal(high, design[rows].max(axis=0))
    np.testing.assert_allclose(results[0], expected, rtol=1e-12)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    with pytest.raises(ValueError, match="row index out of range"):
        core.counted_square_sums(design, np.array([500]), counts, sums, low, high, 1)
