"""GLMs for single neurons (``GLM``) and coupled populations (``PopulationGLM``).

Same names, shapes and semantics as NeMoS's ``nemos.glm``. Every neuron (column of ``y``) is an
independent GLM on its own masked set of features: Poisson (exp or softplus inverse link),
Bernoulli (logistic), Gamma (one_over_x or exp), NegativeBinomial (exp, fixed dispersion) or
Gaussian (identity), unpenalised or with a Ridge, Lasso, ElasticNet or GroupLasso penalty. The
fits run in parallel in C++, each by a safeguarded Newton method (proximal Newton for the
non-smooth penalties) to a gradient tolerance of 1e-8, i.e. to the exact optimum of NeMoS's
objective: per neuron, the mean negative log-likelihood over samples plus the penalty (no 1/n
factor on the penalty; the intercept is never penalised).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from . import _fitting, _persistence
from ._cv import CrossValidated
from ._fitting import FitResult
from ._history_features import HistoryFeatures
from ._native import core as _core
from ._progress import FitProgress
from ._threads import resolve_n_threads
from ._validation import as_numeric_array, check_positive_int
from .basis._pynapple import is_tsd
from .basis._pynapple import wrap as wrap_tsd
from .exceptions import NotFittedError
from .observation_models import (
    Observations,
    check_link_known,
    inverse_link,
    link_name,
    resolve_observation_model,
)
from .regularizer import GroupLasso, Regularizer, resolve_regularizer

__all__ = ["FIT_STATUS", "GLM", "GLMCV", "PopulationGLM", "PopulationGLMCV", "load_model"]

#: The largest iteration count the engine takes (a C int).
_INT_MAX = 2**31 - 1

#: What ``fit`` returns for a neuron whose maximum-likelihood estimate does not exist.
_NO_MLE = ("drop", "stop")

#: Meaning of the codes in ``fit_info_["status"]``: the C++ engine's ``FitStatus`` (``interrupted``
#: is never seen in a fitted model: the fit raises KeyboardInterrupt instead).
FIT_STATUS = {int(code): name for name, code in _core.FitStatus.__members__.items()}

#: NeMoS's solver names. Any is accepted and recorded; every fit is the exact optimum.
KNOWN_SOLVERS = frozenset(
    {"GradientDescent", "BFGS", "LBFGS", "LBFGSB", "NonlinearCG", "ProximalGradient", "SVRG",
     "ProxSVRG", "Newton"}
)  # fmt: skip

SCORE_TYPES = ("log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen")


class SolverSpec(NamedTuple):
    """NeMoS 0.2.9's ``solver_spec``: which algorithm, from which backend."""

    algo_name: str
    backend: str
    implementation: str


def _algo_name(solver_name: Any) -> Any:
    """Return the algorithm of a NeMoS solver name (0.2.8 also wrote ``"BFGS[optimistix]"``)."""
    if isinstance(solver_name, str) and solver_name.endswith("]") and "[" in solver_name:
        return solver_name[: solver_name.index("[")]
    return solver_name


def _default_solver(regularizer: Any) -> str:
    """NeMoS 0.2.9's default solver for a regularizer (recorded in ``solver_spec`` only)."""
    smooth = type(regularizer).__name__ in ("UnRegularized", "Ridge")
    return "LBFGS" if smooth else "ProximalGradient"


def _check_strength(strength: Any) -> None:
    if strength is None:
        return
    # A tuple is ElasticNet's (strength, ratio): each part is checked on its own.
    for part in strength if isinstance(strength, tuple) else (strength,):
        try:
            values = np.asarray(part, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"regularizer_strength must be a non-negative number or array, got {strength!r}"
            ) from None
        if not (np.all(np.isfinite(values)) and np.all(values >= 0)):
            raise ValueError(f"regularizer_strength must be finite and >= 0, got {strength!r}")


def _check_solver_kwargs(solver_kwargs: dict | None) -> dict:
    solver_kwargs = dict(solver_kwargs or {})
    unknown = set(solver_kwargs) - {"tol", "maxiter"}
    if unknown:
        raise ValueError(
            f"solver_kwargs accepts only 'tol' and 'maxiter', got unknown keys {sorted(unknown)}"
        )
    return solver_kwargs


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


def _plain(x: Any) -> Any:
    """Return the values of a pynapple Tsd/TsdFrame (unconverted); anything else unchanged."""
    return np.asarray(x.values) if is_tsd(x) else x


class _BaseGLM(BaseEstimator):
    """What GLM and PopulationGLM share: parameters, fitting, prediction and scores."""

    _population = False

    # -- parameters (validated on assignment, stored as given so that sklearn's clone works) --

    def _set_parameters(
        self, observation_model: Any, inverse_link_function: Any, regularizer: Any,
        regularizer_strength: Any, solver_name: str | None, solver_kwargs: dict | None,
        tol: float, max_iter: int, n_threads: int | None, verbose: bool | None = None,
        no_mle: str = "drop",
    ) -> None:  # fmt: skip
        # Each subclass spells out its own __init__ (scikit-learn reads the parameters from it).
        self.observation_model = observation_model
        self.inverse_link_function = inverse_link_function
        self._regularizer_strength = regularizer_strength
        _check_strength(regularizer_strength)
        self.regularizer = regularizer
        self.solver_name = solver_name
        self.solver_kwargs = solver_kwargs
        self.tol = tol
        self.max_iter = max_iter
        self.n_threads = n_threads
        if verbose is not None and not isinstance(verbose, (bool, np.bool_)):
            raise TypeError(f"verbose must be True, False or None, got {verbose!r}")
        self.verbose = verbose
        self.no_mle = no_mle

    @property
    def no_mle(self) -> str:
        """What ``fit`` returns for a neuron without a maximum-likelihood estimate."""
        return self._no_mle

    @no_mle.setter
    def no_mle(self, no_mle: str) -> None:
        if not isinstance(no_mle, str) or no_mle not in _NO_MLE:
            raise ValueError(f"no_mle must be one of {list(_NO_MLE)}, got {no_mle!r}")
        self._no_mle = no_mle

    @property
    def observation_model(self) -> Observations:
        """The observation model, as a :mod:`popglm.observation_models` instance."""
        return self._observation_model

    @observation_model.setter
    def observation_model(self, observation_model: Any) -> None:
        # The model/link pair is checked at fit: set_params may change either one first.
        self._observation_model = resolve_observation_model(observation_model)

    @property
    def inverse_link_function(self) -> Any:
        """``None`` (the model's default) or a supported inverse link (function or name)."""
        return self._inverse_link_function

    @inverse_link_function.setter
    def inverse_link_function(self, inverse_link_function: Any) -> None:
        check_link_known(inverse_link_function)
        self._inverse_link_function = inverse_link_function

    def _link(self) -> str:
        return link_name(self._observation_model, self._inverse_link_function)

    def _family(self) -> Any:
        return self._observation_model.family_code(self._link())

    @property
    def regularizer(self) -> Regularizer:
        """The penalty, as a :class:`popglm.regularizer.Regularizer` instance."""
        return self._regularizer

    @regularizer.setter
    def regularizer(self, regularizer: Any) -> None:
        self._regularizer = resolve_regularizer(regularizer)
        self._reconcile_strength()

    @property
    def regularizer_strength(self) -> Any:
        """Penalty strength: a scalar, or an array broadcastable to ``coef_``'s shape."""
        return self._regularizer_strength

    @regularizer_strength.setter
    def regularizer_strength(self, strength: Any) -> None:
        _check_strength(strength)
        self._regularizer_strength = strength
        self._reconcile_strength()

    def _reconcile_strength(self) -> None:
        # NeMoS's rules: a penalty without a strength uses 1.0; no penalty ignores a strength.
        if not hasattr(self, "_regularizer") or not hasattr(self, "_regularizer_strength"):
            return
        if self._regularizer.needs_strength and self._regularizer_strength is None:
            warnings.warn(
                f"regularizer_strength was not set for {self._regularizer!r}: defaulting to 1.0",
                UserWarning,
                stacklevel=4,
            )
            self._regularizer_strength = 1.0
        elif not self._regularizer.needs_strength and self._regularizer_strength is not None:
            warnings.warn(
                f"{self._regularizer!r} does not use regularizer_strength; it is set to None",
                UserWarning,
                stacklevel=4,
            )
            self._regularizer_strength = None

    @property
    def solver_name(self) -> str | None:
        """NeMoS's solver name, recorded: popglm always solves exactly by (proximal) Newton."""
        return self._solver_name

    @solver_name.setter
    def solver_name(self, solver_name: str | None) -> None:
        if solver_name is not None and _algo_name(solver_name) not in KNOWN_SOLVERS:
            raise ValueError(
                f"solver_name must be None or one of NeMoS's solvers {sorted(KNOWN_SOLVERS)}, "
                f"got {solver_name!r}"
            )
        self._solver_name = solver_name

    @property
    def solver_kwargs(self) -> dict:
        """NeMoS-style solver options: ``tol`` and ``maxiter`` (override ``tol``/``max_iter``)."""
        return self._solver_kwargs

    @solver_kwargs.setter
    def solver_kwargs(self, solver_kwargs: dict | None) -> None:
        _check_solver_kwargs(solver_kwargs)
        self._solver_kwargs = solver_kwargs

    def _solver_settings(self) -> tuple[float, int, int]:
        options = _check_solver_kwargs(self.solver_kwargs)
        tol = options.get("tol", self.tol)
        max_iter = options.get("maxiter", self.max_iter)
        if not (isinstance(tol, (float, int)) and np.isfinite(tol) and tol > 0):
            raise ValueError(f"tol must be a positive finite number, got {tol!r}")
        # The engine counts iterations in a C int: more than 2**31 - 1 is no limit either.
        max_iter = min(check_positive_int(max_iter, "max_iter", minimum=0), _INT_MAX)
        return float(tol), max_iter, resolve_n_threads(self.n_threads)

    # -- shapes: a GLM is a population of one neuron --

    def _as_population_y(self, y: ArrayLike) -> NDArray:
        y = as_numeric_array(y, "y")
        if self._population:
            if y.ndim != 2:
                raise ValueError(
                    f"y must be 2-D with shape (n_samples, n_neurons), got shape {y.shape}; "
                    "for a single neuron use popglm.glm.GLM or pass y[:, None]"
                )
            return y
        if y.ndim != 1:
            raise ValueError(
                f"y must be 1-D with shape (n_samples,), got shape {y.shape}; for several "
                "neurons use popglm.glm.PopulationGLM"
            )
        return y[:, None]

    def _population_mask(self, n_features: int, n_neurons: int) -> NDArray:
        return np.ones((n_features, n_neurons), dtype=np.uint8, order="F")

    def _coef_to_population(self, coef: NDArray) -> NDArray:
        return coef if self._population else coef[:, None]

    def _coef_from_population(self, coef: NDArray) -> NDArray:
        return coef if self._population else coef[:, 0]

    def _check_is_fit(self) -> None:
        if getattr(self, "coef_", None) is None or getattr(self, "intercept_", None) is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments."
            )

    def _fitted_state(self) -> _fitting.FittedState:
        """Return the fitted model as ``inference`` reads it."""
        self._check_is_fit()
        coef = self._coef_to_population(np.asarray(self.coef_))
        n_features, n_neurons = coef.shape
        coef_, intercept_ = self.coef_, self.intercept_
        return _fitting.FittedState(
            coef=coef,
            intercept=np.atleast_1d(self.intercept_),
            mask=self._fitted_mask(n_features, n_neurons),
            ridge=self._ridge_matrix(n_features, n_neurons),
            family=self._family(),
            link=self._link(),
            population=self._population,
            info=self.fit_info_,
            check_design=self._check_design,
            linear_predictor=lambda X: self._linear_predictor(X, coef_, intercept_),
        )

    def _fitted_mask(self, n_features: int, n_neurons: int) -> NDArray:
        """Return the features each neuron's fit used: the feature mask without dropped ones."""
        mask = self._population_mask(n_features, n_neurons).astype(bool)
        for j, dropped in enumerate(self.fit_info_.get("dropped_features", ())):
            mask[np.asarray(dropped, dtype=np.int64), j] = False
        return mask

    def _check_inputs(self, X: Any, y: ArrayLike) -> tuple[Any, NDArray]:
        """Return the checked design and y in population layout, for the same samples."""
        X = self._check_design(X)
        Y = self._as_population_y(y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X and y must have the same number of samples, got X.shape[0] = {X.shape[0]} "
                f"and y.shape[0] = {Y.shape[0]}"
            )
        return X, Y

    def _check_design(self, X: Any, name: str = "X") -> Any:
        if isinstance(X, HistoryFeatures):
            return X
        X = as_numeric_array(X, name)
        if X.ndim != 2:
            raise ValueError(
                f"{name} must be 2-D with shape (n_samples, n_features), got shape {X.shape}"
            )
        return X

    def _population_strength(self) -> Any:
        """Return the strength, a GLM's per-coefficient arrays (n_features,) as (n_features, 1)."""
        strength = self._regularizer_strength
        if self._population or isinstance(self._regularizer, GroupLasso):
            return strength

        def column(part: Any) -> Any:
            array = np.asarray(part, dtype=np.float64)
            return array[:, None] if array.ndim == 1 else part

        return (
            tuple(column(p) for p in strength) if isinstance(strength, tuple) else column(strength)
        )

    def _penalty_arrays(self, n_features: int, n_neurons: int) -> dict[str, NDArray]:
        """Return the penalty as the core's per-coefficient arrays (Regularizer.penalty_arrays)."""
        return self._regularizer.penalty_arrays(
            self._population_strength(), (n_features, n_neurons)
        )

    def _ridge_matrix(self, n_features: int, n_neurons: int) -> NDArray:
        """Per-coefficient ridge strengths, (n_features, n_neurons), or (0, 0) for none."""
        if not self._regularizer.needs_strength:
            return np.zeros((0, 0), order="F")
        return self._penalty_arrays(n_features, n_neurons)["l2"]

    # -- fitting --

    def initialize_params(
        self, X: ArrayLike, y: ArrayLike, init_params: tuple | None = None
    ) -> tuple[NDArray, NDArray]:
        """Return the starting point of ``fit``, ``(coef, intercept)``.

        Default: zero coefficients and each neuron's intercept-only MLE, log(mean count) over the
        rows without NaN/inf (a silent neuron starts at half a spike). ``init_params`` is checked
        and returned as float64 arrays.
        """
        X, Y = self._check_inputs(X, y)
        valid = np.isfinite(Y).all(axis=1)
        if isinstance(X, HistoryFeatures):
            valid[: X.window_size] = False
        else:
            valid &= np.isfinite(X).all(axis=1)
        coef, intercept = _fitting.start(self, init_params, Y[valid], X.shape[1], Y.shape[1])
        return self._coef_from_population(coef), intercept

    def fit(
        self, X: ArrayLike, y: ArrayLike, init_params: tuple | None = None, *, client: Any = None
    ) -> _BaseGLM:
        """Fit to the exact optimum (maximum likelihood, or maximum penalised likelihood).

        Rows with NaN or inf in ``X`` or ``y`` are dropped (the first ``window_size`` rows of
        convolutional features are NaN).

        Parameters
        ----------
        X : array-like or HistoryFeatures, shape (n_samples, n_features)
            Design matrix. A float64 array in C or Fortran order is used in place, not copied.
            ``basis.history_features(counts)`` gives the same fit without forming the matrix
            (for long recordings: memory O(n_samples x n_neurons) instead of
            O(n_samples x n_features)).
        y : array-like, shape (n_samples,) for GLM or (n_samples, n_neurons) for PopulationGLM
            Spike counts: non-negative integers.
        init_params : tuple (coef, intercept), optional
            Starting point (a warm start), shaped like ``coef_`` and ``intercept_``. Default:
            zero coefficients and each neuron's log mean count.
        client : dask.distributed.Client, optional
            Fit on this Dask cluster (``pip install popglm[dask]``): receiver-parallel for NumPy
            inputs (the same answer as the local fit), sample-parallel when ``X`` and ``y`` are
            dask arrays chunked along samples. A fit argument, not a model parameter, so
            ``get_params`` and ``clone`` never hold a live connection. See
            :func:`popglm.distributed.fit`.

        Returns
        -------
        self
        """
        X, y = _plain(X), _plain(y)  # pynapple Tsd/TsdFrame: their values
        if client is not None:
            from .distributed import fit as fit_distributed  # dask is imported only here

            return fit_distributed(self, X, y, client, init_params)
        problem = _fitting.prepare(self, X, y, init_params)
        progress = FitProgress(self.verbose, f"popglm {type(self).__name__}.fit")
        try:
            _fitting.presolve(problem)
            record = _fitting.run(problem, progress.callback)
            _fitting.settle(problem, record)
        finally:
            progress.close()
        result = _fitting.finish(problem, record)
        self._set_fitted(result)
        _fitting.warn_about_failures(result.info, problem.settings)
        return self

    @property
    def dof_resid_(self) -> NDArray:
        """Residual degrees of freedom per neuron (NeMoS's definition: ``_fitting.residual_dof``).

        For an unregularised Poisson, Bernoulli or NegativeBinomial fit it needs the rank of X,
        which is computed on first access from the X passed to ``fit`` (held by weak
        reference, never copied): read it while that X still exists.
        """
        if getattr(self, "_dof_resid", None) is None:
            pending = getattr(self, "_dof_pending", None)
            if pending is None:
                raise NotFittedError(
                    f"This {type(self).__name__} instance is not fitted yet: dof_resid_ is set by fit"
                )
            design = pending[0]()
            if design is None:
                raise AttributeError(
                    "dof_resid_ needs the rank of the X passed to fit, which no longer exists; "
                    "read dof_resid_ while that X is alive (it is computed on first access)"
                )
            self._dof_resid = _fitting.residual_dof(self, design, pending[1], pending[2])
            self._dof_pending = None
        return self._dof_resid

    def _mean_response(self, eta: NDArray) -> NDArray:
        return inverse_link(self._link())(eta)

    # -- using a fitted model --

    def _linear_predictor(self, X: Any, coef: NDArray, intercept: NDArray) -> NDArray:
        """(n_samples, n_neurons) linear predictor; NaN rows of X give NaN rows."""
        coef = self._coef_to_population(np.asarray(coef, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
        if isinstance(X, HistoryFeatures):
            if X.shape[1] != coef.shape[0]:
                raise ValueError(
                    f"X must have shape (n_samples, {coef.shape[0]}), got shape {X.shape}"
                )
            out = np.empty((X.shape[0], coef.shape[1]), order="F")
            _core.history_linear_predictor(
                X.inputs, X.kernels, np.asfortranarray(coef), np.ascontiguousarray(intercept),
                out, resolve_n_threads(self.n_threads),
            )  # fmt: skip
            return out
        X = self._check_design(X)
        if X.shape[1] != coef.shape[0]:
            raise ValueError(f"X must have shape (n_samples, {coef.shape[0]}), got shape {X.shape}")
        return X @ coef + intercept

    def predict(self, X: ArrayLike) -> NDArray:
        """Predicted firing rate (mean count per bin).

        Parameters
        ----------
        X : array-like, HistoryFeatures or pynapple TsdFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,) for GLM or (n_samples, n_neurons) for PopulationGLM
            ``exp(X @ coef_ + intercept_)``; NaN rows of X give NaN rows. A pynapple Tsd
            (GLM) or TsdFrame (PopulationGLM) on X's time index when X is a pynapple object.
        """
        self._check_is_fit()
        time_index = (np.asarray(X.t), X.time_support) if is_tsd(X) else None
        rate = self._mean_response(self._linear_predictor(_plain(X), self.coef_, self.intercept_))
        # A pynapple input gives a pynapple output on the same time index, as NeMoS does.
        return wrap_tsd(rate if self._population else rate[:, 0], time_index)

    def _scored_rows(self, X: Any, y: ArrayLike) -> tuple[NDArray, NDArray]:
        """Rates and counts on the rows where X and y are finite (NeMoS drops NaN rows)."""
        X, y = _plain(X), _plain(y)
        Y = self._as_population_y(y).astype(np.float64)
        rate = self._mean_response(self._linear_predictor(X, self.coef_, self.intercept_))
        if rate.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X and y must have the same number of samples, got {rate.shape[0]} and "
                f"{Y.shape[0]}"
            )
        if Y.shape[1] != rate.shape[1]:
            raise ValueError(
                f"y must have {rate.shape[1]} neurons (columns) for this model, got {Y.shape[1]}"
            )
        keep = np.isfinite(rate).all(axis=1) & np.isfinite(Y).all(axis=1)
        if not keep.any():
            raise ValueError("no valid samples: every row of X or y contains NaN or inf")
        self._observation_model.check_y(Y[keep])
        return rate[keep], Y[keep]

    def score(
        self,
        X: ArrayLike,
        y: ArrayLike,
        score_type: str = "log-likelihood",
        aggregate_sample_scores: Callable = np.mean,
        per_neuron: bool = False,
    ) -> float | NDArray:
        r"""Goodness of fit, with NeMoS's definitions (higher is better).

        Parameters
        ----------
        X : array-like or HistoryFeatures, shape (n_samples, n_features)
        y : array-like, shape like the fitted ``y``
            Spike counts. Rows with NaN in ``X`` or ``y`` are dropped.
        score_type : {"log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen"}
            ``"log-likelihood"``: aggregate of ``y log(rate) - rate - log(y!)``.
            ``"pseudo-r2-McFadden"``: ``1 - LL_model / LL_null``, the null model predicting
            each neuron's mean count. ``"pseudo-r2-Cohen"``: ``(D_null - D_model) / D_null``
            with Poisson deviances.
        aggregate_sample_scores : callable
            Reduces the per-sample (and per-neuron) scores; default: the mean over all of them.
        per_neuron : bool
            A popglm addition: one score per neuron, ``aggregate_sample_scores`` applied to each
            neuron's samples alone (for the pseudo-R2 scores, each neuron's own ratio).

        Returns
        -------
        float, or ndarray of shape (n_neurons,) with ``per_neuron``
        """
        self._check_is_fit()
        if score_type not in SCORE_TYPES:
            raise ValueError(f"score_type must be one of {list(SCORE_TYPES)}, got {score_type!r}")
        rate, Y = self._scored_rows(X, y)
        null_rate = np.broadcast_to(Y.mean(axis=0), Y.shape)
        observation = self._observation_model
        scale = np.atleast_1d(self.scale_)

        def log_likelihood(mean: NDArray) -> NDArray:
            values = observation.log_likelihood(Y, mean, scale)
            return values if self._population else values[:, 0]

        def deviance(mean: NDArray) -> NDArray:
            values = observation.deviance(Y, mean, scale)
            return values if self._population else values[:, 0]

        if per_neuron:
            inner = aggregate_sample_scores

            def aggregate_sample_scores(values: NDArray) -> NDArray:
                columns = values if values.ndim == 2 else values[:, None]
                return np.array([inner(columns[:, j]) for j in range(columns.shape[1])])

        if score_type == "log-likelihood":
            return _as_score(aggregate_sample_scores(log_likelihood(rate)))
        if score_type == "pseudo-r2-McFadden":
            model = aggregate_sample_scores(log_likelihood(rate))
            null = aggregate_sample_scores(log_likelihood(null_rate))
            return _as_score(1.0 - model / null)
        model = aggregate_sample_scores(deviance(rate))
        null = aggregate_sample_scores(deviance(null_rate))
        return _as_score((null - model) / null)

    def compute_loss(self, params: tuple, X: ArrayLike, y: ArrayLike) -> float:
        """Return the objective ``fit`` minimises, at ``params = (coef, intercept)``.

        Summed over neurons: the mean over samples of ``rate - y log(rate)`` (the Poisson negative
        log-likelihood without the ``log(y!)`` constant) plus the penalty. Rows with NaN are
        dropped.
        """
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise ValueError("params must be a tuple (coef, intercept)")
        coef = np.asarray(as_numeric_array(params[0], "params[0]"), dtype=np.float64)
        intercept = np.atleast_1d(np.asarray(as_numeric_array(params[1], "params[1]"), float))
        X, y = _plain(X), _plain(y)
        eta = self._linear_predictor(X, coef, intercept)
        Y = self._as_population_y(y).astype(np.float64)
        keep = np.isfinite(eta).all(axis=1) & np.isfinite(Y).all(axis=1)
        eta, Y = eta[keep], Y[keep]
        if self._family() == _core.ObservationFamily.poisson_exp:
            loss = float(np.sum(np.mean(np.exp(eta) - Y * eta, axis=0)))
        else:
            mean = self._mean_response(eta)
            loss = float(np.sum(np.mean(self._observation_model.nll(Y, mean), axis=0)))
        if self._regularizer.needs_strength:
            loss += self._regularizer.penalty(
                self._coef_to_population(coef), self._population_strength()
            )
        return loss

    def simulate(self, random_key: Any, feedforward_input: ArrayLike) -> tuple[NDArray, NDArray]:
        """Spike counts drawn from the fitted model for the given features.

        Parameters
        ----------
        random_key : int, numpy.random.Generator or None
            Seed or generator (NeMoS takes a JAX key here; popglm draws with NumPy).
        feedforward_input : array-like, shape (n_samples, n_features)

        Returns
        -------
        spikes, rates : ndarray
            Shaped like ``predict``'s output.
        """
        rates = self.predict(feedforward_input)
        if np.isnan(rates).any():
            raise ValueError("feedforward_input contains NaN rows; drop them before simulating")
        rng = _as_generator(random_key, "random_key")
        scale = self.scale_ if self._population else np.atleast_1d(self.scale_)[0]
        return self._observation_model.sample(rng, rates, scale), rates

    def initialize_optimizer_and_state(
        self, init_params: tuple | None, X: ArrayLike, y: ArrayLike
    ) -> dict[str, Any]:
        """Prepare step-by-step fitting with ``update`` (NeMoS 0.2.9's iterative API).

        Returns the solver state: a dict with the iteration count and the last step's largest
        (sub)gradient entry. Also sets ``optimizer_init_state``, ``optimizer_update`` and
        ``optimizer_run``. NeMoS 0.2.8 spelled it ``initialize_solver_and_state(X, y,
        init_params)`` (the arguments in another order).
        """
        self.initialize_params(X, y, init_params)  # validates shapes and values
        self._optimizer_ready = True
        return self._optimizer_init_state(init_params, X, y)

    def initialize_solver_and_state(
        self, X: ArrayLike, y: ArrayLike, init_params: tuple | None = None
    ) -> dict[str, Any]:
        """NeMoS 0.2.8's ``initialize_optimizer_and_state``, with ``init_params`` last.

        Deprecated: NeMoS 0.2.9 removed it.
        """
        warnings.warn(
            "initialize_solver_and_state(X, y, init_params) was removed in NeMoS 0.2.9; use "
            "initialize_optimizer_and_state(init_params, X, y)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.initialize_optimizer_and_state(init_params, X, y)

    def _optimizer_init_state(self, init_params: tuple | None, X: ArrayLike, y: ArrayLike) -> dict:
        return {"iteration": 0, "gradient_norm": np.inf}

    def _optimizer_update(
        self, params: tuple, opt_state: dict, X: ArrayLike, y: ArrayLike, *args: Any, **kwargs: Any
    ) -> tuple[tuple[NDArray, NDArray], dict[str, Any], None]:
        params, state = self.update(params, opt_state, X, y)
        return params, state, None

    def _optimizer_run(
        self, init_params: tuple | None, X: ArrayLike, y: ArrayLike, *args: Any, **kwargs: Any
    ) -> tuple[tuple[NDArray, NDArray], dict[str, Any], None]:
        self.fit(X, y, init_params=init_params)
        state = {
            "iteration": int(np.max(self.fit_info_["n_iter"])),
            "gradient_norm": float(np.max(self.fit_info_["gradient_norm"])),
        }
        return (self.coef_, self.intercept_), state, None

    def _optimizer_part(self, name: str) -> Callable | None:
        """Return the bound ``_optimizer_<name>``, or None before it is initialised."""
        ready = getattr(self, "_optimizer_ready", False)
        return getattr(self, f"_optimizer_{name}") if ready else None

    @property
    def optimizer_init_state(self) -> Callable | None:
        """``(init_params, X, y) -> state``; None until ``initialize_optimizer_and_state``."""
        return self._optimizer_part("init_state")

    @property
    def optimizer_update(self) -> Callable | None:
        """``(params, state, X, y) -> (params, state, aux)``: one exact (proximal) Newton step."""
        return self._optimizer_part("update")

    @property
    def optimizer_run(self) -> Callable | None:
        """``(init_params, X, y) -> (params, state, aux)``: a whole fit from ``init_params``."""
        return self._optimizer_part("run")

    def _renamed_in_029(self, name: str) -> Callable | None:
        warnings.warn(
            f"solver_{name} was renamed optimizer_{name} in NeMoS 0.2.9",
            DeprecationWarning,
            stacklevel=3,
        )
        return self._optimizer_part(name)

    @property
    def solver_init_state(self) -> Callable | None:
        """NeMoS 0.2.8's name of ``optimizer_init_state`` (deprecated)."""
        return self._renamed_in_029("init_state")

    @property
    def solver_update(self) -> Callable | None:
        """NeMoS 0.2.8's name of ``optimizer_update`` (deprecated)."""
        return self._renamed_in_029("update")

    @property
    def solver_run(self) -> Callable | None:
        """NeMoS 0.2.8's name of ``optimizer_run`` (deprecated)."""
        return self._renamed_in_029("run")

    @property
    def solver_spec(self) -> SolverSpec:
        """NeMoS 0.2.9's description of the solver: ``algo_name``, ``backend``, ``implementation``.

        ``algo_name`` is the NeMoS solver recorded in ``solver_name`` (or NeMoS 0.2.9's default
        for the regularizer); popglm solves every fit exactly by (proximal) Newton in C++.
        """
        name = _algo_name(self.solver_name) or _default_solver(self._regularizer)
        return SolverSpec(algo_name=name, backend="popglm", implementation="exact Newton (C++)")

    def update(
        self, params: tuple, opt_state: dict, X: ArrayLike, y: ArrayLike, *args: Any, **kwargs: Any
    ) -> tuple[tuple[NDArray, NDArray], dict[str, Any]]:
        """Take one Newton (or proximal Newton) iteration from ``params``.

        Returns ``((coef, intercept), state)`` and leaves the model fitted at the new point, as
        NeMoS's ``update`` does. Each call is one exact iteration, so a handful of calls reach
        the optimum.
        """
        if not isinstance(opt_state, dict) or "iteration" not in opt_state:
            raise ValueError("opt_state must come from initialize_optimizer_and_state")
        X, y = _plain(X), _plain(y)
        problem = _fitting.prepare(self, X, y, params)
        problem.settings["max_iter"] = 1
        # One iteration of the fit's own problem; one step is not convergence: no warning.
        self._set_fitted(_fitting.finish(problem, _fitting.run(problem)))
        state = {
            "iteration": opt_state["iteration"] + 1,
            "gradient_norm": float(np.max(self.fit_info_["gradient_norm"])),
        }
        return (self.coef_, self.intercept_), state

    def fit_path(self, X: ArrayLike, y: ArrayLike, strengths: ArrayLike) -> dict[str, NDArray]:
        """Fit along a path of penalty strengths, each fit warm-started from the previous one.

        The path is solved from the strongest penalty to the weakest (as glmnet does: sparse
        solutions first, each a close start for the next); results are returned in the order of
        ``strengths``. The model is left fitted at the last strength given, and its
        ``regularizer_strength`` set to it.

        Parameters
        ----------
        X, y : as for ``fit``
        strengths : array-like of float, shape (n_strengths,)
            Scalar strengths (for ElasticNet the ratio of ``regularizer_strength`` is kept).

        Returns
        -------
        dict
            ``strengths``; ``coef`` (n_strengths, *coef_.shape); ``intercept`` (n_strengths,
            *intercept_.shape); ``n_iter`` and ``converged`` per strength (and neuron).
        """
        if not self._regularizer.needs_strength:
            raise ValueError(
                f"fit_path needs a penalised model, got regularizer {self._regularizer!r}"
            )
        values = np.asarray(as_numeric_array(strengths, "strengths"), dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values) & (values >= 0)):
            raise ValueError(
                f"strengths must be a non-empty 1-D array of finite values >= 0, got {strengths!r}"
            )
        ratio = None
        if isinstance(self._regularizer_strength, tuple):
            ratio = self._regularizer_strength[1]
        original = self._regularizer_strength
        results: list[tuple] = [None] * values.size  # type: ignore[list-item]
        start = None
        order = np.argsort(-values, kind="stable")
        self._path_curvature = _core.CurvatureCache()
        try:
            for index in order:
                strength = float(values[index])
                self._regularizer_strength = strength if ratio is None else (strength, ratio)
                self.fit(X, y, init_params=start)
                start = (self.coef_, self.intercept_)
                results[index] = (
                    np.copy(self.coef_), np.copy(self.intercept_), np.copy(self.n_iter_),
                    np.copy(self.converged_),
                )  # fmt: skip
        finally:
            self._regularizer_strength = original
            del self._path_curvature
        last = values.size - 1
        self._regularizer_strength = (
            float(values[last]) if ratio is None else (float(values[last]), ratio)
        )
        if order[-1] != last:  # else the model is already fitted at the last strength given
            self.fit(X, y, init_params=(results[last][0], results[last][1]))
        return {
            "strengths": values,
            "coef": np.stack([r[0] for r in results]),
            "intercept": np.stack([r[1] for r in results]),
            "n_iter": np.stack([np.asarray(r[2]) for r in results]),
            "converged": np.stack([np.asarray(r[3]) for r in results]),
        }

    # -- inference --

    def inference(self, X: ArrayLike, n_threads: int | None = None) -> Any:
        """Compute standard errors, Wald tests and confidence intervals at the fitted optimum.

        The covariance of each neuron's estimate is the inverse of the observed Fisher
        information, the Hessian of its (penalised) negative log-likelihood summed over the rows
        used by ``fit`` (for the Poisson GLM with exp link the observed and expected
        informations coincide). For a Ridge fit it is the inverse penalised Hessian, the
        Bayesian posterior covariance under the matching Gaussian prior.

        Parameters
        ----------
        X : array-like or HistoryFeatures
            The design the model was fitted on.
        n_threads : int, optional
            Threads for the per-neuron Hessians (default: the model's ``n_threads``).

        Returns
        -------
        popglm.inference.CoefficientInference
        """
        from .inference import coefficient_inference

        self._check_is_fit()
        return coefficient_inference(self, X, self.n_threads if n_threads is None else n_threads)

    # -- persistence --

    def save_params(self, filename: str | Path) -> None:
        """Save the parameters and fitted coefficients to an ``.npz`` file (no pickle).

        ``popglm.load_model(filename)`` rebuilds the model, with ``scale_``, ``n_iter_``,
        ``converged_``, ``fit_info_`` and (when it was known or its X is still alive)
        ``dof_resid_``: the loaded model predicts, scores and simulates like the fitted one.
        """
        _persistence.save(self, filename)

    def _set_fitted(self, result: FitResult) -> None:
        """Make a fit's result the model's fitted state: the only writer of that state.

        Used after a local or a distributed fit and on load. Adds the ``fit_info_`` entries
        derived from "status".
        """
        self.coef_ = self._coef_from_population(result.coef)
        self.intercept_ = result.intercept
        if result.scale is not None:
            # (n_neurons,), and (1,) for GLM, as NeMoS.
            self.scale_ = np.asarray(result.scale, dtype=np.float64)
        if result.info is not None:
            info = result.info
            status = info["status"]
            info["converged"] = status == int(_core.FitStatus.converged)
            info["reason"] = np.array([FIT_STATUS[int(code)] for code in status])
            self.fit_info_ = info
            self.n_iter_ = info["n_iter"] if self._population else int(info["n_iter"][0])
            self.converged_ = info["converged"] if self._population else bool(info["converged"][0])
        self._dof_resid, self._dof_pending = result.dof_resid, result.dof_pending


def _as_score(value: Any) -> Any:
    array = np.asarray(value)
    return float(array) if array.ndim == 0 else array


def _as_generator(random_key: Any, name: str) -> np.random.Generator:
    if random_key is None or isinstance(random_key, (int, np.integer)):
        return np.random.default_rng(random_key)
    if isinstance(random_key, np.random.Generator):
        return random_key
    raise TypeError(
        f"{name} must be an int seed, a numpy.random.Generator or None, got "
        f"{type(random_key).__name__}"
    )


class GLM(_BaseGLM):
    """A GLM for one neuron (NeMoS's ``nemos.glm.GLM``), fitted exactly by Newton.

    By default ``y[t] ~ Poisson(exp(intercept_[0] + X[t] @ coef_))``; the other observation
    models and inverse links below replace the distribution and the exp.

    Parameters
    ----------
    observation_model : str or Observations
        ``"Poisson"`` (default), ``"Bernoulli"``, ``"Gamma"``, ``"NegativeBinomial"`` or
        ``"Gaussian"``, or an instance from :mod:`popglm.observation_models`.
    inverse_link_function : callable or str, optional
        ``None`` for the model's default, or a function or name among those the model supports:
        Poisson ``exp``/``softplus``, Bernoulli ``logistic``, Gamma ``one_over_x``/``exp``,
        NegativeBinomial ``exp``, Gaussian ``identity``.
    regularizer : str or Regularizer, optional
        ``None``/``"UnRegularized"``, ``"Ridge"``, ``"Lasso"``, ``"ElasticNet"`` or
        ``"GroupLasso"`` (an instance with its group mask), or an instance from
        :mod:`popglm.regularizer`.
    regularizer_strength : float or array-like, optional
        The penalty's strength: a scalar or one value per coefficient (shape ``(n_features,)``;
        per group for GroupLasso).
    solver_name : str, optional
        Accepted for NeMoS compatibility and recorded; popglm always solves with Newton.
    solver_kwargs : dict, optional
        ``tol`` and ``maxiter`` override ``tol`` and ``max_iter``.
    tol : float
        Stop when ``max |gradient of the objective| <= tol``.
    max_iter : int
        Newton iterations allowed.
    n_threads : int, optional
        Threads for the kernels; the results do not depend on it.
    verbose : bool, optional
        Show a progress bar (tqdm if installed) for fits longer than a second: ``None`` (default)
        when stderr is a terminal or in a notebook, ``True`` always, ``False`` never.
    no_mle : {"drop", "stop"}
        What ``fit`` returns for a neuron whose maximum-likelihood estimate does not exist (a
        silent neuron, or spikes separated by some features: e.g. a rare sender whose few
        spikes never precede the receiver's). Whether it exists is decided by a certificate (a
        direction of recession, or a dual certificate that none exists), never guessed.
        ``"drop"`` (default): the features that carry each direction are removed for that
        neuron and the rest is
        fitted to its exact MLE, so coefficients are finite and predictions on new data stay
        bounded (``fit_info_["dropped_features"]`` lists them; a silent neuron keeps only its
        intercept, at half a spike over the fitted bins). ``"stop"``: the finite point where the
        iterates were stopped, whose coefficients along the direction are arbitrary.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
    intercept_ : ndarray, shape (1,)
    scale_ : ndarray, shape (1,)
        The model's scale: 1 for Poisson and Bernoulli, the fixed dispersion for
        NegativeBinomial, NeMoS's Pearson estimate for Gamma and Gaussian.
    dof_resid_ : ndarray, shape (1,)
        Residual degrees of freedom, as NeMoS: n - rank(X) - 1 (n - n_features - 1 with Ridge).
    n_iter_ : int
    converged_ : bool
    fit_info_ : dict
        See :class:`PopulationGLM`.

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> y = rng.poisson(np.exp(0.2 * X[:, 0]))
    >>> model = nmo.glm.GLM().fit(X, y)
    >>> model.coef_.shape, model.intercept_.shape
    ((3,), (1,))
    """

    _population = False

    def __init__(
        self,
        observation_model: Any = "Poisson",
        inverse_link_function: Any = None,
        regularizer: Any = None,
        regularizer_strength: Any = None,
        solver_name: str | None = None,
        solver_kwargs: dict | None = None,
        *,
        tol: float = 1e-8,
        max_iter: int = 100,
        n_threads: int | None = None,
        verbose: bool | None = None,
        no_mle: str = "drop",
    ) -> None:
        self._set_parameters(
            observation_model, inverse_link_function, regularizer, regularizer_strength,
            solver_name, solver_kwargs, tol, max_iter, n_threads, verbose, no_mle,
        )  # fmt: skip


class PopulationGLM(_BaseGLM):
    """A GLM for each neuron of a population, fitted jointly and exactly.

    By default, for neuron ``j``: ``y[t, j] ~ Poisson(exp(intercept_[j] + X[t] @ coef_[:, j]))``,
    with ``coef_[i, j] = 0`` wherever ``feature_mask[i, j] == 0``; the other observation models
    and inverse links below replace the distribution and the exp. Each neuron is fitted by Newton's
    method (Cholesky of the Hessian, a backtracking line search, and a truncated
    eigendecomposition when the design is rank deficient, which returns the minimum-norm MLE)
    until the largest gradient entry of its objective is ``<= tol``.

    Parameters
    ----------
    observation_model : str or Observations
        ``"Poisson"`` (default), ``"Bernoulli"``, ``"Gamma"``, ``"NegativeBinomial"`` or
        ``"Gaussian"``, or an instance from :mod:`popglm.observation_models`.
    inverse_link_function : callable or str, optional
        ``None`` for the model's default, or a function (``numpy.exp``, ``jax.numpy.exp``, ...)
        or name among those the model supports: Poisson ``exp``/``softplus``, Bernoulli
        ``logistic``, Gamma ``one_over_x``/``exp``, NegativeBinomial ``exp``, Gaussian
        ``identity``.
    regularizer : str or Regularizer, optional
        ``None``/``"UnRegularized"``, ``"Ridge"``, ``"Lasso"``, ``"ElasticNet"`` or
        ``"GroupLasso"`` (an instance with its group mask), or an instance from
        :mod:`popglm.regularizer`.
    regularizer_strength : float or array-like, optional
        The penalty's strength: a scalar, or per coefficient (broadcastable to
        ``(n_features, n_neurons)``; for GroupLasso per group, ``(n_groups,)``, or per group
        and neuron, ``(n_groups, n_neurons)``).
    solver_name : str, optional
        Accepted for NeMoS compatibility and recorded; popglm always solves with Newton.
    solver_kwargs : dict, optional
        NeMoS-style solver options: ``tol`` and ``maxiter`` override ``tol`` and ``max_iter``.
    feature_mask : array-like of 0/1, shape (n_features, n_neurons), optional
        Which features enter which neuron's model. Default: all features for all neurons.
    tol : float
        Stop when ``max |gradient of the per-neuron objective| <= tol``.
    max_iter : int
        Newton iterations allowed per neuron.
    n_threads : int, optional
        Threads for the per-neuron solves; default: all cores this process may use, within
        ``OMP_NUM_THREADS`` and threadpoolctl's limits. The results do not depend on it.
    verbose : bool, optional
        Show a progress bar (tqdm if installed: neurons done, current largest ``max |gradient|``)
        for fits longer than a second: ``None`` (default) when stderr is a terminal or in a
        notebook, ``True`` always, ``False`` never.
    no_mle : {"drop", "stop"}
        What ``fit`` returns for a neuron whose maximum-likelihood estimate does not exist (a
        silent neuron, or spikes separated by some features: e.g. a rare sender whose few
        spikes never precede the receiver's). Whether it exists is decided by a certificate (a
        direction of recession, or a dual certificate that none exists), never guessed.
        ``"drop"`` (default): the features that carry each direction are removed for that
        neuron and the rest is
        fitted to its exact MLE, so coefficients are finite and predictions on new data stay
        bounded (``fit_info_["dropped_features"]`` lists them; a silent neuron keeps only its
        intercept, at half a spike over the fitted bins). ``"stop"``: the finite point where the
        iterates were stopped, whose coefficients along the direction are arbitrary.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features, n_neurons)
    intercept_ : ndarray, shape (n_neurons,)
    scale_ : ndarray, shape (n_neurons,)
        Per neuron, as for GLM.
    dof_resid_ : ndarray, shape (n_neurons,)
        Residual degrees of freedom, as NeMoS: n - rank(X) - 1 (n - n_features - 1 with Ridge).
    n_iter_ : ndarray of int, shape (n_neurons,)
        Newton iterations per neuron.
    converged_ : ndarray of bool, shape (n_neurons,)
    fit_info_ : dict of ndarray
        Per neuron: ``status`` (codes in ``popglm.glm.FIT_STATUS``), ``converged`` (bool),
        ``reason`` (the status as text: "converged", "max_iter_reached", "line_search_failed",
        "mle_at_infinity", "no_valid_rows", "internal_error"), ``n_iter``, ``gradient_norm``
        (final ``max |gradient|``), ``objective`` (final objective without the log(y!) term),
        ``n_hessian`` (Hessians formed, the dominant cost), plus ``n_samples_used`` (rows left
        after dropping NaN/inf) and ``n_threads`` (threads the solver used). A neuron whose MLE
        does not exist ("mle_at_infinity": silent, or perfectly separated) returns a finite
        point along the diverging direction, where the objective exceeds its infimum by about
        ``gradient_norm``; that norm may be above ``tol`` when the divergence was confirmed
        first.

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

    _population = True

    def __init__(
        self,
        observation_model: Any = "Poisson",
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
        verbose: bool | None = None,
        no_mle: str = "drop",
    ) -> None:
        self._set_parameters(
            observation_model, inverse_link_function, regularizer, regularizer_strength,
            solver_name, solver_kwargs, tol, max_iter, n_threads, verbose, no_mle,
        )  # fmt: skip
        self.feature_mask = feature_mask

    @property
    def feature_mask(self) -> NDArray | None:
        """Mask of shape ``(n_features, n_neurons)``: 1 keeps a feature for a neuron, 0 drops it."""
        return self._feature_mask

    @feature_mask.setter
    def feature_mask(self, feature_mask: ArrayLike | None) -> None:
        self._feature_mask = _check_feature_mask(feature_mask)

    def _population_mask(self, n_features: int, n_neurons: int) -> NDArray:
        if self._feature_mask is None:
            return super()._population_mask(n_features, n_neurons)
        if self._feature_mask.shape != (n_features, n_neurons):
            raise ValueError(
                "feature_mask must have shape (n_features, n_neurons) = "
                f"({n_features}, {n_neurons}), got {self._feature_mask.shape}"
            )
        return np.asfortranarray(self._feature_mask, dtype=np.uint8)

    def __repr__(self) -> str:
        mask = "None" if self._feature_mask is None else f"<array {self._feature_mask.shape}>"
        return (
            f"PopulationGLM(observation_model={self.observation_model!r}, "
            f"regularizer={self.regularizer!r}, regularizer_strength="
            f"{self.regularizer_strength!r}, feature_mask={mask}, tol={self.tol!r}, "
            f"max_iter={self.max_iter!r}, n_threads={self.n_threads!r}, verbose={self.verbose!r})"
        )


_CV_DOC = """

    Parameters
    ----------
    observation_model, inverse_link_function, tol, max_iter, n_threads, verbose, no_mle
        As for {plain}.
    regularizer : str or Regularizer
        ``"Ridge"`` (default), ``"Lasso"``, ``"ElasticNet"`` or ``"GroupLasso"`` (or an
        instance).
    regularizer_strength : array-like of float, optional
        The strengths to try (1-D, > 0; for ElasticNet ``(grid, ratio)``). None (default): a
        log grid of ``n_strengths`` from the strength at which the penalty dominates (Lasso,
        ElasticNet, GroupLasso: the smallest that zeroes every penalised coefficient; Ridge: 10
        times the median curvature of the loss along a feature at the intercept-only fit) down
        to 1e-4 of it.
    n_strengths : int
        Strengths in the default grid.
    cv : int or scikit-learn splitter
        An int gives that many contiguous blocks of time bins (spike trains are autocorrelated:
        never shuffled); or any object with scikit-learn's ``split``. The features are computed
        once from the whole recording and only rows are split, so the history features of a
        test block's first bins see the end of the previous block: ``gap`` leaves bins out.
    scoring : {{"log-likelihood", "deviance"}}
        Held-out mean per bin, per neuron (deviance negated: higher is better).
    gap : int
        Bins left out of training on each side of every test block (e.g. the basis'
        ``window_size``, so that no training bin's history overlaps a test bin).
{extra}
    Attributes
    ----------
    regularizer_strength_ : {chosen}
        The strength chosen{per}: the best mean held-out score over the folds (the strongest
        among equals).
    cv_strengths_ : ndarray, shape (n_strengths,)
        The grid, strongest first.
    cv_scores_ : ndarray, shape {scores}
        Held-out scores per strength and fold{per}.
    coef_, intercept_, scale_, fit_info_, ...
        Those of {plain} refitted on every row with the chosen strength; ``predict``,
        ``score``, ``inference`` (Ridge) and ``save_params`` (a {plain} file with those
        strengths) work as for it.

    Notes
    -----
    Folds are sets of rows of one prepared problem (no copy of X, also for HistoryFeatures);
    each fold's path runs from strong to weak, each fit warm-started from the previous one, all
    neurons at once.
"""


class GLMCV(CrossValidated, GLM):
    """A single-neuron GLM whose penalty strength is chosen by cross-validation (as RidgeCV)."""

    __doc__ += _CV_DOC.format(
        plain="GLM", extra="", chosen="float", per="", scores="(n_strengths, n_folds)"
    )
    _plain_class = GLM

    def __init__(
        self,
        observation_model: Any = "Poisson",
        inverse_link_function: Any = None,
        regularizer: Any = "Ridge",
        regularizer_strength: Any = None,
        n_strengths: int = 20,
        cv: Any = 5,
        scoring: str = "log-likelihood",
        gap: int = 0,
        *,
        tol: float = 1e-8,
        max_iter: int = 100,
        n_threads: int | None = None,
        verbose: bool | None = None,
        no_mle: str = "drop",
    ) -> None:
        self._require_penalty(regularizer)
        self._set_parameters(
            observation_model, inverse_link_function, regularizer, 1.0, None, None, tol,
            max_iter, n_threads, verbose, no_mle,
        )  # fmt: skip
        self._set_cv_parameters(regularizer_strength, n_strengths, cv, scoring, gap)


class PopulationGLMCV(CrossValidated, PopulationGLM):
    """A PopulationGLM whose penalty strength is chosen by cross-validation for each neuron."""

    __doc__ += _CV_DOC.format(
        plain="PopulationGLM",
        extra="    feature_mask : array-like of 0/1, shape (n_features, n_neurons), optional\n"
        "        As for PopulationGLM.\n",
        chosen="ndarray, shape (n_neurons,)",
        per=" for each neuron",
        scores="(n_strengths, n_folds, n_neurons)",
    )
    _plain_class = PopulationGLM

    def __init__(
        self,
        observation_model: Any = "Poisson",
        inverse_link_function: Any = None,
        regularizer: Any = "Ridge",
        regularizer_strength: Any = None,
        n_strengths: int = 20,
        cv: Any = 5,
        scoring: str = "log-likelihood",
        gap: int = 0,
        feature_mask: ArrayLike | None = None,
        *,
        tol: float = 1e-8,
        max_iter: int = 100,
        n_threads: int | None = None,
        verbose: bool | None = None,
        no_mle: str = "drop",
    ) -> None:
        self._require_penalty(regularizer)
        self._set_parameters(
            observation_model, inverse_link_function, regularizer, 1.0, None, None, tol,
            max_iter, n_threads, verbose, no_mle,
        )  # fmt: skip
        self.feature_mask = feature_mask
        self._set_cv_parameters(regularizer_strength, n_strengths, cv, scoring, gap)


def load_model(filename: str | Path) -> GLM | PopulationGLM:
    """Rebuild a model saved by ``save_params``; never executes code from the file.

    Raises
    ------
    ValueError
        When the file is not a popglm model file or is damaged.
    """
    return _persistence.load(filename, {"GLM": GLM, "PopulationGLM": PopulationGLM})
