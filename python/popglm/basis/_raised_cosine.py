"""The raised-cosine families (Pillow et al. 2005), linear and log-stretched, as NeMoS builds them.

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
    "RaisedCosineLinearConv",
    "RaisedCosineLinearEval",
    "RaisedCosineLogConv",
    "RaisedCosineLogEval",
]


def _check_width(width: float) -> float:
    width = float(width)
    if not width > 1 or not np.isclose(2 * width, round(2 * width)):
        raise ValueError(
            f"width must be > 1 and a multiple of 0.5 (1.5, 2, 2.5, ...), got {width}: other "
            "values alias the basis"
        )
    return width


def _check_raised_cosine_n(n_basis_funcs: int, cls: str) -> int:
    n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
    if n_basis_funcs < 2:
        raise ValueError(f"n_basis_funcs must be >= 2 for {cls}, got {n_basis_funcs}")
    return n_basis_funcs


def _check_time_scaling(time_scaling: float | None) -> float:
    time_scaling = 50.0 if time_scaling is None else float(time_scaling)
    if not time_scaling > 0:
        raise ValueError(f"time_scaling must be > 0, got {time_scaling}")
    return time_scaling


class RaisedCosineLinear:
    """Linearly spaced raised-cosine bumps on [0, 1] (NeMoS's ``RaisedCosineBasisLinear``)."""

    def _set_family(self, n_basis_funcs: int, width: float) -> int:
        n_basis_funcs = _check_raised_cosine_n(n_basis_funcs, type(self).__name__)
        self.width = _check_width(width)
        return n_basis_funcs

    def _evaluate(self, points: NDArray) -> NDArray:
        scaled, _ = self._unit_points(points)
        return F.raised_cosine(scaled, np.linspace(0.0, 1.0, self.n_basis_funcs), self.width)


class RaisedCosineLog:
    """Log-stretched raised-cosine bumps on [0, 1] (NeMoS's ``RaisedCosineBasisLog``)."""

    def _set_family(
        self,
        n_basis_funcs: int,
        width: float,
        time_scaling: float | None,
        enforce_decay_to_zero: bool,
    ) -> int:
        n_basis_funcs = _check_raised_cosine_n(n_basis_funcs, type(self).__name__)
        self.width = _check_width(width)
        self.time_scaling = _check_time_scaling(time_scaling)
        self.enforce_decay_to_zero = bool(enforce_decay_to_zero)
        return n_basis_funcs

    def _evaluate(self, points: NDArray) -> NDArray:
        scaled, _ = self._unit_points(points)
        stretched = F.log_stretch(scaled, self.time_scaling)
        peaks = F.log_peaks(self.n_basis_funcs, self.width, self.enforce_decay_to_zero)
        return F.raised_cosine(stretched, peaks, self.width)


class RaisedCosineLinearEval(RaisedCosineLinear, _EvalBasis):
    """Linearly spaced raised-cosine bumps tiling the input's range (NeMoS's definition).

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= 2).
    width : float
        Width of each bump in units of the spacing between peaks; > 1 and a multiple of 0.5.
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
    >>> nmo.basis.RaisedCosineLinearEval(5).compute_features(np.linspace(0, 1, 7)).shape
    (7, 5)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        width: float = 2.0,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = self._set_family(n_basis_funcs, width)
        _EvalBasis.__init__(self, label, bounds, fill_value)


class RaisedCosineLinearConv(RaisedCosineLinear, _ConvBasis):
    """Linearly spaced raised-cosine filters (Pillow et al. 2005), as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= 2).
    window_size : int
        Convolution window in samples.
    width : float
        Width of each bump in units of the spacing between peaks; > 1 and a multiple of 0.5.
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

    Examples
    --------
    >>> import popglm as nmo
    >>> nmo.basis.RaisedCosineLinearConv(4, window_size=20).kernel_.shape
    (20, 4)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        width: float = 2.0,
        label: str | None = None,
        conv_kwargs: dict | None = None,
    ) -> None:
        n_basis_funcs = self._set_family(n_basis_funcs, width)
        _ConvBasis.__init__(self, n_basis_funcs, window_size, label, conv_kwargs)


class RaisedCosineLogEval(RaisedCosineLog, _EvalBasis):
    """Log-spaced raised-cosine bumps on the input's range (NeMoS's definition).

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= 2).
    width : float
        Width of each bump in units of the spacing between peaks; > 1 and a multiple of 0.5.
    time_scaling : float, optional
        Strength of the log stretch (> 0, default 50).
    enforce_decay_to_zero : bool
        Place the last peak so that the last function decays to 0 at the upper end.
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
    >>> nmo.basis.RaisedCosineLogEval(4).compute_features(np.linspace(0, 1, 9)).shape
    (9, 4)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        width: float = 2.0,
        time_scaling: float | None = None,
        enforce_decay_to_zero: bool = True,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = self._set_family(
            n_basis_funcs, width, time_scaling, enforce_decay_to_zero
        )
        _EvalBasis.__init__(self, label, bounds, fill_value)


class RaisedCosineLogConv(RaisedCosineLog, _ConvBasis):
    """Log-stretched raised-cosine history filters (Pillow et al. 2005), as NeMoS builds them.

    Parameters
    ----------
    n_basis_funcs : int
        Number of basis functions (>= 2).
    window_size : int
        History window in samples.
    width : float
        Width of each cosine bump, in units of the spacing between peaks; > 1 and a multiple
        of 0.5.
    time_scaling : float, optional
        Strength of the log stretch (> 0, default 50): larger values crowd the bumps near lag 1.
    enforce_decay_to_zero : bool
        Place the last peak so that the last function decays to 0 at the end of the window.
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

    Examples
    --------
    >>> import popglm as nmo
    >>> basis = nmo.basis.RaisedCosineLogConv(3, window_size=5)
    >>> basis.kernel_.shape
    (5, 3)
    """

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        width: float = 2.0,
        time_scaling: float | None = None,
        enforce_decay_to_zero: bool = True,
        label: str | None = None,
        conv_kwargs: dict | None = None,
    ) -> None:
        n_basis_funcs = self._set_family(n_basis_funcs, width, time_scaling, enforce_decay_to_zero)
        _ConvBasis.__init__(self, n_basis_funcs, window_size, label, conv_kwargs)

    def _repr_params(self) -> dict[str, object]:
        params = {
            "n_basis_funcs": self.n_basis_funcs,
            "window_size": self.window_size,
            "width": self.width,
            "time_scaling": self.time_scaling,
            "enforce_decay_to_zero": self.enforce_decay_to_zero,
        }
        if self.conv_kwargs:
            params["conv_kwargs"] = self.conv_kwargs
        return params
