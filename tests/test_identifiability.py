"""nmo.identifiability_constraints: NeMoS's column selection, against its literal algorithm."""

from __future__ import annotations

import numpy as np
import pytest

import popglm as nmo
from popglm.identifiability_constraints import (
    apply_identifiability_constraints,
    apply_identifiability_constraints_by_basis_component,
)


def nemos_algorithm(x, add_intercept=True):
    """NeMoS 0.2.9's scan, literally: zero each column in turn, keep it zeroed when the rank of
    the (intercept-augmented) valid rows does not change, stop at full rank."""
    valid = np.all(np.isfinite(x), axis=1)
    x = np.array(x[valid], dtype=np.float64)

    def augmented(m):
        return np.column_stack([np.ones(len(m)), m]) if add_intercept else m

    rank = np.linalg.matrix_rank(augmented(x))
    max_drop = augmented(x).shape[1] - rank
    dropped = np.zeros(x.shape[1], dtype=bool)
    for column in range(x.shape[1]):
        if dropped.sum() >= max_drop:
            break
        trial = x.copy()
        trial[:, column] = 0.0
        if np.linalg.matrix_rank(augmented(trial)) == rank:
            x, dropped[column] = trial, True
    return np.flatnonzero(~dropped)


def test_nemos_docstring_example():
    # NeMoS's documented output: each B-spline block sums to one, so with the intercept one
    # column of each goes (the first of each block: NeMoS keeps [1..4, 6..10]).
    basis = nmo.basis.BSplineEval(5) + nmo.basis.BSplineEval(6)
    rng = np.random.default_rng(0)
    X = basis.compute_features(rng.normal(size=100), rng.normal(size=100))
    constrained, kept = apply_identifiability_constraints(X)
    assert constrained.shape == (100, 9)
    np.testing.assert_array_equal(kept, [1, 2, 3, 4, 6, 7, 8, 9, 10])
    by_component, kept_by_component = apply_identifiability_constraints_by_basis_component(basis, X)
    np.testing.assert_array_equal(kept_by_component, kept)
    np.testing.assert_array_equal(by_component, constrained)
    assert nmo.identifiability_constraints.apply_identifiability_constraints is not None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("add_intercept", [True, False])
def test_matches_the_literal_algorithm_on_rank_deficient_designs(seed, add_intercept):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(200, 6))
    mix = rng.normal(size=(6, 4)) * (rng.random((6, 4)) < 0.5)
    columns = [base, base @ mix, np.ones((200, 1)) * rng.normal(), base[:, :2] * 3.0]
    x = np.column_stack(columns)[:, rng.permutation(13)]
    _, kept = apply_identifiability_constraints(x, add_intercept=add_intercept)
    np.testing.assert_array_equal(kept, nemos_algorithm(x, add_intercept))
    augmented = np.column_stack([np.ones(200), x[:, kept]]) if add_intercept else x[:, kept]
    assert np.linalg.matrix_rank(augmented) == augmented.shape[1]  # full rank now


def test_nan_rows_are_ignored_and_stay_nan():
    basis = nmo.basis.BSplineConv(5, window_size=10)
    rng = np.random.default_rng(1)
    X = basis.compute_features(rng.poisson(0.3, size=300).astype(float))
    constrained, kept = apply_identifiability_constraints(X)
    np.testing.assert_array_equal(kept, nemos_algorithm(X))
    invalid = ~np.all(np.isfinite(X), axis=1)
    assert invalid.any() and np.isnan(constrained[invalid]).all()
    np.testing.assert_array_equal(constrained[~invalid], X[~invalid][:, kept])


def test_full_rank_keeps_everything_and_bad_input_is_named():
    x = np.random.default_rng(2).normal(size=(50, 4))
    constrained, kept = apply_identifiability_constraints(x)
    np.testing.assert_array_equal(kept, np.arange(4))
    np.testing.assert_array_equal(constrained, x)
    with pytest.raises(ValueError, match="feature_matrix must be 2-D"):
        apply_identifiability_constraints(np.ones(5))
    with pytest.raises(TypeError, match="real numeric"):
        apply_identifiability_constraints(np.array([["a", "b"]]))
    with pytest.warns(UserWarning, match="not float64"):
        apply_identifiability_constraints(x.astype(np.float32))
