"""The orthonormalised-exponential family, written once, as NeMoS builds it.

Its evaluation (``OrthExponentialEval``) and convolution (``OrthExponentialConv``) classes add
the mode by a mixin (``_EvalBasis``, ``_ConvBasis``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_positive_int
from . import _functions as F
from ._conv import _ConvBasis
from ._eval import _EvalBasis

__all__ = ["OrthExponentialConv", "OrthExponentialEval"]


def _check_decay_rates(decay_rates: ArrayLike, n_basis_funcs: int) -> NDArray:
    rates = np.asarray(decay_rates, dtype=np.float64).reshape(-1)
    if rates.size != n_basis_funcs:
        raise ValueError(
            f"decay_rates must have one rate per basis function: shape ({n_basis_funcs},), got "
            f"{rates.size} rates"
        )
    if np.unique(rates).size != rates.size:
        raise ValueError(
            "decay_rates must be distinct: repeated rates make linearly dependent functions"
        )
    if not np.isfinite(rates).all():
        raise ValueError("decay_rates must be finite")
    return rates


class OrthExponential:
    """Decaying exponentials, orthonormalised over the samples (NeMoS's ``OrthExponentialBasis``)."""

    def _set_family(self, n_basis_funcs: int, decay_rates: ArrayLike) -> int:
        n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
        self.decay_rates = _check_decay_rates(decay_rates, n_basis_funcs)
        return n_basis_funcs

    def _evaluate(self, points: NDArray) -> NDArray:
        if points.shape[0] < self.n_basis_funcs:
            raise ValueError(
                "OrthExponential bases require at least as many samples as basis functions "
                f"({self.n_basis_funcs}), got {points.shape[0]}"
            )
        scaled, _ = self._unit_points(points)
        return F.orth_exponential(scaled, self.decay_rates)


class OrthExponentialEval(OrthExponential, _EvalBasis):
    """Orthonormalised decaying exponentials, as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= 1).
    decay_rates : array-like, shape (n_basis_funcs,)
        Distinct decay rates (the input is rescaled to [0, 1] first).
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
    >>> basis = nmo.basis.OrthExponentialEval(2, decay_rates=[1.0, 3.0])
    >>> values = basis.compute_features(np.linspace(0, 1, 50))
    >>> np.allclose(values.T @ values, np.eye(2))
    True
    """

    def __init__(
        self,
        n_basis_funcs: int,
        decay_rates: ArrayLike,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = self._set_family(n_basis_funcs, decay_rates)
        _EvalBasis.__init__(self, label, bounds, fill_value)


class OrthExponentialConv(OrthExponential, _ConvBasis):
    """Orthonormalised decaying-exponential filters, as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= 1).
    window_size : int
        Convolution window in samples (>= n_basis_funcs).
    decay_rates : array-like, shape (n_basis_funcs,)
        Distinct decay rates of the exponentials, in units of the window (x in [0, 1]).
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.OrthExponentialConv(3, window_size=20, decay_rates=[1.0, 5.0, 20.0])
    >>> np.allclose(basis.kernel_.T @ basis.kernel_, np.eye(3))
    True
    """

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        decay_rates: ArrayLike,
        label: str | None = None,
        conv_kwargs: dict | None = None,
    ) -> None:
        n_basis_funcs = self._set_family(n_basis_funcs, decay_rates)
        _ConvBasis.__init__(self, n_basis_funcs, window_size, label, conv_kwargs)
        if self.window_size < n_basis_funcs:
            raise ValueError(
                f"window_size must be >= n_basis_funcs = {n_basis_funcs} for "
                f"OrthExponentialConv, got {self.window_size}"
            )
