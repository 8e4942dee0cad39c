"""Input checks, done once in Python before any array reaches the C++ core."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._memory import check_allocation

__all__ = [
    "as_numeric_array",
    "check_positive_int",
    "design_for_core",
    "fortran_float64",
    "rows_of",
]


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def as_numeric_array(x: ArrayLike, name: str) -> NDArray:
    """Convert to a real numeric NumPy array (bool, int, uint or float), without copying if possible."""
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array, could not convert: {error}") from None
    if array.dtype.kind not in "biuf":
        if array.dtype.kind == "O":
            try:
                return np.asarray(array, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        raise TypeError(
            f"{name} must be a real numeric array (bool, int or float), got dtype {array.dtype}"
        )
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        # Extended precision (longdouble): float64 is what every computation here uses, and a
        # longdouble array would otherwise leak into results or reach the core unconverted.
        return array.astype(np.float64)
    return array


def design_for_core(x: NDArray, name: str = "X") -> NDArray:
    """Return a float64 2-D array the core can read in place: F- or C-contiguous, aligned.

    A float64 array that is already contiguous in either order is passed through, so a
    large design matrix is never copied; anything else is converted once to Fortran order.
    Misaligned buffers (NumPy allows them, e.g. arrays unpickled from a network frame, as Dask
    workers receive them) are copied: reading a double at a misaligned address is undefined
    behaviour in C++ (found by UndefinedBehaviorSanitizer).
    """
    if x.dtype == np.float64 and (x.flags.f_contiguous or x.flags.c_contiguous) and x.flags.aligned:
        return x
    return fortran_float64(x, name)


def copy_bytes(x: NDArray, any_order: bool) -> float:
    """Bytes ``design_for_core`` (``any_order``) or ``fortran_float64`` would copy ``x`` into."""
    layout = x.flags.f_contiguous or (any_order and x.flags.c_contiguous)
    return 0.0 if x.dtype == np.float64 and layout and x.flags.aligned else 8.0 * x.size


def fortran_float64(x: ArrayLike, name: str = "an input") -> NDArray:
    """Return ``x`` as an aligned, Fortran-ordered float64 array, copying only if needed.

    The copy's size is checked first (``check_allocation``): a broadcast or integer array of
    10**9 rows is refused at once, naming ``name``.
    """
    array = np.asarray(x)
    if not (array.dtype == np.float64 and array.flags.f_contiguous and array.flags.aligned):
        check_allocation(
            8.0 * array.size, f"a float64 copy of {name} (shape {array.shape}, dtype {array.dtype})"
        )
    return np.require(array, dtype=np.float64, requirements=["F", "A"])


def rows_of(array: NDArray, rows: NDArray) -> NDArray:
    """Return array[rows] for increasing ``rows`` (a view when they are one contiguous range)."""
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        return array[rows[0] : rows[-1] + 1]
    return array[rows]
