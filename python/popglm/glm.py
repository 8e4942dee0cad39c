"""Fully coupled Poisson GLMs for neural populations (NeMoS-compatible ``PopulationGLM``).

Every neuron (column of ``y``) is an independent Poisson GLM with exp inverse link on its own
masked set of features; the fits run in parallel in C++, each by a safeguarded Newton method
to a gradient tolerance of 1e-8, i.e. to the exact maximum-likelihood estimate.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._native import core as _core
from ._threads import resolve_n_threads
from ._validation import as_numeric_array, check_positive_int, design_for_core
from .basis import HistoryFeatures
from .exceptions import ConvergenceWarning

__all__ = ["PopulationGLM", "FIT_STATUS"]

#: Meaning of the codes in ``fit_info_["status"]`` (mirrors ``popglm::FitStatus`` in C++).
FIT_STATUS = {
    0: "converged",
    1: "max_iter_reached",
    2: "line_search_failed",
    3: "mle_at_infinity",
    4: "no_valid_rows",
    5: "internal_error",
}


def _check_observation_model(observation_model: Any) -> str:
    name = (
        observation_model
        if isinstance(observation_model, str)
        else type(observation_model).__name__
    )
    if name.lower().replace("observations", "") != "poisson":
        raise ValueError(
            f"observation_model must be 'Poisson' (the only model in this version), got "
            f"{observation_model!r}"
        )
    return "Poisson"


def _check_regularizer(regularizer: Any, strength: Any) -> None:
    name = (
        regularizer
        if regularizer is None or isinstance(regularizer, str)
        else type(regularizer).__name__
    )
    if name not in (None, "UnRegularized"):
        raise ValueError(
            f"regularizer must be None or 'UnRegularized' in this version, got {regularizer!r}"
        )
    if strength is not None:
        raise ValueError(
            f"regularizer_strength must be None for an unregularised model, got {strength!r}"
        )


def _check_feature_mask(feature_mask: ArrayLike | None) -> NDArray | None:
    if feature_mask is None:
        return None
    mask = as_numeric_array(feature_mask, "feature_mask")
    if mask.ndim != 2:
        raise ValueError(
            f"feature_mask must be 2-D with shape (n_features, n_neurons), got {mask.ndim}-D "
            f"shape {mask.shape}"
        )
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError("feature_mask must contain only 0 and 1 (or False and True)")
    return mask


def _rows_of(counts: NDArray, rows: NDArray) -> NDArray:
    """counts[rows], as a view when the rows are one contiguous range (the usual case)."""
    if rows[-1] - rows[0] + 1 == rows.size:
        return counts[rows[0] : rows[-1] + 1]
    return counts[rows]


def _check_spike_counts(counts: NDArray, block_rows: int = 1 << 16) -> None:
    """Raise unless every entry is a non-negative integer; in row blocks, so no full-size copy."""
    for start in range(0, counts.shape[0], block_rows):
        block = counts[start : start + block_rows]
        if np.any(block < 0):
            raise ValueError("y must contain non-negative spike counts, found negative values")
        if np.any(block != np.round(block)):
            raise ValueError("y must contain integer spike counts, found non-integer values")


class PopulationGLM:
    """A Poisson GLM for each neuron of a population, fitted jointly and exactly.

    For neuron ``j``: ``y[t, j] ~ Poisson(exp(intercept_[j] + X[t] @ coef_[:, j]))``, with
    ``coef_[i, j] = 0`` wherever ``feature_mask[i, j] == 0``. Each neuron is fitted by Newton's
    method (Cholesky of the Hessian, a backtracking line search, and a truncated
    eigendecomposition when the design is rank deficient, which returns the minimum-norm MLE)
    until the largest gradient entry of its mean negative log-likelihood is ``<= tol``.

    Parameters
    ----------
    observation_model : str
        ``"Poisson"`` (the only model in this version).
    inverse_link_function : callable, optional
        ``None`` or ``numpy.exp``/``jax.numpy.exp``: the exponential link.
    regularizer : str, optional
        ``None`` or ``"UnRegularized"``.
    regularizer_strength : None
        Must be None for an unregularised model.
    solver_name : str, optional
        Accepted for NeMoS compatibility and recorded; popglm always solves with Newton.
    solver_kwargs : dict, optional
        NeMoS-style solver options: ``tol`` and ``maxiter`` override ``tol`` and ``max_iter``.
    feature_mask : array-like of 0/1, shape (n_features, n_neurons), optional
        Which features enter which neuron's model. Default: all features for all neurons.
    tol : float
        Stop when max |gradient of the per-neuron mean negative log-likelihood| <= tol.
    max_iter : int
        Newton iterations allowed per neuron.
    n_threads : int, optional
        Threads for the per-neuron solves; default: all cores this process may use. The
        results do not depend on it.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features, n_neurons)
    intercept_ : ndarray, shape (n_neurons,)
    n_iter_ : ndarray of int, shape (n_neurons,)
        Newton iterations per neuron.
    converged_ : ndarray of bool, shape (n_neurons,)
    fit_info_ : dict of ndarray
        Per neuron: ``status`` (codes in ``popglm.glm.FIT_STATUS``), ``n_iter``,
        ``gradient_norm`` (final max |gradient|), ``objective`` (final mean NLL without the
        log(y!) term), ``n_hessian`` (Hessians formed, the dominant cost), plus ``n_samples_used`` (rows left after dropping NaN/inf).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(200, 3))
    >>> X = nmo.basis.HistoryConv(window_size=4).compute_features(counts)
    >>> model = nmo.glm.PopulationGLM().fit(X, counts)
    >>> model.coef_.shape, model.intercept_.shape
    ((12, 3), (3,))
    >>> bool(model.converged_.all())
    True
    """

    def __init__(
        self,
        observation_model: str = "Poisson",
        inverse_link_function: Any = None,
        regularizer: Any = None,
        regularizer_strength: Any = None,
        solver_name: str | None = None,
        solver_kwargs: dict | None = None,
        feature_mask: ArrayLike | None = None,
        *,
        tol: float = 1e-8,
        max_iter: int = 100,
        n_threads: int | None = None,
    ) -> None:
        self.observation_model = _check_observation_model(observation_model)
        if (
            inverse_link_function is not None
            and getattr(inverse_link_function, "__name__", "") != "exp"
        ):
            raise ValueError(
                "inverse_link_function must be None or an exp function in this version, got "
                f"{inverse_link_function!r}"
            )
        self.inverse_link_function = inverse_link_function
        _check_regularizer(regularizer, regularizer_strength)
        self.regularizer = regularizer
        self.regularizer_strength = regularizer_strength
        self.solver_name = solver_name
        self.solver_kwargs = dict(solver_kwargs or {})
        unknown = set(self.solver_kwargs) - {"tol", "maxiter"}
        if unknown:
            raise ValueError(
                f"solver_kwargs accepts only 'tol' and 'maxiter', got unknown keys {sorted(unknown)}"
            )
        self.feature_mask = feature_mask
        self.tol = tol
        self.max_iter = max_iter
        self.n_threads = n_threads

    @property
    def feature_mask(self) -> NDArray | None:
        """Mask of shape ``(n_features, n_neurons)``: 1 keeps a feature for a neuron, 0 drops it."""
        return self._feature_mask

    @feature_mask.setter
    def feature_mask(self, feature_mask: ArrayLike | None) -> None:
        self._feature_mask = _check_feature_mask(feature_mask)

    def _solver_settings(self) -> tuple[float, int, int]:
        tol = self.solver_kwargs.get("tol", self.tol)
        max_iter = self.solver_kwargs.get("maxiter", self.max_iter)
        if not (isinstance(tol, (float, int)) and np.isfinite(tol) and tol > 0):
            raise ValueError(f"tol must be a positive finite number, got {tol!r}")
        max_iter = check_positive_int(max_iter, "max_iter", minimum=0)
        return float(tol), max_iter, resolve_n_threads(self.n_threads)

    def fit(self, X: ArrayLike, y: ArrayLike, init_params: tuple | None = None) -> PopulationGLM:
        """Fit every neuron's GLM to maximum likelihood.

        Rows with NaN or inf in ``X`` or ``y`` are dropped (the first ``window_size`` rows of
        convolutional features are NaN).

        Parameters
        ----------
        X : array-like or HistoryFeatures, shape (n_samples, n_features)
            Design matrix. A float64 array in C or Fortran order is used in place, not copied.
            ``basis.history_features(counts)`` gives the same fit without forming the matrix
            (for long recordings: memory O(n_samples x n_neurons) instead of
            O(n_samples x n_features)).
        y : array-like, shape (n_samples, n_neurons)
            Spike counts: non-negative integers.
        init_params : tuple (coef, intercept), optional
            Starting point, shapes ``(n_features, n_neurons)`` and ``(n_neurons,)``. Default:
            zero coefficients and each neuron's log mean count.

        Returns
        -------
        self
        """
        tol, max_iter, n_threads = self._solver_settings()
        history = isinstance(X, HistoryFeatures)
        reuse_inputs = history and X.is_view_of(y)
        if not history:
            X = as_numeric_array(X, "X")
        y = as_numeric_array(y, "y")
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D with shape (n_samples, n_features), got shape {X.shape}"
            )
        if y.ndim != 2:
            raise ValueError(
                f"y must be 2-D with shape (n_samples, n_neurons), got shape {y.shape}; "
                "for a single neuron pass y[:, None]"
            )
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X and y must have the same number of samples, got X.shape[0] = {X.shape[0]} "
                f"and y.shape[0] = {y.shape[0]}"
            )
        n_samples, n_features = X.shape
        n_neurons = y.shape[1]
        if n_neurons == 0:
            raise ValueError("y must have at least one neuron (column), got shape " + str(y.shape))
        if self._feature_mask is None:
            mask = np.ones((n_features, n_neurons), dtype=np.uint8, order="F")
        elif self._feature_mask.shape != (n_features, n_neurons):
            raise ValueError(
                "feature_mask must have shape (n_features, n_neurons) = "
                f"({n_features}, {n_neurons}), got {self._feature_mask.shape}"
            )
        else:
            mask = np.asfortranarray(self._feature_mask, dtype=np.uint8)

        # The counts the features were computed from are already float64 in Fortran order.
        counts = X.inputs if reuse_inputs else np.asfortranarray(y, dtype=np.float64)
        if history:
            valid = np.ones(n_samples, dtype=np.uint8)
            valid[: X.window_size] = 0
        else:
            design = design_for_core(X)
            valid = np.empty(n_samples, dtype=np.uint8)
            _core.finite_rows(design, valid, n_threads)
        if not reuse_inputs:
            valid &= np.isfinite(counts).all(axis=1)
        rows = np.flatnonzero(valid).astype(np.int64)
        if rows.size == 0:
            raise ValueError(
                "no valid samples: every row of X or y contains NaN or inf (for convolutional "
                "features, the first window_size rows are NaN; is n_samples > window_size?)"
            )
        used_counts = _rows_of(counts, rows)
        _check_spike_counts(used_counts)

        coef, intercept = self._starting_point(init_params, used_counts, n_features, n_neurons)
        del used_counts
        status = np.empty(n_neurons, dtype=np.int32)
        n_iter = np.empty(n_neurons, dtype=np.int32)
        gradient_norm = np.empty(n_neurons)
        objective = np.empty(n_neurons)
        n_hessian = np.empty(n_neurons, dtype=np.int32)
        if history:
            _core.fit_poisson_population_history(
                X.inputs, X.kernels, counts, mask, rows, coef, intercept, status, n_iter,
                gradient_norm, objective, n_hessian, tol, max_iter, n_threads,
            )  # fmt: skip
        else:
            _core.fit_poisson_population(
                design, counts, mask, rows, coef, intercept, status, n_iter, gradient_norm,
                objective, n_hessian, tol, max_iter, n_threads,
            )  # fmt: skip
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_iter_ = n_iter
        self.converged_ = status == 0
        self.fit_info_ = {
            "status": status,
            "n_iter": n_iter,
            "gradient_norm": gradient_norm,
            "objective": objective,
            "n_hessian": n_hessian,
            "n_samples_used": int(rows.size),
        }
        self._warn_about_failures(status, gradient_norm, tol, max_iter)
        return self

    @staticmethod
    def _starting_point(
        init_params: tuple | None, counts: NDArray, n_features: int, n_neurons: int
    ) -> tuple[NDArray, NDArray]:
        if init_params is None:
            coef = np.zeros((n_features, n_neurons), order="F")
            # The intercept-only MLE, log(mean count); a silent neuron starts at half a spike.
            mean_rate = np.maximum(counts.mean(axis=0), 0.5 / counts.shape[0])
            return coef, np.log(mean_rate)
        if not isinstance(init_params, (tuple, list)) or len(init_params) != 2:
            raise ValueError("init_params must be a tuple (coef, intercept)")
        coef = np.array(
            as_numeric_array(init_params[0], "init_params[0]"), dtype=np.float64, order="F"
        )
        intercept = np.array(as_numeric_array(init_params[1], "init_params[1]"), dtype=np.float64)
        if coef.shape != (n_features, n_neurons):
            raise ValueError(
                f"init_params[0] (coef) must have shape (n_features, n_neurons) = "
                f"({n_features}, {n_neurons}), got {coef.shape}"
            )
        if intercept.shape != (n_neurons,):
            raise ValueError(
                f"init_params[1] (intercept) must have shape (n_neurons,) = ({n_neurons},), "
                f"got {intercept.shape}"
            )
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise ValueError("init_params must be finite")
        return coef, intercept

    @staticmethod
    def _warn_about_failures(
        status: NDArray, gradient_norm: NDArray, tol: float, max_iter: int
    ) -> None:
        def neurons(code: int) -> list[int]:
            return np.flatnonzero(status == code).tolist()

        if at_infinity := neurons(3):
            warnings.warn(
                f"The maximum-likelihood estimate does not exist for neurons {at_infinity}: the "
                "neuron is silent or its spikes are perfectly separated by the features, so some "
                "coefficients diverge to -inf. The returned values are finite points where the "
                f"gradient is below tol={tol:g}; do not interpret their magnitude.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if stalled := neurons(1):
            worst = float(np.max(gradient_norm[status == 1]))
            warnings.warn(
                f"Neurons {stalled} did not converge within max_iter={max_iter} Newton "
                f"iterations (largest final max |gradient| = {worst:.3g}, tol = {tol:g}).",
                ConvergenceWarning,
                stacklevel=3,
            )
        if no_progress := neurons(2):
            worst = float(np.max(gradient_norm[status == 2]))
            warnings.warn(
                f"Neurons {no_progress} stopped because no step decreased the objective "
                f"(largest final max |gradient| = {worst:.3g}, tol = {tol:g}): the optimum is "
                "at the limit of float64 precision.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if failed := neurons(5) + neurons(4):
            warnings.warn(
                f"Neurons {failed} could not be fitted (internal error, e.g. out of memory); "
                "their coefficients are the starting point.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def predict(self, X: ArrayLike) -> NDArray:
        """Predicted firing rate (mean count per bin) of every neuron.

        Parameters
        ----------
        X : array-like or HistoryFeatures, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_neurons)
            ``exp(X @ coef_ + intercept_)``; NaN rows of X give NaN rows.
        """
        if not hasattr(self, "coef_"):
            raise RuntimeError("This PopulationGLM is not fitted yet: call fit(X, y) first")
        if isinstance(X, HistoryFeatures):
            if X.shape[1] != self.coef_.shape[0]:
                raise ValueError(
                    f"X must have shape (n_samples, {self.coef_.shape[0]}), got shape {X.shape}"
                )
            out = np.empty((X.shape[0], self.coef_.shape[1]), order="F")
            _core.history_linear_predictor(
                X.inputs, X.kernels, np.asfortranarray(self.coef_, dtype=np.float64),
                np.ascontiguousarray(self.intercept_, dtype=np.float64), out,
                resolve_n_threads(self.n_threads),
            )  # fmt: skip
            return np.exp(out, out=out)
        X = as_numeric_array(X, "X")
        if X.ndim != 2 or X.shape[1] != self.coef_.shape[0]:
            raise ValueError(
                f"X must have shape (n_samples, {self.coef_.shape[0]}), got shape {X.shape}"
            )
        return np.exp(X @ self.coef_ + self.intercept_)

    def __repr__(self) -> str:
        mask = "None" if self._feature_mask is None else f"<array {self._feature_mask.shape}>"
        return (
            f"PopulationGLM(observation_model={self.observation_model!r}, "
            f"regularizer={self.regularizer!r}, feature_mask={mask}, tol={self.tol!r}, "
            f"max_iter={self.max_iter!r}, n_threads={self.n_threads!r})"
        )
