"""The spline families (M-, B- and cyclic B-splines), as NeMoS builds them.

Each family is written once; its evaluation (``*Eval``) and convolution (``*Conv``) classes add
the mode by a mixin (``_EvalBasis``, ``_ConvBasis``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import check_positive_int
from . import _functions as F
from ._conv import _ConvBasis
from ._eval import _EvalBasis

__all__ = [
    "BSplineConv",
    "BSplineEval",
    "CyclicBSplineConv",
    "CyclicBSplineEval",
    "MSplineConv",
    "MSplineEval",
]


def _check_order(order: int, n_basis_funcs: int, cls: str, minimum: int = 1) -> int:
    if isinstance(order, bool) or not float(order).is_integer():
        raise ValueError(f"order must be an integer, got {order!r}")
    order = int(order)
    if order < minimum:
        raise ValueError(f"order must be >= {minimum} for {cls}, got {order}")
    if n_basis_funcs < order:
        raise ValueError(
            f"n_basis_funcs must be >= order for {cls}: got n_basis_funcs={n_basis_funcs} with "
            f"order={order} (the `order` parameter cannot be larger than `n_basis_funcs`)"
        )
    return order


class MSpline:
    """M-splines: each element integrates to 1 over the rescaled interval (NeMoS's ``MSplineBasis``)."""

    _minimum_order = 1

    def _set_family(self, n_basis_funcs: int, order: int) -> int:
        n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
        self.order = _check_order(order, n_basis_funcs, type(self).__name__, self._minimum_order)
        return n_basis_funcs

    def _evaluate(self, points: NDArray) -> NDArray:
        scaled, scaling = self._unit_points(points)
        return F.mspline(scaled, self.n_basis_funcs, self.order) / np.asarray(scaling)[..., None]


class BSpline(MSpline):
    """B-splines on open uniform knots (NeMoS's ``BSplineBasis``)."""

    def _evaluate(self, points: NDArray) -> NDArray:
        scaled, _ = self._unit_points(points)
        return F.bspline(scaled, self.n_basis_funcs, self.order)


class CyclicBSpline(MSpline):
    """Periodic B-splines, e.g. for angles (NeMoS's ``CyclicBSplineBasis``)."""

    _minimum_order = 2

    def _evaluate(self, points: NDArray) -> NDArray:
        scaled, _ = self._unit_points(points)
        return F.cyclic_bspline(scaled, self.n_basis_funcs, self.order)


class MSplineEval(MSpline, _EvalBasis):
    """M-spline basis (each element integrates to 1 over the bounds), as NeMoS builds it.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= order).
    order : int
        Spline order (degree + 1), >= 1; default 4 (cubic).
    bounds : tuple of float, optional
        ``(lower, upper)`` mapped to [0, 1]; default: the input's min and max.
    fill_value : float
        Features of samples outside ``bounds`` (default NaN).
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.integrate import trapezoid
    >>> import popglm as nmo
    >>> x, values = nmo.basis.MSplineEval(5, bounds=(0, 2)).evaluate_on_grid(2001)
    >>> np.round(trapezoid(values, x, axis=0), 3)
    array([1., 1., 1., 1., 1.])
    """

    def __init__(
        self,
        n_basis_funcs: int,
        order: int = 4,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = self._set_family(n_basis_funcs, order)
        _EvalBasis.__init__(self, label, bounds, fill_value)


class MSplineConv(MSpline, _ConvBasis):
    """M-spline filters (each integrates to 1 over the window), as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= order).
    window_size : int
        Convolution window in samples.
    order : int
        Spline order (degree + 1), >= 1; default 4 (cubic).
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

    Examples
    --------
    >>> import popglm as nmo
    >>> nmo.basis.MSplineConv(6, window_size=30).kernel_.shape
    (30, 6)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        order: int = 4,
        label: str | None = None,
        conv_kwargs: dict | None = None,
    ) -> None:
        n_basis_funcs = self._set_family(n_basis_funcs, order)
        _ConvBasis.__init__(self, n_basis_funcs, window_size, label, conv_kwargs)


class BSplineEval(BSpline, _EvalBasis):
    """B-spline basis on open uniform knots, as NeMoS builds it.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= order).
    order : int
        Spline order (degree + 1), >= 1; default 4 (cubic).
    bounds : tuple of float, optional
        ``(lower, upper)`` mapped to [0, 1]; default: the input's min and max.
    fill_value : float
        Features of samples outside ``bounds`` (default NaN).
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> values = nmo.basis.BSplineEval(6).compute_features(np.linspace(-1, 1, 11))
    >>> np.allclose(values.sum(axis=1), 1.0)
    True
    """

    def __init__(
        self,
        n_basis_funcs: int,
        order: int = 4,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = self._set_family(n_basis_funcs, order)
        _EvalBasis.__init__(self, label, bounds, fill_value)


class BSplineConv(BSpline, _ConvBasis):
    """B-spline filters on open uniform knots, as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= order).
    window_size : int
        Convolution window in samples.
    order : int
        Spline order (degree + 1), >= 1; default 4 (cubic).
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

    Examples
    --------
    >>> import popglm as nmo
    >>> nmo.basis.BSplineConv(5, window_size=12).kernel_.shape
    (12, 5)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        order: int = 4,
        label: str | None = None,
        conv_kwargs: dict | None = None,
    ) -> None:
        n_basis_funcs = self._set_family(n_basis_funcs, order)
        _ConvBasis.__init__(self, n_basis_funcs, window_size, label, conv_kwargs)


class CyclicBSplineEval(CyclicBSpline, _EvalBasis):
    """Periodic B-spline basis (e.g. for angles), as NeMoS builds it.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= order).
    order : int
        Spline order (degree + 1), >= 2; default 4 (cubic).
    bounds : tuple of float, optional
        ``(lower, upper)`` mapped to [0, 1], e.g. ``(0, 2 * np.pi)`` for an angle; default:
        the input's min and max.
    fill_value : float
        Features of samples outside ``bounds`` (default NaN).
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.CyclicBSplineEval(8, bounds=(0, 2 * np.pi))
    >>> values = basis.compute_features(np.array([0.0, 2 * np.pi]))
    >>> np.allclose(values[0], values[1])
    True
    """

    def __init__(
        self,
        n_basis_funcs: int,
        order: int = 4,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = self._set_family(n_basis_funcs, order)
        _EvalBasis.__init__(self, label, bounds, fill_value)


class CyclicBSplineConv(CyclicBSpline, _ConvBasis):
    """Periodic B-spline filters, as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= order).
    window_size : int
        Convolution window in samples.
    order : int
        Spline order (degree + 1), >= 2; default 4 (cubic).
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

    Examples
    --------
    >>> import popglm as nmo
    >>> nmo.basis.CyclicBSplineConv(5, window_size=12).kernel_.shape
    (12, 5)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        order: int = 4,
        label: str | None = None,
        conv_kwargs: dict | None = None,
    ) -> None:
        n_basis_funcs = self._set_family(n_basis_funcs, order)
        _ConvBasis.__init__(self, n_basis_funcs, window_size, label, conv_kwargs)
