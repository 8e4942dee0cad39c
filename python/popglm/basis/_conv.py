"""Convolution bases: features are the inputs convolved with the basis kernels, in C++."""

from __future__ import annotations

import warnings
from math import prod

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._history_features import HistoryFeatures
from .._memory import check_allocation
from .._native import core as _core
from .._threads import available_cores
from .._validation import check_positive_int, fortran_float64
from . import _functions as F
from ._base import Basis, user_stacklevel

__all__ = ["HistoryConv"]

_CAUSALITIES = ("causal", "acausal", "anti-causal")
_CONV_KEYS = (
    "predictor_causality",
    "shift",
    "batch_size_samples",
    "batch_size_channels",
    "batch_size_basis",
)


def _check_conv_kwargs(conv_kwargs: dict | None) -> dict:
    if conv_kwargs is None:
        return {}
    if not isinstance(conv_kwargs, dict):
        raise TypeError(f"conv_kwargs must be a dict or None, got {type(conv_kwargs).__name__}")
    if "axis" in conv_kwargs:
        raise ValueError(
            "Setting the `axis` parameter is not allowed in conv_kwargs: samples are always on "
            "the first axis (axis=0); transpose the input instead"
        )
    unknown = set(conv_kwargs) - set(_CONV_KEYS)
    if unknown:
        raise ValueError(
            f"Unrecognized keyword arguments in conv_kwargs: {sorted(unknown)}. Allowed "
            f"convolution keyword arguments are: {list(_CONV_KEYS)}"
        )
    causality = conv_kwargs.get("predictor_causality", "causal")
    if causality not in _CAUSALITIES:
        raise ValueError(
            f"conv_kwargs['predictor_causality'] must be one of {list(_CAUSALITIES)}, got "
            f"{causality!r}"
        )
    shift = conv_kwargs.get("shift")
    if shift is not None and not isinstance(shift, (bool, np.bool_)):
        raise TypeError(f"conv_kwargs['shift'] must be True, False or None, got {shift!r}")
    if shift and causality == "acausal":
        raise ValueError(
            "conv_kwargs: cannot shift an acausal predictor (shift=True with "
            "predictor_causality='acausal'); use shift=False or None"
        )
    for key in _CONV_KEYS[2:]:
        # Accepted for NeMoS compatibility; the C++ kernel already needs no more memory than
        # its output, so there is nothing to batch.
        if conv_kwargs.get(key) is not None:
            check_positive_int(conv_kwargs[key], f"conv_kwargs['{key}']")
    return dict(conv_kwargs)


def _alignment(window_size: int, causality: str, shift: bool | None) -> int:
    """Offset of ``_core.convolve_aligned`` reproducing NeMoS's pad-and-shift."""
    if shift is None:
        shift = causality != "acausal"
    if causality == "causal":
        return -1 if shift else 0
    if causality == "anti-causal":
        return window_size if shift else window_size - 1
    return window_size - 1 - (window_size - 1) // 2


class _ConvBasis(Basis):
    """Shared machinery of the convolutional bases: kernel, features, splitting."""

    def __init__(
        self,
        n_basis_funcs: int,
        window_size: int,
        label: str | None,
        conv_kwargs: dict | None = None,
    ) -> None:
        self._n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
        self.window_size = window_size
        self.conv_kwargs = conv_kwargs
        super().__init__(label=label)

    # -- parameters ---------------------------------------------------------------------------
    @property
    def n_basis_funcs(self) -> int:
        """Number of basis functions (kernels) per input."""
        return self._n_basis_funcs

    @property
    def window_size(self) -> int:
        """Length of the convolution window, in samples."""
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
    def conv_kwargs(self) -> dict:
        """Convolution options: ``predictor_causality`` and ``shift`` (NeMoS's names)."""
        return self._conv_kwargs

    @conv_kwargs.setter
    def conv_kwargs(self, conv_kwargs: dict | None) -> None:
        self._conv_kwargs = _check_conv_kwargs(conv_kwargs)

    @property
    def kernel_(self) -> NDArray:
        """The basis functions sampled on the window, shape ``(window_size, n_basis_funcs)``.

        With the default causal shifted convolution, row ``l - 1`` multiplies the input
        ``l`` samples in the past.
        """
        self._check_evaluation(self.window_size, "kernel_ (window_size x n_basis_funcs)")
        return self._evaluate(np.linspace(0.0, 1.0, self.window_size))

    def _offset(self) -> int:
        causality = self._conv_kwargs.get("predictor_causality", "causal")
        return _alignment(self.window_size, causality, self._conv_kwargs.get("shift"))

    # -- features -----------------------------------------------------------------------------
    def compute_features(self, *xi: ArrayLike) -> NDArray:
        """Convolve the input with every basis function.

        With the default ``conv_kwargs`` the feature at sample ``t`` uses only samples
        ``t - window_size .. t - 1`` and the first ``window_size`` rows are NaN (NeMoS's
        causal, shifted convolution). ``predictor_causality="acausal"`` centres the window,
        ``"anti-causal"`` uses the future; NaN rows are where the window leaves the data,
        exactly as NeMoS pads them. pynapple inputs are convolved epoch by epoch.

        Parameters
        ----------
        xi : array-like or pynapple Tsd/TsdFrame/TsdTensor, shape (n_samples,) or (n_samples, ...)
            Time series; every axis after the first is an input (e.g. a neuron).

        Returns
        -------
        ndarray or pynapple TsdFrame, shape (n_samples, n_inputs * n_basis_funcs)
            Input-major columns: column ``i * n_basis_funcs + k`` is input ``i`` through
            basis function ``k``. Fortran-ordered, ready for ``PopulationGLM.fit``.

        Examples
        --------
        >>> import numpy as np
        >>> import popglm as nmo
        >>> basis = nmo.basis.HistoryConv(3, conv_kwargs={"predictor_causality": "acausal"})
        >>> basis.compute_features(np.array([0.0, 1.0, 0.0, 0.0, 2.0]))[:, 0]
        array([nan,  0.,  0.,  2., nan])
        """
        return super().compute_features(*xi)

    def _features(self, arrays: list[NDArray], epochs: list) -> NDArray:
        x = arrays[0]
        n_samples = x.shape[0]
        flat = x.reshape(n_samples, -1)
        if flat.flags.c_contiguous and flat.shape[1] > 1 and epochs[0] is None:
            # Counts usually come C-ordered (samples x neurons): the core reads them row by row
            # in place, no transposed copy.
            if flat.dtype != np.float64:
                check_allocation(8.0 * flat.size, f"a float64 copy of xi (shape {x.shape})")
            columns = np.require(flat, dtype=np.float64, requirements=["C", "A"])
        else:
            columns = fortran_float64(flat, "xi")
        kernels = np.asfortranarray(self.kernel_, dtype=np.float64)
        n_columns = columns.shape[1] * kernels.shape[1]
        causality = self._conv_kwargs.get("predictor_causality", "causal")
        if causality == "acausal" and self.window_size % 2 == 0:
            warnings.warn(
                "With `acausal` filter, window_size should probably be odd (got "
                f"{self.window_size}), so that we can place an equal number of NaNs on "
                "either side of input.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        parts = epochs[0] if epochs[0] is not None else [(0, n_samples)]
        if any(stop - start < self.window_size for start, stop in parts):
            warnings.warn(
                f"One or more trials are shorter than the convolution window size "
                f"({self.window_size} samples). These trials will produce NaN values in the "
                "output.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        offset = self._offset()
        check_allocation(
            8.0 * n_samples * n_columns,
            f"the features (n_samples x n_inputs * n_basis_funcs = {n_samples} x {n_columns} "
            "float64; history_features(xi) stands for them without forming them)",
        )
        if parts == [(0, n_samples)]:
            # One epoch: the kernel writes the output in place, no temporary.
            out = np.empty((n_samples, n_columns), order="F")
            _core.convolve_aligned(columns, kernels, offset, out, available_cores())
            return out
        out = np.full((n_samples, n_columns), np.nan, order="F")
        for start, stop in parts:
            if stop <= start:
                continue
            block = np.empty((stop - start, n_columns), order="F")
            _core.convolve_aligned(
                np.asfortranarray(columns[start:stop]), kernels, offset, block, available_cores()
            )
            out[start:stop] = block
        return out

    def history_features(self, xi: ArrayLike) -> HistoryFeatures:
        """Represent ``compute_features(xi)`` without forming the matrix.

        ``PopulationGLM.fit`` and ``predict`` accept the result in place of the feature matrix
        and give the same answer, rebuilding row blocks from ``xi`` and the kernels as they go:
        memory stays proportional to ``xi`` (n_samples x n_inputs) rather than to the features
        (n_samples x n_inputs * n_basis_funcs). Use it for long recordings of many neurons.
        Only the default causal, shifted convolution is supported.

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
        if self._offset() != -1:
            raise ValueError(
                "history_features supports the causal shifted convolution only (conv_kwargs "
                f"{self._conv_kwargs}); use compute_features"
            )
        x = np.asarray(xi)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"xi must be a real numeric array, got dtype {x.dtype}")
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
        columns = fortran_float64(x.reshape(n_samples, -1), "xi")
        finite = np.empty(n_samples, dtype=np.uint8)
        _core.scan_design(columns, finite, np.empty(columns.shape[1]), available_cores())
        if not finite.all():
            raise ValueError(
                "xi must be finite for history_features; use compute_features for inputs with "
                "NaN or inf (the fit drops those rows)"
            )
        self._assign_shapes([tuple(x.shape[1:])])
        return HistoryFeatures(columns, np.asfortranarray(self.kernel_, dtype=np.float64), xi)

    @property
    def n_output_features(self) -> int | None:
        """Number of columns of ``compute_features``' output; None until the input shape is known."""
        shape = self._input_shapes[0]
        return None if shape is None else prod(shape) * self.n_basis_funcs

    def _evaluate(self, points: NDArray) -> NDArray:
        raise NotImplementedError

    def _unit_points(self, points: NDArray) -> tuple[NDArray, NDArray]:
        """Map the window's sample points to [0, 1]; return them with the scaling applied.

        The families (``_raised_cosine``, ``_splines``, ...) evaluate on these points.
        """
        return F.rescale(points, None)


class HistoryConv(_ConvBasis):
    """Raw spike history: one feature per lag, ``window_size`` lags.

    Parameters
    ----------
    window_size : int
        History window in samples; also the number of basis functions.
    label : str, optional
        Name of the basis (default: the class name).
    conv_kwargs : dict, optional
        ``predictor_causality`` ("causal", "acausal" or "anti-causal") and ``shift``.

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

    def __init__(
        self, window_size: int, label: str | None = None, conv_kwargs: dict | None = None
    ) -> None:
        super().__init__(1, window_size=window_size, label=label, conv_kwargs=conv_kwargs)

    @property
    def n_basis_funcs(self) -> int:
        """Number of basis functions: one per lag, ``window_size``."""
        return self.window_size

    def _evaluate(self, points: NDArray) -> NDArray:
        # The history basis is the identity: function k is 1 at the k-th sample point.
        points = np.squeeze(points)
        if points.ndim > 1:
            raise ValueError("`evaluate` for HistoryConv allows 1D input only")
        return np.eye(np.atleast_1d(points).shape[0], self.n_basis_funcs)

    def _repr_params(self) -> dict[str, object]:
        params = {"window_size": self.window_size}
        if self.conv_kwargs:
            params["conv_kwargs"] = self.conv_kwargs
        return params
