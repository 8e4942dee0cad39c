"""Whether a neuron's maximum-likelihood estimate exists, decided by a certificate.

For count observations (Poisson, negative binomial: per-row log-likelihood y eta - b(eta) with b
increasing and unbounded, y >= 0) the MLE of a neuron whose design on its fitted rows is
A = [1, X_active] does not exist exactly when a direction of recession does: d with A d = 0 on
every row with a count, A d <= 0 on every row and A d != 0 (Geyer 2009, "Likelihood inference in
exponential families and directions of recession"). Along such a d the likelihood increases for
ever and the rates of the rows with (A d)_i < 0 go to zero. For Bernoulli observations the
condition is A d <= 0 where y = 0, A d >= 0 where y = 1, A d != 0 (separation). Gaussian and
Gamma likelihoods have a maximiser whenever A has full column rank.

The test, for counts: the directions with A d = 0 on the rows with a count form the null space of
those rows (from the eigendecomposition of their Jacobi-scaled Gram matrix, with the engine's rank
rule); when it is empty the MLE exists, which settles most neurons with one Gram matrix of their
spike rows. Otherwise a linear program over that null space, for A d <= 0 on the rows without
a count and A d != 0 there, either finds a direction or proves there is none (``_largest_recession``).
For Bernoulli the same program runs over all of d, with the rows of y = 1 negated.

``diagnose`` answers the question for a fitted neuron with cheaper steps first. (1) A feature
whose column vanishes on the rows with a count and keeps one sign on the others is a direction by
itself (a rare sender whose spikes never precede the receiver's, a refractory self-history basis
function): ``single_feature_directions`` finds them for every neuron in one pass over the design,
before the engine runs, so that no neuron chases them. (2) The theorem of the alternative
(Stiemke's): no direction exists exactly when some weights w > 0 on the rows without a count
give N^T A_0^T w = 0, N a basis of the null space of the rows with one. At a fitted point the
residuals r of those rows nearly are such weights (the gradient is small); w = r (1 - B c), with
B = A_0 N and c the r-weighted least-squares fit of ones by B, satisfies B^T w = 0 exactly and
is positive when max(B c) < 1. It costs one least-squares problem in dim(N) unknowns.
(3) Otherwise the linear program decides.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linprog
from scipy.special import expit

from ._history_features import HistoryFeatures
from ._native import core as _core
from ._threads import available_cores
from ._validation import design_for_core, fortran_float64, rows_of

__all__ = [
    "COUNT_FAMILIES", "BINARY_FAMILIES", "NEEDS_PROGRAM", "Undecided", "carrying_features",
    "column_rms", "diagnose", "rates_vanish", "recession_direction", "single_feature_directions",
]  # fmt: skip

_Family = _core.ObservationFamily
#: Families whose MLE fails to exist along directions of recession of the count type.
COUNT_FAMILIES = {_Family.poisson_exp, _Family.poisson_softplus, _Family.negative_binomial_exp}
#: ... and of the separation type.
BINARY_FAMILIES = {_Family.bernoulli_logistic}

#: Rows per block when the design is read in pieces (dense or history features).
_BLOCK_ELEMENTS = 1 << 21
#: ... in the pass over every feature before a fit: its temporaries must stay far below the
#: design's size (a memory-mapped design is never copied whole).
_SCAN_ELEMENTS = 1 << 18
#: A coordinate of a direction (in units of its feature's root mean square) carries the direction
#: when it exceeds this fraction of the largest.
_SUPPORT = 1e-6
#: A converged fit whose lowest rate is below this fraction of the neuron's mean is checked.
_SUSPECT = 1e-3
#: Rows per column of the sample whose rank is tried first (_counted_null_space).
_RANK_SAMPLE = 4
#: A guard against a solver that does not finish: the engine's own verdict then stands.
_LP_SECONDS = 60.0
#: Rows per column the linear program's row generation starts from, and the value of (P z)_i
#: (rows scaled to 1, |z| <= 1) above which a row outside it joins.
_START_ROWS = 4
_ADMIT = 1e-9
#: The largest ratio of two weights in the certificate that no direction exists: 1 / _ROUNDING.
#: Rounding (~1e-13 of a row) can only be balanced by far larger weights; rows that miss zero
#: by 1e-9 .. 1e-6 are real, and the MLE they leave is finite (and its inference flags it as
#: barely identified).
_WEIGHT_RATIO = 1e9
#: Rounds of holding at zero the rows a dual solution misses zero on.
_REPAIRS = 5
#: The first phase's optimum (sum |a|, relative to its right-hand side) that counts as zero.
_FEASIBLE = 1e-9
#: A verified direction keeps |A d| below this, relative to max |A d|, where it must be zero.
#: Along a d that misses by that much the likelihood keeps rising until coefficients of order
#: 1 / _ZERO times their scale: an MLE no float64 fit can tell from one at infinity. It is also
#: well above the linear program's feasibility tolerance (1e-7 on values of order one).
_ZERO = 1e-6
#: Entries of the linear program's matrix (columns scaled to 1) below this are rounding.
_ROUNDING = 1e-9
#: The dual certificate w (1 - B c) is accepted when B c stays below this on every row (below 1
#: is enough in exact arithmetic; the margin absorbs rounding).
_CERTIFICATE_STEP = 0.5


class Undecided(RuntimeError):
    """The linear program could not decide (solver failure): neither answer is proven."""


def _blocks(X: Any, rows: NDArray, active: NDArray):
    """Yield ``(start, [1, X[rows][:, active]])`` in row blocks (the design is never copied whole)."""
    width = active.size + 1
    if isinstance(X, HistoryFeatures):
        for start, block in X.row_blocks(rows, max_elements=_BLOCK_ELEMENTS):
            yield start, np.column_stack([np.ones(block.shape[0]), block[:, active]])
        return
    step = max(1, _BLOCK_ELEMENTS // width)
    for start in range(0, rows.size, step):
        chunk = rows[start : start + step]
        yield start, np.column_stack([np.ones(chunk.size), X[np.ix_(chunk, active)]])


def _product(X: Any, rows: NDArray, active: NDArray, directions: NDArray) -> NDArray:
    """[1, X[rows][:, active]] @ directions, by the engine's batched product."""
    coefs = np.zeros((X.shape[1], directions.shape[1]), order="F")
    coefs[active] = directions[1:]
    offsets = np.ascontiguousarray(directions[0], dtype=np.float64)
    threads = available_cores()
    if isinstance(X, HistoryFeatures):
        out = np.empty((X.shape[0], directions.shape[1]), order="F")
        _core.history_linear_predictor(X.inputs, X.kernels, coefs, offsets, out, threads)
        return out[rows]
    out = np.empty((rows.size, directions.shape[1]), order="F")
    _core.design_multiply(design_for_core(X), rows, coefs, offsets, out, threads)
    return out


def column_rms(X: Any, rows: NDArray, active: NDArray) -> NDArray:
    """Root mean square over ``rows`` of the intercept column and the active features."""
    squares = np.zeros(active.size + 1)
    contiguous = rows.size and rows[-1] - rows[0] + 1 == rows.size
    if contiguous and not isinstance(X, HistoryFeatures):
        view = np.asarray(X)[rows[0] : rows[-1] + 1]
        squares[0] = rows.size
        for start in range(0, active.size, 64):
            columns = view[:, active[start : start + 64]]
            squares[1 + start : 1 + start + columns.shape[1]] = np.einsum(
                "ij,ij->j", columns, columns
            )
    else:
        for _, block in _blocks(X, rows, active):
            squares += np.einsum("ij,ij->j", block, block)
    return np.sqrt(squares / max(rows.size, 1))


def _null_space(gram: NDArray) -> NDArray:
    """Return a basis of the null space of A from its Gram matrix A^T A (the engine's rank rule).

    Columns of A that are zero (a sender silent before every counted row) are basis vectors of
    their own, exactly: mixed by the eigendecomposition with the rest, their directions would
    carry that rest's rounding onto rows where they are exactly zero.
    """
    scale = np.sqrt(np.maximum(np.diag(gram), 0.0))
    used = np.flatnonzero(scale > 0)
    scaled = gram[np.ix_(used, used)] / np.outer(scale[used], scale[used])
    values, vectors = np.linalg.eigh(scaled)
    cutoff = _core.RANK_TOLERANCE * max(values.max(initial=0.0), 0.0)
    null = vectors[:, values <= cutoff] / scale[used, None]  # d = v / scale, in A's coordinates
    unused = np.flatnonzero(scale == 0)
    basis = np.zeros((gram.shape[0], null.shape[1] + unused.size))
    basis[used, : null.shape[1]] = null
    basis[unused, null.shape[1] + np.arange(unused.size)] = 1.0
    return basis


def _counted_null_space(X: Any, counted: NDArray, active: NDArray) -> NDArray:
    """Basis of the null space of [1, X_active] on the rows with a count.

    A subset of those rows of full column rank already proves it empty (rows only add rank):
    a few times as many rows as columns, spread over the recording, usually are, at a fraction
    of the cost of every counted row's Gram matrix.
    """
    width = active.size + 1
    if counted.size > _RANK_SAMPLE * width:
        sample = counted[np.linspace(0, counted.size - 1, _RANK_SAMPLE * width).astype(np.int64)]
        null = _null_space(_weighted_gram(X, np.unique(sample), active))
        if null.shape[1] == 0:
            return null
    null = _null_space(_weighted_gram(X, counted, active))
    return null


def _largest_recession(products: NDArray) -> NDArray | None:
    """Find z with P z <= 0 and P z != 0, or None when there is none.

    By Stiemke's alternative no such z exists exactly when some w > 0 has P^T w = 0 (rows of P
    that are zero aside). The linear program is the first phase of that feasibility problem:
    minimise sum |a| subject to P^T (1 + u) + a = 0, 0 <= u <= _WEIGHT_RATIO. Its optimum is 0
    when no z exists, and otherwise its dual solution is a z with P z <= 0, |z| <= 1 and sum(P z)
    minimal: a direction that drives every row it can below zero at once. The bound on the
    weights is what makes this hold in floating point: rounding leaves rows of P z at +1e-13
    where exactly 0, which weights of 1e13 would balance. ``_phase_one`` solves it through its
    dual, on the few rows that bind.
    """
    # Columns of comparable size help the solver's tolerances; z is rescaled back below.
    column_scale = np.abs(products).max(axis=0)
    column_scale[column_scale == 0] = 1.0
    scaled = products / column_scale
    # Entries within rounding of zero (the null space's basis is exact only to rounding) are
    # zero; rows left empty constrain nothing, and equal rows are one row with a multiplicity.
    scaled[np.abs(scaled) <= _ROUNDING] = 0.0
    scaled = scaled[np.abs(scaled).max(axis=1) > 0]
    if scaled.shape[0] == 0:
        return None
    rows, multiplicity = np.unique(scaled, axis=0, return_counts=True)
    basis = np.eye(rows.shape[1])  # z = basis @ y: the coordinates still free
    for repair in range(_REPAIRS + 1):
        # Unbounded weights first: exact directions, and the usual certificate has moderate
        # weights. Only when its weights are extreme is the bounded program needed.
        z, largest = _phase_one(rows @ basis, multiplicity, bounded=False)
        if z is None and largest > _WEIGHT_RATIO:
            z, _ = _phase_one(rows @ basis, multiplicity, bounded=True)
        if z is None:
            if repair == 0:
                return None
            break  # no direction holds those rows at zero; one may still drive them negative
        values = rows @ (basis @ z)
        size = np.abs(values).max()
        if not np.isfinite(size):
            break
        violated = values > _ZERO * size
        if not violated.any():
            return basis @ z / column_scale
        # The weights' bound lets rows miss zero slightly where that buys a larger objective:
        # hold those rows at zero and solve again in what is left.
        _, singular, right = np.linalg.svd(rows[violated] @ basis, full_matrices=True)
        rank = int(np.sum(singular > _ROUNDING * singular.max(initial=0.0)))
        basis = basis @ right[rank:].T
        if basis.shape[1] == 0:
            break
    raise Undecided("the linear program found no exact direction of recession")


def _phase_one(rows: NDArray, multiplicity: NDArray, bounded: bool) -> tuple[NDArray | None, float]:
    """Solve the first phase of Stiemke's feasibility problem (see _largest_recession).

    Returns ``(z, largest weight)``: z is None when the weights exist (then ``largest`` is their
    largest, relative to the smallest, 1), else the direction.

    Solved through its dual: minimise sum_i m_i (P z)_i subject to (P z)_i <= s_i and |z| <= 1,
    with s = 0, or s >= 0 at a cost of ``_WEIGHT_RATIO`` each when the weights are bounded. The
    optimum is minus the first phase's, the rows' multipliers are its weights u and z is the
    direction. Few rows bind at the optimum, so the program is solved on some rows and its
    solution is the whole program's as soon as it violates no other row; the violated rows join
    and it is solved again (row generation: a few rounds on a fraction of the rows, where one
    program on every row costs seconds).
    """
    n_rows, width = rows.shape
    cost = rows.T @ multiplicity.astype(np.float64)
    # A start: the rows that moving against the objective's gradient violates most, and a
    # spread of the others.
    first = min(n_rows, _START_ROWS * width)
    working = np.union1d(
        np.argsort(rows @ cost)[: first // 2 + 1],
        np.linspace(0, n_rows - 1, first // 2 + 1).astype(np.int64),
    )
    deadline = time.monotonic() + _LP_SECONDS
    while True:
        result = _restricted_phase_one(rows[working], cost, bounded, deadline - time.monotonic())
        z = result.x[:width]
        values = rows @ z
        outside = np.ones(n_rows, dtype=bool)
        outside[working] = False
        violated = np.flatnonzero(outside & (values > _ADMIT))
        if violated.size == 0:
            break
        if working.size + violated.size > n_rows // 2:
            violated = np.flatnonzero(outside)  # generation does not pay: every row
        working = np.union1d(working, violated)
    if -result.fun <= _FEASIBLE * max(1.0, np.abs(cost).max()):
        weights = -np.asarray(result.ineqlin.marginals, dtype=np.float64)
        return None, 1.0 + float(weights.max(initial=0.0))
    return np.asarray(z, dtype=np.float64), np.inf


def _restricted_phase_one(rows: NDArray, cost: NDArray, bounded: bool, seconds: float) -> Any:
    """Solve the dual program of ``_phase_one`` on some rows; return scipy's result."""
    n_rows, width = rows.shape
    if seconds <= 0:
        raise Undecided("the linear program ran out of time")
    if bounded:
        objective = np.concatenate([cost, np.full(n_rows, _WEIGHT_RATIO)])
        matrix = sparse.hstack([sparse.csr_matrix(rows), -sparse.identity(n_rows)], format="csr")
        bounds = [(-1.0, 1.0)] * width + [(0.0, None)] * n_rows
    else:
        objective, matrix, bounds = cost, rows, [(-1.0, 1.0)] * width
    result = linprog(
        objective, A_ub=matrix, b_ub=np.zeros(n_rows), bounds=bounds, method="highs-ds",
        options={"time_limit": seconds},
    )  # fmt: skip
    if result.status != 0 or result.x is None:
        raise Undecided(f"the linear program stopped: {result.message}")
    return result


def recession_direction(
    X: Any, y: NDArray, rows: NDArray, active: NDArray, family: Any, null: NDArray | None = None
) -> NDArray | None:
    """Return a direction of recession of one neuron's likelihood, or None when its MLE exists.

    Parameters
    ----------
    X : ndarray or HistoryFeatures, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,)
        The neuron's responses.
    rows : ndarray of int
        The fitted rows.
    active : ndarray of int
        The features the neuron uses.
    family : _core.ObservationFamily
    null : ndarray, optional
        For counts, the null space of the rows with a count, when already known.

    Returns
    -------
    ndarray of shape (1 + active.size,) or None
        ``d`` in the coordinates (intercept, active features), verified on every row.
    """
    y_rows = np.asarray(y)[rows]
    if family in COUNT_FAMILIES:
        spikes = rows[y_rows > 0]
        silent = rows[y_rows == 0]
        if null is None:
            null = (
                _counted_null_space(X, spikes, active) if spikes.size else np.eye(active.size + 1)
            )
        if null.shape[1] == 0 or silent.size == 0:
            return None
        z = _largest_recession(_product(X, silent, active, null))
        if z is None:
            return None
        direction = null @ z
        signs = np.ones(rows.size)
    elif family in BINARY_FAMILIES:
        signs = np.where(y_rows > 0, -1.0, 1.0)
        products = _product(X, rows, active, np.eye(active.size + 1)) * signs[:, None]
        z = _largest_recession(products)
        if z is None:
            return None
        direction = z
    else:
        return None
    return direction if _verified(X, rows, active, direction, y_rows, signs, family) else None


def _verified(
    X: Any, rows: NDArray, active: NDArray, direction: NDArray, y_rows: NDArray,
    signs: NDArray, family: Any,
) -> bool:  # fmt: skip
    """Check the direction's defining conditions on every fitted row, in float64."""
    values = _product(X, rows, active, direction[:, None])[:, 0] * signs
    size = np.abs(values).max(initial=0.0)
    if not size > 0:
        return False
    bound = _ZERO * size
    if family in COUNT_FAMILIES and np.abs(values[y_rows > 0]).max(initial=0.0) > bound:
        return False
    return bool(values.max() <= bound)


def carrying_features(direction: NDArray, X: Any, rows: NDArray, active: NDArray) -> NDArray:
    """Positions in (intercept, active) whose coordinate carries ``direction``.

    Coordinates are compared in units of their column's root mean square over ``rows``, so the
    choice does not depend on the features' scales.
    """
    weight = np.abs(direction) * column_rms(X, rows, active)
    return np.flatnonzero(weight > _SUPPORT * weight.max(initial=0.0))


def _residuals(eta: NDArray, y: NDArray, family: Any, scale: float) -> NDArray:
    """Return the derivative of the loss in eta per row (the engine's ``first``, families/).

    Only its signs matter for the certificate's validity (positive where y = 0, negative where a
    binary y = 1); being the true gradient makes the certificate tight at an optimum.
    """
    if family == _Family.poisson_exp:
        return np.exp(eta) - y
    if family == _Family.poisson_softplus:
        mean = np.logaddexp(0.0, eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(y > 0, y / mean, 0.0)
        return expit(eta) * (1.0 - ratio)
    if family == _Family.negative_binomial_exp:
        return (y + 1.0 / scale) * expit(eta + np.log(scale)) - y
    return expit(eta) - y


def single_feature_directions(
    X: Any, counts: NDArray, rows: NDArray, free: NDArray, family: Any, n_threads: int | None = None
) -> NDArray:
    """Which features are a direction of recession by themselves, for every neuron at once.

    Counts: the column is zero on every row where the neuron has a count and keeps one sign on
    the others (a rare sender whose spikes never precede the receiver's, or a refractory
    self-history basis function). Binary: the column separates, >= 0 where y = 1 and <= 0 where
    y = 0, or the reverse. Zero means a root sum of squares over those rows within ``_ZERO`` of
    the column's largest magnitude (so that every row is, as ``_verified`` asks).

    Parameters
    ----------
    X : ndarray or HistoryFeatures, shape (n_samples, n_features)
    counts : ndarray, shape (n_samples, n_neurons)
    rows : ndarray of int
        The fitted rows.
    free : ndarray of bool, shape (n_features, n_neurons)
        The features each neuron may lose (used and unpenalised).
    family : _core.ObservationFamily
    n_threads : int, optional
        The fit's thread count (None: every available core).

    Returns
    -------
    ndarray of bool, shape (n_features, n_neurons)
        False for neurons with one response value on ``rows`` (only their intercept recedes).

    Notes
    -----
    One pass over the design (the engine's scan, ``_core.counted_square_sums``, visiting each
    row's counted neurons only). On the other rows a count column's sign is its column's (its
    counted rows being zero); binary data needs sums on both sides (row blocks and matrix
    products).
    """
    n_features, n_neurons = free.shape
    binary = family in BINARY_FAMILIES
    if binary:
        sums, low, high = _signed_square_sums(X, counts, rows, n_neurons)
    else:
        threads = available_cores() if n_threads is None else n_threads
        sums, low, high = _counted_square_sums(X, counts, rows, n_neurons, threads)
    size = np.maximum(-low, high)
    zero = ((_ZERO * size) ** 2)[:, None]  # compared with sums of squares
    if binary:
        counted_positive, other_positive, counted_negative, other_negative = np.split(sums, 4, 1)
        up = (counted_negative <= zero) & (other_positive <= zero)
        down = (counted_positive <= zero) & (other_negative <= zero)
        hits = (up | down) & (size > 0)[:, None]
    else:
        margin = _ZERO * size
        kept = ((low >= -margin) | (high <= margin)) & (size > 0)
        hits = (sums <= zero) & kept[:, None]
    values = rows_of(counts, rows)
    one_value = values.min(axis=0) == values.max(axis=0)
    hits[:, one_value] = False
    return hits & free


def _counted_square_sums(
    X: Any, counts: NDArray, rows: NDArray, n_neurons: int, threads: int
) -> tuple[NDArray, NDArray, NDArray]:
    """Per feature and neuron, the sum of squares over the rows with a count; column extremes."""
    n_features = X.shape[1]
    sums = np.zeros((n_features, n_neurons), order="F")
    low, high = np.zeros(n_features), np.zeros(n_features)
    if not isinstance(X, HistoryFeatures):
        _core.counted_square_sums(
            design_for_core(X), rows, fortran_float64(counts), sums, low, high, threads
        )
        return sums, low, high
    part = np.zeros_like(sums)
    part_low, part_high = np.zeros(n_features), np.zeros(n_features)
    for start, block in _feature_blocks(X, rows):
        chunk = rows[start : start + block.shape[0]]
        local = np.arange(chunk.size, dtype=np.int64)
        _core.counted_square_sums(
            block, local, fortran_float64(counts[chunk]), part, part_low, part_high, threads
        )
        sums += part
        low, high = np.minimum(low, part_low), np.maximum(high, part_high)
    return sums, low, high


def _signed_square_sums(
    X: Any, counts: NDArray, rows: NDArray, n_neurons: int
) -> tuple[NDArray, NDArray, NDArray]:
    """Binary responses: per feature and neuron, sums of squares of the signed parts; extremes.

    Columns: positive parts where y = 1, then where y = 0; negative parts alike.
    """
    n_features = X.shape[1]
    sums = np.zeros((n_features, 4 * n_neurons))
    low, high = np.zeros(n_features), np.zeros(n_features)
    for start, block in _feature_blocks(X, rows):
        hit = rows_of(counts, rows[start : start + block.shape[0]]) > 0
        low = np.minimum(low, block.min(axis=0))
        high = np.maximum(high, block.max(axis=0))
        sides = np.hstack([hit, ~hit]).astype(np.float64)
        sums[:, : 2 * n_neurons] += np.square(np.maximum(block, 0.0)).T @ sides
        sums[:, 2 * n_neurons :] += np.square(np.minimum(block, 0.0)).T @ sides
    return sums, low, high


def _feature_blocks(X: Any, rows: NDArray):
    """Yield ``(start, X[rows[start:start + len(block)]])`` in row blocks of every feature."""
    if isinstance(X, HistoryFeatures):
        yield from X.row_blocks(rows, max_elements=_SCAN_ELEMENTS)
        return
    step = max(1, _SCAN_ELEMENTS // max(X.shape[1], 1))
    for start in range(0, rows.size, step):
        yield start, rows_of(X, rows[start : start + step])


def _weighted_gram(
    X: Any, rows: NDArray, active: NDArray, weights: NDArray | None = None
) -> NDArray:
    """[1, X_active]^T diag(weights) [1, X_active] over ``rows`` (weights 1 when None)."""
    if weights is None:
        weights = np.ones(rows.size)
    if isinstance(X, HistoryFeatures):
        gram = np.zeros((active.size + 1, active.size + 1))
        for start, block in _blocks(X, rows, active):
            gram += block.T @ (block * weights[start : start + block.shape[0], None])
        return gram
    full = _core.weighted_gram(design_for_core(X), rows, np.ascontiguousarray(weights), False)
    keep = np.concatenate([[0], active + 1])
    return full[np.ix_(keep, keep)]


def _gradient(X: Any, rows: NDArray, active: NDArray, residuals: NDArray) -> NDArray:
    """[1, X_active]^T residuals over ``rows`` (a sum)."""
    if isinstance(X, HistoryFeatures):
        gradient = np.zeros(active.size + 1)
        for start, block in _blocks(X, rows, active):
            gradient += block.T @ residuals[start : start + block.shape[0]]
        return gradient
    # The engine's batched gradient product (a mean over the rows), on one column.
    mean = _core.design_transpose_multiply(
        design_for_core(X), rows, np.asfortranarray(residuals[:, None]), available_cores()
    )
    return np.asarray(mean)[np.concatenate([[0], active + 1]), 0] * rows.size


def _certified(
    X: Any, y_rows: NDArray, rows: NDArray, active: NDArray, family: Any, scale: float,
    point: NDArray, null: NDArray,
) -> bool:  # fmt: skip
    """Stiemke's certificate that no direction of recession exists, built at ``point``.

    ``point`` is (intercept, coefficients of active), ``null`` spans the directions allowed on the
    rows with a count (the identity for binary data). See the module docstring: with B the rows
    without a count times ``null`` (binary: every row, signed) and w their residuals at the
    point, w' = w (1 - B c) with c the weighted least-squares fit of ones by B has B^T w' = 0
    exactly; w' > 0 is the certificate. Only the rows whose weight is within a cut-off of the
    largest take part: where B has full column rank on them, no z != 0 has B z <= 0 on them, so
    none has it on every row. This keeps the least squares well conditioned when the fit drives
    some rates to 1e-60 (a finite MLE far out, which the full weights would hide).
    """
    eta = _product(X, rows, active, point[:, None])[:, 0]
    residuals = _residuals(eta, y_rows, family, scale)
    if family in BINARY_FAMILIES:
        free = np.ones(rows.size, dtype=bool)
        signs = np.where(y_rows > 0, -1.0, 1.0)
    else:
        free = y_rows == 0
        signs = np.ones(rows.size)
    weights = residuals[free] * signs[free]
    # Rates that underflow to zero only leave their rows out of every cut-off below.
    if not (weights.size and np.all(np.isfinite(weights)) and weights.min() >= 0 < weights.max()):
        return False
    # Columns in units of their largest value on every such row, and what rounding leaves of a
    # zero set to zero, as in the linear program: a column that vanishes on the kept rows must
    # not be scaled back up there.
    products = _product(X, rows[free], active, null) * signs[free][:, None]
    size = np.abs(products).max(axis=0)
    if not np.all(size > 0):
        return False
    products /= size
    products[np.abs(products) <= _ROUNDING] = 0.0
    # Cut-offs from _WEIGHT_RATIO down: the fewer rows, the smaller the imbalance the dropped
    # rows leave, but the more likely a direction only they constrain.
    for cut in (_WEIGHT_RATIO, _WEIGHT_RATIO ** (2 / 3), _WEIGHT_RATIO ** (1 / 3)):
        kept = weights >= weights.max() / cut
        if _balanced(products[kept], weights[kept], null.shape[1]):
            return True
    return False


def _balanced(products: NDArray, weights: NDArray, width: int) -> bool:
    """Whether weights (1 - B c) > 0, c the weighted least-squares fit of ones by B, certify."""
    root = np.sqrt(weights)
    fit, _, rank, _ = np.linalg.lstsq(products * root[:, None], root, rcond=_ROUNDING)
    if rank < width:
        return False  # these rows leave a direction free: not certified by them
    fitted = products @ fit
    certificate = weights * (1.0 - fitted)
    balance = np.abs(products.T @ certificate).max(initial=0.0)
    if not balance <= _FEASIBLE * (np.abs(products).T @ np.abs(certificate)).max(initial=0.0):
        return False
    return bool(fitted.max(initial=0.0) < _CERTIFICATE_STEP)


#: What ``diagnose`` returns when only its linear program could decide and it was not to run.
NEEDS_PROGRAM = "needs the linear program"


def diagnose(
    X: Any, y: NDArray, rows: NDArray, active: NDArray, family: Any, scale: float = 1.0,
    point: NDArray | None = None, program: bool = True, singles: bool = True,
) -> NDArray | None | str:  # fmt: skip
    """Return the features to remove for a neuron whose MLE does not exist, or None when it does.

    Parameters
    ----------
    X, y, rows, active, family
        As for :func:`recession_direction`.
    scale : float
        The observation model's scale (negative binomial dispersion).
    point : ndarray of shape (1 + active.size,), optional
        A fit of this neuron on ``active`` (intercept first): enables the dual certificate.
    program : bool
        Run the linear program when the cheaper steps cannot decide; otherwise return
        ``NEEDS_PROGRAM`` (a fit to a better point may let the certificate decide instead).
    singles : bool
        Look for features that are a direction by themselves (False when
        :func:`single_feature_directions` already removed them).

    Returns
    -------
    ndarray of int or None
        Positions in ``active`` that carry a direction of recession (every single-feature
        direction at once, or the support of the linear program's direction).
    """
    y_rows = np.asarray(y)[rows]
    if family in COUNT_FAMILIES:
        spikes = rows[y_rows > 0]
        null = _counted_null_space(X, spikes, active)
        if null.shape[1] == 0:
            return None
    elif family in BINARY_FAMILIES:
        null = np.eye(active.size + 1)
    else:
        return None
    if singles:
        free = np.zeros((X.shape[1], 1), dtype=bool)
        free[active] = True
        hits = single_feature_directions(X, np.asarray(y)[:, None], rows, free, family)[active, 0]
        if hits.any():
            return np.flatnonzero(hits)
    if point is not None and _certified(X, y_rows, rows, active, family, scale, point, null):
        return None
    if not program:
        return NEEDS_PROGRAM
    direction = recession_direction(
        X, y, rows, active, family, null if family in COUNT_FAMILIES else None
    )
    if direction is None:
        return None
    carried = carrying_features(direction, X, rows, active)
    features = carried[carried > 0] - 1
    if features.size == 0:
        # Two kinds of counts leave the intercept alone no room to recede: what the support rule
        # left out is rounding, and every feature the direction moves carries it.
        features = np.flatnonzero(direction[1:] != 0)
    return features


def rates_vanish(
    X: Any, rows: NDArray, mean: NDArray, coef: NDArray, intercept: NDArray, family: Any
) -> NDArray:
    """Tell which fitted neurons drive some row's mean response towards the edge of its range.

    ``mean`` is each neuron's mean response on ``rows``. A neuron without an MLE that still
    reached the gradient tolerance did so along a direction of recession, where the rates of the receding rows vanish: below _SUSPECT times the neuron's mean
    (for binary data, its probabilities approach 0 or 1 alike). Such converged neurons are the
    ones worth a certificate; a fit whose rates all stay near the data's does not recede.
    """
    directions = np.vstack([intercept, coef])
    lowest = np.full(intercept.size, np.inf)
    step = max(1, _BLOCK_ELEMENTS // max(intercept.size, 1))
    if isinstance(X, HistoryFeatures):
        step = max(rows.size, 1)  # its product covers every row at once anyway
    for start in range(0, rows.size, step):  # row blocks: no (rows x neurons) matrix
        eta = _product(X, rows[start : start + step], np.arange(X.shape[1]), directions)
        if family in BINARY_FAMILIES:
            eta = -np.abs(eta)
        lowest = np.minimum(lowest, eta.min(axis=0))
    if family in BINARY_FAMILIES:
        return expit(lowest) < _SUSPECT * np.minimum(mean, 1.0 - mean)
    if family == _Family.poisson_softplus:
        return np.logaddexp(0.0, lowest) < _SUSPECT * mean
    return np.exp(lowest) < _SUSPECT * mean
