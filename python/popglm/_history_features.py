"""History features held as their inputs and kernels: a design the engine reads without forming.

Made by a convolution basis's ``history_features``; consumed by the estimators, inference and the
Dask fits, which rebuild row blocks (or let the C++ core rebuild them) as they go.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._memory import check_allocation
from ._native import core as _core
from ._threads import available_cores
from ._validation import fortran_float64

__all__ = ["HistoryFeatures"]


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
        # A Dask worker rebuilds these from unpickled buffers, which may be misaligned: the core
        # must never read a double at a misaligned address (UBSan finding), so those are copied.
        self.inputs = fortran_float64(inputs)
        self.kernels = fortran_float64(kernels)
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
        check_allocation(
            8.0 * self.shape[0] * self.shape[1],
            f"the feature matrix of these HistoryFeatures (shape {self.shape}, float64)",
        )
        out = np.empty(self.shape, order="F")
        _core.convolve_history(self.inputs, self.kernels, out, available_cores())
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return (
            f"HistoryFeatures(shape={self.shape}, window_size={self.window_size}, "
            f"n_basis_funcs={self.kernels.shape[1]})"
        )
