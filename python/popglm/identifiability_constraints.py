"""Drop linearly dependent columns from a design matrix (NeMoS's ``identifiability_constraints``).

A basis whose functions sum to one (B-splines, cyclic B-splines) is collinear with the intercept;
an additive basis of several such components is collinear within itself. popglm fits such
designs anyway (an unpenalised rank-deficient fit returns the minimum-norm MLE), but a user who
wants unique coefficients removes the redundant columns first, as in NeMoS.

The columns to drop are NeMoS's: scanning the columns left to right, a column is dropped when
setting it to zero leaves the rank of ``[1, X]`` (or of ``X`` without ``add_intercept``)
unchanged, until the matrix has full column rank. Ranks are those of ``numpy.linalg.matrix_rank``
on the rows without NaN (its default tolerance, with the row count of those rows), computed from
one QR factorisation: the rank tests then cost a small SVD each instead of one over all rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "add_constant",
    "apply_identifiability_constraints",
    "apply_identifiability_constraints_by_basis_component",
]


def add_constant(x: ArrayLike) -> NDArray:
    """Return ``x`` with a column of ones in front (the intercept term)."""
    x = np.asarray(x)
    return np.hstack((np.ones((x.shape[0], 1), dtype=x.dtype), x))


def _rank(singular_values: NDArray, n_rows: int, n_cols: int) -> int:
    """``numpy.linalg.matrix_rank``'s rank for a matrix of this shape and these values."""
    if singular_values.size == 0 or singular_values[0] == 0:
        return 0
    tolerance = singular_values[0] * max(n_rows, n_cols) * np.finfo(singular_values.dtype).eps
    return int(np.count_nonzero(singular_values > tolerance))


def _dropped_columns(valid_x: NDArray, add_intercept: bool) -> NDArray:
    """Boolean mask of the columns NeMoS's left-to-right scan drops (see the module docstring)."""
    n_rows, n_features = valid_x.shape
    design = add_constant(valid_x) if add_intercept else valid_x
    offset = 1 if add_intercept else 0
    n_cols = design.shape[1]
    # Zeroing a column of A = Q R zeroes the same column of R; Q keeps the singular values.
    r = np.linalg.qr(design, mode="r") if n_rows >= n_cols else design

    def rank_of(matrix: NDArray) -> int:
        return _rank(np.linalg.svd(matrix, compute_uv=False), n_rows, n_cols)

    rank = rank_of(r)
    dropped = np.zeros(n_features, dtype=bool)
    to_drop = n_cols - rank
    r = np.array(r, dtype=np.float64)
    for column in range(n_features):
        if dropped.sum() >= to_drop:
            break
        saved = r[:, offset + column].copy()
        r[:, offset + column] = 0.0
        if rank_of(r) == rank:
            dropped[column] = True
        else:
            r[:, offset + column] = saved
    return dropped


def apply_identifiability_constraints(
    feature_matrix: ArrayLike, add_intercept: bool = True, warn_if_float32: bool = True
) -> tuple[NDArray, NDArray]:
    """Remove columns of ``feature_matrix`` until it (with an intercept) has full column rank.

    Parameters
    ----------
    feature_matrix : array-like, shape (n_samples, n_features)
        Rows with NaN (e.g. the first rows of convolutional features) are ignored for the rank
        and stay NaN in the output.
    add_intercept : bool
        Whether the model adds an intercept (the rank is that of ``[1, X]``).
    warn_if_float32 : bool
        Warn when the matrix is not float64 (ranks in float32 are unreliable).

    Returns
    -------
    constrained_x : ndarray, shape (n_samples, n_kept)
        The kept columns.
    kept_columns : ndarray of int
        Their indices, to apply the same selection to other data (``test_x[:, kept_columns]``).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.BSplineEval(5) + nmo.basis.BSplineEval(6)
    >>> rng = np.random.default_rng(0)
    >>> X = basis.compute_features(rng.normal(size=100), rng.normal(size=100))
    >>> constrained_x, kept = nmo.identifiability_constraints.apply_identifiability_constraints(X)
    >>> constrained_x.shape
    (100, 9)
    >>> kept
    array([ 1,  2,  3,  4,  6,  7,  8,  9, 10])
    """
    x = np.asarray(feature_matrix)
    if x.ndim != 2:
        raise ValueError(f"feature_matrix must be 2-D (n_samples, n_features), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise TypeError(f"feature_matrix must be a real numeric array, got dtype {x.dtype}")
    if warn_if_float32 and x.dtype != np.float64:
        warnings.warn(
            f"feature_matrix is {x.dtype}, not float64: ranks computed in lower precision can "
            "drop the wrong columns; convert it with np.asarray(X, dtype=np.float64)",
            UserWarning,
            stacklevel=2,
        )
    valid = np.all(np.isfinite(x), axis=1)
    dropped = _dropped_columns(np.asarray(x[valid], dtype=np.float64), add_intercept)
    kept = np.flatnonzero(~dropped)
    constrained = x[:, kept]
    if not valid.all():  # as NeMoS: a row invalid anywhere is NaN in the output
        constrained = np.array(constrained, dtype=np.result_type(constrained.dtype, np.float32))
        constrained[~valid] = np.nan
    return constrained, kept


def apply_identifiability_constraints_by_basis_component(
    basis: Any, feature_matrix: ArrayLike, add_intercept: bool = True
) -> tuple[NDArray, NDArray]:
    """Apply ``apply_identifiability_constraints`` to each additive component of ``basis``.

    Cheaper than the whole matrix at once for large additive bases: each component (and, for a
    component applied to several inputs, each input) is constrained on its own columns.

    Parameters
    ----------
    basis : Basis
        The basis that computed ``feature_matrix``.
    feature_matrix : array-like, shape (n_samples, n_features)
    add_intercept : bool
        Whether the model adds an intercept.

    Returns
    -------
    constrained_x : ndarray
        The kept columns, in order.
    kept_columns : ndarray of int
        Their indices in ``feature_matrix``.
    """
    x = np.asarray(feature_matrix)
    if x.ndim != 2:
        raise ValueError(f"feature_matrix must be 2-D (n_samples, n_features), got shape {x.shape}")
    parts, kept, start = [], [], 0
    for component in basis.split_by_feature(x).values():
        # (n_samples, *input_shape, n_basis_funcs) -> one (n_samples, n_basis_funcs) per input
        blocks = component.reshape(component.shape[0], -1, component.shape[-1])
        for k in range(blocks.shape[1]):
            block, columns = apply_identifiability_constraints(
                blocks[:, k], add_intercept=add_intercept, warn_if_float32=False
            )
            parts.append(block)
            kept.append(columns + start)
            start += blocks.shape[2]
    return np.hstack(parts), np.concatenate(kept).astype(np.int64)
