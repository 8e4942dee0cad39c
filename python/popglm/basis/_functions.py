"""The basis functions themselves, in float64 NumPy, with NeMoS's definitions.

Every function takes sample points of any shape ``(n_samples, ...)`` and returns
``(n_samples, ..., n_basis_funcs)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
from numpy.typing import NDArray
from scipy.interpolate import splev

_EPS = np.finfo(float).eps


def rescale(points: NDArray, bounds: tuple[float, float] | None) -> tuple[NDArray, NDArray]:
    """Map ``bounds`` (default: the per-column nanmin and nanmax) to [0, 1].

    Returns the rescaled points and the scaling ``upper - lower`` (1 where it is 0).
    """
    points = np.asarray(points, dtype=np.float64)
    if bounds is None:
        with warnings.catch_warnings():
            # An all-NaN column has NaN bounds, hence NaN features, as in NeMoS.
            warnings.simplefilter("ignore", RuntimeWarning)
            lower = np.nanmin(points, axis=0)
            upper = np.nanmax(points, axis=0)
    else:
        lower, upper = bounds
    scaling = np.asarray(upper - lower, dtype=np.float64)
    scaling = np.where(scaling == 0, 1.0, scaling)
    return (points - lower) / scaling, scaling


def raised_cosine(points01: NDArray, peaks: NDArray, width: float) -> NDArray:
    """Evaluate raised cosine bumps centred on ``peaks``, ``width`` peak spacings wide."""
    spacing = peaks[1] - peaks[0]
    flat = points01.reshape(-1)
    phase = np.pi * (flat[:, None] - peaks[None, :]) / (spacing * width)
    values = 0.5 * (np.cos(np.clip(phase, -np.pi, np.pi)) + 1.0)
    return values.reshape(*points01.shape, peaks.size)


def log_stretch(points01: NDArray, time_scaling: float) -> NDArray:
    """Apply the log time warp of the log-spaced raised cosines."""
    return np.log(time_scaling * points01 + 1.0) / np.log(time_scaling + 1.0)


def log_peaks(n_basis_funcs: int, width: float, enforce_decay_to_zero: bool) -> NDArray:
    """Peaks of the log-spaced raised cosines (the last one early enough to decay to 0)."""
    last = 1.0 - width / (n_basis_funcs + width - 1.0) if enforce_decay_to_zero else 1.0
    return np.linspace(0.0, last, n_basis_funcs)


def spline_knots(n_basis_funcs: int, order: int, cyclic: bool = False) -> NDArray:
    """Open uniform knots on [0, 1 + eps]; the eps keeps the last point inside the support."""
    n_interior = n_basis_funcs - order + (order - 1 if cyclic else 0)
    return np.concatenate(
        (
            np.zeros(order - 1),
            np.linspace(0.0, 1.0 + _EPS, n_interior + 2),
            np.full(order - 1, 1.0 + _EPS),
        )
    )


def _mspline_element(x: NDArray, order: int, i: int, knots: NDArray) -> NDArray:
    # M-splines integrate to 1: the Curry-Schoenberg recursion.
    if knots[i + order] - knots[i] < 1e-6:
        return np.zeros_like(x)
    if order == 1:
        inside = (x >= knots[i]) & (x < knots[i + 1])
        return np.where(inside, 1.0 / (knots[i + 1] - knots[i]), 0.0)
    left = (x - knots[i]) * _mspline_element(x, order - 1, i, knots)
    right = (knots[i + order] - x) * _mspline_element(x, order - 1, i + 1, knots)
    return order * (left + right) / ((order - 1) * (knots[i + order] - knots[i]))


def mspline(points01: NDArray, n_basis_funcs: int, order: int) -> NDArray:
    """M-spline basis (each element integrates to 1 on [0, 1])."""
    knots = spline_knots(n_basis_funcs, order)
    flat = points01.reshape(-1)
    values = np.stack(
        [_mspline_element(flat, order, i, knots) for i in range(n_basis_funcs)], axis=1
    )
    return values.reshape(*points01.shape, n_basis_funcs)


def _bspline_on_knots(points: NDArray, knots: NDArray, order: int) -> NDArray:
    """B-spline elements on ``knots`` evaluated by FITPACK; NaN outside the knot range."""
    knots = np.sort(knots)
    n_knots = knots.size
    outside = bool(np.any(points < knots[order - 1]) or np.any(points > knots[n_knots - order]))
    inside = (points >= knots[0]) & (points <= knots[-1])
    pad = order - 1 if outside else 0
    if pad:
        # Repeated end knots let FITPACK evaluate points beyond the interior range.
        knots = np.concatenate((np.full(pad, knots[0]), knots, np.full(pad, knots[-1])))
    n_elements = knots.size - order
    out = np.full((n_elements - 2 * pad, points.size), np.nan)
    for i in range(pad, n_elements - pad):
        coefficients = np.zeros(knots.size)
        coefficients[i] = 1.0
        out[i - pad, inside] = splev(points[inside], (knots, coefficients, order - 1))
    return out.T


def bspline(points01: NDArray, n_basis_funcs: int, order: int) -> NDArray:
    """B-spline basis on open uniform knots; NaN outside [0, 1 + eps]."""
    flat = points01.reshape(-1)
    values = _bspline_on_knots(flat, spline_knots(n_basis_funcs, order), order)
    return values.reshape(*points01.shape, values.shape[1])


def cyclic_bspline(points01: NDArray, n_basis_funcs: int, order: int) -> NDArray:
    """Periodic B-spline basis on [0, 1]: the elements wrap around the end of the domain."""
    base = np.unique(spline_knots(n_basis_funcs, order, cyclic=True))
    n_base = base.size
    wrap_start = base[n_base - order]
    knots = np.concatenate((base[0] - base[-1] + base[n_base - order : n_base - 1], base))
    flat = points01.reshape(-1).copy()
    values = _bspline_on_knots(flat, knots, order)
    late = flat > wrap_start
    if late.any():
        # Points past the start of the wrapped elements also feel them from the left.
        shifted = flat[late] - knots.max() + base[0]
        values[late] = values[late] + _bspline_on_knots(shifted, knots, order)
    return values.reshape(*points01.shape, values.shape[1])


def orth_exponential(points01: NDArray, decay_rates: NDArray) -> NDArray:
    """Orthonormalised decaying exponentials, one set per input column.

    Each column's exponentials ``exp(-rate * x)`` are orthonormalised on its non-NaN points
    by ``scipy.linalg.orth``; NaN rows stay NaN.
    """
    shape = points01.shape
    columns = points01.reshape(shape[0], -1)
    blocks = []
    for column in columns.T:
        valid = ~np.isnan(column)
        exponentials = np.exp(-decay_rates[None, :] * column[valid, None])
        rank = np.linalg.matrix_rank(exponentials)
        block = np.full((column.size, rank), np.nan)
        block[valid] = scipy.linalg.orth(exponentials)
        blocks.append(block)
    width = max(block.shape[1] for block in blocks)
    out = np.full((shape[0], len(blocks), width), np.nan)
    for i, block in enumerate(blocks):
        out[:, i, : block.shape[1]] = block
    return out.reshape(*shape, width)
