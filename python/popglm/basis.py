"""Convolutional bases for spike-history and coupling features (NeMoS-compatible).

The features are computed by C++ kernels (``popglm._core.convolve_history``); the kernels
(basis functions sampled on the window) are computed here in float64 with the same formulas
as NeMoS, so ``compute_features`` agrees with NeMoS to rounding error.
"""

from __future__ import annotations

import warnings
from math import prod

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._native import core as _core
from ._threads import available_cores
from ._validation import as_numeric_array, check_positive_int

__all__ = ["HistoryConv", "HistoryFeatures", "RaisedCosineLogConv"]


class _ConvBasis:
    """Shared machinery of the convolutional bases: kernel, features, splitting."""

    def __init__(self, n_basis_funcs: int, window_size: int, label: str | None) -> None:
        self._n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
        self.window_size = window_size
        self.label = label
        self._input_shape: tuple[int, ...] | None = None

    # -- parameters ---------------------------------------------------------------------------
    @property
    def n_basis_funcs(self) -> int:
        """Number of basis functions (kernels) per input."""
        return self._n_basis_funcs

    @property
    def window_size(self) -> int:
        """Length of the history window, in samples."""
        return self._window_size

    @window_size.setter
    def window_size(self, window_size: int) -> None:
        if isinstance(window_size, (bool, np.bool_)) or not isinstance(
            window_size, (int, np.integer)
        ):
            raise ValueError(f"window_size must be a positive integer, got {window_size!r}")
        if window_size < 1:
            raise ValueError(f"window_size must be a positive integer, got {window_size}")
        self._window_size = int(window_size)

    @property
    def label(self) -> str:
        """Name of the basis: the key of ``split_by_feature``'s output."""
        return self._label if self._label is not None else type(self).__name__

    @label.setter
    def label(self, label: str | None) -> None:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string or None, got {type(label).__name__}")
        self._label = label

    @property
    def n_output_features(self) -> int | None:
        """Number of columns of ``compute_features``' output; None until the input shape is known."""
        if self._input_shape is None:
            return None
        return prod(self._input_shape) * self.n_basis_funcs

    @property
    def kernel_(self) -> NDArray:
        """The basis functions sampled on the window, shape ``(window_size, n_basis_funcs)``.

        Row ``l - 1`` multiplies the input ``l`` samples in the past.
        """
        return self.evaluate(np.linspace(0.0, 1.0, self.window_size))

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, sample_pts: ArrayLike) -> NDArray:
        """Evaluate the basis functions at sample points.

        Parameters
        ----------
        sample_pts : array-like, shape (n_samples,)
            Points at which to evaluate; they are rescaled to [0, 1] by their min and max.

        Returns
        -------
        ndarray, shape (n_samples, n_basis_funcs)
        """
        points = as_numeric_array(sample_pts, "sample_pts").astype(np.float64).reshape(-1)
        return self._evaluate(points)

    def evaluate_on_grid(self, n_samples: int) -> tuple[NDArray, NDArray]:
        """Evaluate the basis on ``n_samples`` equi-spaced points of [0, 1].

        Parameters
        ----------
        n_samples : int
            Number of grid points (>= 1).

        Returns
        -------
        grid : ndarray, shape (n_samples,)
        values : ndarray, shape (n_samples, n_basis_funcs)
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        grid = np.linspace(0.0, 1.0, n_samples)
        return grid, self.evaluate(grid)

    # -- features -----------------------------------------------------------------------------
    def set_input_shape(self, xi: int | tuple[int, ...] | ArrayLike):
        """Declare the shape of one input sample, so ``n_output_features`` is known.

        Parameters
        ----------
        xi : int, tuple of int, or array
            Number of inputs, the shape of one sample, or an example input whose first axis
            is samples.

        Returns
        -------
        self
        """
        if isinstance(xi, (int, np.integer)) and not isinstance(xi, bool):
            shape: tuple[int, ...] = (check_positive_int(xi, "xi"),)
        elif isinstance(xi, tuple):
            shape = tuple(check_positive_int(s, "xi") for s in xi)
        else:
            shape = tuple(np.shape(xi)[1:])
        self._input_shape = shape
        return self

    def compute_features(self, xi: ArrayLike) -> NDArray:
        """Convolve the input with every basis function, causally.

        The feature at sample ``t`` uses only samples ``t - window_size .. t - 1``; the first
        ``window_size`` rows are NaN (NeMoS's causal, shifted convolution).

        Parameters
        ----------
        xi : array-like, shape (n_samples,) or (n_samples, ...)
            Time series; every axis after the first is an input (e.g. a neuron).

        Returns
        -------
        ndarray, shape (n_samples, n_inputs * n_basis_funcs)
            Input-major columns: column ``i * n_basis_funcs + k`` is input ``i`` through
            basis function ``k``. Fortran-ordered, ready for ``PopulationGLM.fit``.
        """
        x = as_numeric_array(xi, "xi")
        if x.ndim == 0:
            raise ValueError("xi must have at least one dimension (n_samples, ...), got a scalar")
        n_samples = x.shape[0]
        if n_samples == 0:
            raise ValueError("xi must contain at least one sample, got shape " + str(x.shape))
        input_shape = tuple(x.shape[1:])
        n_inputs = prod(input_shape)
        if n_samples < self.window_size:
            warnings.warn(
                f"One or more trials are shorter than the convolution window size "
                f"({self.window_size} samples). These trials will produce NaN values in the "
                "output.",
                UserWarning,
                stacklevel=2,
            )
        columns = np.asfortranarray(x.reshape(n_samples, n_inputs), dtype=np.float64)
        kernels = np.asfortranarray(self.kernel_, dtype=np.float64)
        out = np.empty((n_samples, n_inputs * self.n_basis_funcs), order="F")
        _core.convolve_history(columns, kernels, out, available_cores())
        self._input_shape = input_shape
        return out

    def history_features(self, xi: ArrayLike) -> HistoryFeatures:
        """Represent ``compute_features(xi)`` without forming the matrix.

        ``PopulationGLM.fit`` and ``predict`` accept the result in place of the feature matrix
        and give the same answer, rebuilding row blocks from ``xi`` and the kernels as they go:
        memory stays proportional to ``xi`` (n_samples x n_inputs) rather than to the features
        (n_samples x n_inputs * n_basis_funcs). Use it for long recordings of many neurons.

        Parameters
        ----------
        xi : array-like, shape (n_samples,) or (n_samples, ...)
            Time series without NaN or inf; every axis after the first is an input.

        Returns
        -------
        HistoryFeatures
            Shape ``(n_samples, n_inputs * n_basis_funcs)``, columns in the order of
            ``compute_features``; ``np.asarray`` of it is ``compute_features(xi)``.

        Examples
        --------
        >>> import numpy as np
        >>> import popglm as nmo
        >>> counts = np.random.default_rng(0).poisson(0.5, size=(300, 3))
        >>> basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
        >>> lazy = basis.history_features(counts)
        >>> lazy.shape
        (300, 9)
        >>> np.array_equal(np.asarray(lazy), basis.compute_features(counts), equal_nan=True)
        True
        """
        x = as_numeric_array(xi, "xi")
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"xi must have shape (n_samples, ...) with n_samples >= 1, got {x.shape}"
            )
        if x.shape[0] <= self.window_size:
            raise ValueError(
                f"xi must have more samples than window_size = {self.window_size}, got "
                f"{x.shape[0]}: every row would be NaN"
            )
        n_samples = x.shape[0]
        columns = np.asfortranarray(x.reshape(n_samples, -1), dtype=np.float64)
        if not np.isfinite(columns).all():
            raise ValueError(
                "xi must be finite for history_features; use compute_features for inputs with "
                "NaN or inf (the fit drops those rows)"
            )
        self._input_shape = tuple(x.shape[1:])
        return HistoryFeatures(columns, np.asfortranarray(self.kernel_, dtype=np.float64), xi)

    def split_by_feature(self, x: ArrayLike, axis: int = 0) -> dict[str, NDArray]:
        """Reshape the feature axis of ``x`` into ``(*input_shape, n_basis_funcs)``.

        Parameters
        ----------
        x : array-like
            An array whose ``axis`` has ``n_output_features`` entries, e.g. the feature matrix
            (``axis=1``) or ``coef_`` of shape ``(n_features, n_neurons)`` (``axis=0``).
        axis : int
            The feature axis.

        Returns
        -------
        dict
            ``{label: array}``; with ``coef_`` of a population fit the array has shape
            ``(n_senders, n_basis_funcs, n_receivers)``.
        """
        x = np.asarray(x)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of bounds for an array of dimension {x.ndim}")
        axis = axis % x.ndim
        expected = self.n_output_features
        if x.shape[axis] != expected:
            raise ValueError(
                "`x.shape[axis]` does not match the expected number of features. "
                f"`x.shape[axis] == {x.shape[axis]}`, while the expected number of features "
                f"is {expected}"
            )
        assert self._input_shape is not None
        new_shape = x.shape[:axis] + self._input_shape + (self.n_basis_funcs,) + x.shape[axis + 1 :]
        return {self.label: x.reshape(new_shape)}

    # -- display ------------------------------------------------------------------------------
    def _repr_params(self) -> dict[str, object]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self._repr_params().items())
        text = f"{type(self).__name__}({params})"
        return text if self._label is None else f"{self._label!r}: {text}"

    def _evaluate(self, points: NDArray) -> NDArray:
        raise NotImplementedError


class HistoryConv(_ConvBasis):
    """Raw spike history: one feature per lag, ``window_size`` lags.

    Parameters
    ----------
    window_size : int
        History window in samples; also the number of basis functions.
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.HistoryConv(window_size=3)
    >>> X = basis.compute_features(np.array([0, 1, 0, 0, 2, 0]))
    >>> X[3:]
    array([[0., 1., 0.],
           [0., 0., 1.],
           [2., 0., 0.]])
    """

    def __init__(self, window_size: int, label: str | None = None) -> None:
        super().__init__(n_basis_funcs=1, window_size=window_size, label=label)

    @property
    def n_basis_funcs(self) -> int:
        """Number of basis functions: one per lag, ``window_size``."""
        return self.window_size

    def _evaluate(self, points: NDArray) -> NDArray:
        # NeMoS's history basis is the identity: function k is 1 at the k-th sample point.
        return np.eye(points.shape[0], self.n_basis_funcs)

    def _repr_params(self) -> dict[str, object]:
        return {"window_size": self.window_size}


class RaisedCosineLogConv(_ConvBasis):
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
    ) -> None:
        n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
        if n_basis_funcs < 2:
            raise ValueError(
                f"n_basis_funcs must be >= 2 for RaisedCosineLogConv, got {n_basis_funcs}"
            )
        super().__init__(n_basis_funcs=n_basis_funcs, window_size=window_size, label=label)
        width = float(width)
        if not width > 1 or not np.isclose(2 * width, round(2 * width)):
            raise ValueError(
                f"width must be > 1 and a multiple of 0.5 (1.5, 2, 2.5, ...), got {width}: other "
                "values alias the basis"
            )
        self.width = width
        time_scaling = 50.0 if time_scaling is None else float(time_scaling)
        if not time_scaling > 0:
            raise ValueError(f"time_scaling must be > 0, got {time_scaling}")
        self.time_scaling = time_scaling
        self.enforce_decay_to_zero = bool(enforce_decay_to_zero)

    def _peaks(self) -> NDArray:
        if self.enforce_decay_to_zero:
            # The last peak sits where the last bump reaches zero exactly at the window's end.
            last_peak = 1.0 - self.width / (self.n_basis_funcs + self.width - 1.0)
        else:
            last_peak = 1.0
        return np.linspace(0.0, last_peak, self.n_basis_funcs)

    def _evaluate(self, points: NDArray) -> NDArray:
        low, high = np.nanmin(points), np.nanmax(points)
        span = high - low if high > low else 1.0
        rescaled = (points - low) / span
        stretched = np.log(self.time_scaling * rescaled + 1.0) / np.log(self.time_scaling + 1.0)
        peaks = self._peaks()
        spacing = peaks[1] - peaks[0]
        phase = np.pi * (stretched[:, None] - peaks[None, :]) / (spacing * self.width)
        return 0.5 * (np.cos(np.clip(phase, -np.pi, np.pi)) + 1.0)

    def _repr_params(self) -> dict[str, object]:
        return {
            "n_basis_funcs": self.n_basis_funcs,
            "window_size": self.window_size,
            "width": self.width,
            "time_scaling": self.time_scaling,
            "enforce_decay_to_zero": self.enforce_decay_to_zero,
        }


class HistoryFeatures:
    """History features held as their inputs and kernels instead of a matrix.

    Made by a convolution basis's ``history_features(xi)``; stands for
    ``compute_features(xi)`` (same shape, same column order, same values). ``PopulationGLM``
    fits and predicts from it without forming the matrix, and ``np.asarray`` forms it.

    Attributes
    ----------
    inputs : ndarray, shape (n_samples, n_inputs)
        The time series, float64, Fortran order.
    kernels : ndarray, shape (window_size, n_basis_funcs)
        The basis kernels (``basis.kernel_``).
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, inputs: NDArray, kernels: NDArray, source: object = None) -> None:
        self.inputs = inputs
        self.kernels = kernels
        # The caller's array: when the same array is passed as y, the fit reuses `inputs`.
        self._source = source

    @property
    def window_size(self) -> int:
        """Samples of history in each feature; rows before it are NaN."""
        return self.kernels.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_samples, n_inputs * n_basis_funcs)``."""
        return (self.inputs.shape[0], self.inputs.shape[1] * self.kernels.shape[1])

    def is_view_of(self, y: object) -> bool:
        """Tell whether ``y`` is the array these features were computed from."""
        return y is self._source or y is self.inputs

    def row_blocks(self, rows: NDArray, max_elements: int = 1 << 22):
        """Yield ``(start, block)``: the feature rows ``rows[start:start + len(block)]``.

        Each block (at most ``max_elements`` values) is convolved from the inputs it needs,
        so the whole matrix is never formed. ``rows`` must be increasing and >= window_size.
        """
        n_features = self.shape[1]
        window = self.window_size
        block_rows = max(1, max_elements // max(n_features, 1))
        for start in range(0, rows.size, block_rows):
            chunk = rows[start : start + block_rows]
            first, last = int(chunk[0]), int(chunk[-1]) + 1
            source = np.asfortranarray(self.inputs[first - window : last])
            block = np.empty((source.shape[0], n_features), order="F")
            _core.convolve_history(source, self.kernels, block, 1)
            yield start, block[chunk - first + window]

    def __array__(self, dtype=None, copy=None) -> NDArray:
        out = np.empty(self.shape, order="F")
        _core.convolve_history(self.inputs, self.kernels, out, available_cores())
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return (
            f"HistoryFeatures(shape={self.shape}, window_size={self.window_size}, "
            f"n_basis_funcs={self.kernels.shape[1]})"
        )
