"""One fit, end to end: a problem prepared once, the engine, and the record of its outcome.

``prepare(model, X, y, init_params)`` checks the inputs and builds a :class:`FitProblem` (the
design the core reads, counts, rows, feature mask, penalty, starting point, settings); ``run``
solves it with the C++ engine (``solve``: some of its neurons, for the receiver-parallel Dask
fit); ``finish`` turns the solution into a :class:`FitResult` (degrees of freedom, scale, fit
record), which ``_BaseGLM._set_fitted`` writes into the model: no other module writes a model's
fitted members. The local fit (``glm``), the receiver-parallel fit (``distributed``) and a loaded
file (``_persistence``) all go through these pieces, and ``update`` runs one iteration of the
fit's own problem. ``FittedState`` is what the analyses of a fitted model (``inference``) read.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._history_features import HistoryFeatures
from ._native import core as _core
from ._validation import design_for_core, fortran_float64

__all__ = [
    "FitProblem", "FitResult", "FittedState", "finish", "gram_rank", "prepare", "rows_of", "run",
    "solve",
]  # fmt: skip


@dataclasses.dataclass
class FitResult:
    """The outcome of one fit of every neuron of a model.

    Attributes
    ----------
    coef : ndarray, shape (n_features, n_neurons)
        Population layout, also for the single-neuron ``GLM`` (one column).
    intercept : ndarray, shape (n_neurons,)
    scale : ndarray or None
        The observation model's scale per neuron; None when unknown (files from before it was
        saved, for models whose scale fit estimates).
    info : dict or None
        The fit record: ``status``, ``n_iter``, ``gradient_norm``, ``objective``,
        ``n_hessian``, ``n_samples_used``, ``n_threads`` (as available); None when unknown.
    dof_resid : ndarray or None
        Residual degrees of freedom, when known.
    dof_pending : tuple or None
        ``(weakref to X, rows, coef)`` from which ``dof_resid_`` is computed on first access.
    """

    coef: NDArray
    intercept: NDArray
    scale: NDArray | None = None
    info: dict[str, Any] | None = None
    dof_resid: NDArray | None = None
    dof_pending: tuple | None = None


@dataclasses.dataclass
class FitProblem:
    """Everything one fit of a model needs, checked and in the core's layout.

    Attributes
    ----------
    model : _BaseGLM
        The model being fitted (its observation model, link, penalty and settings).
    X : ndarray or HistoryFeatures
        The checked design, as the model sees it; ``user_X`` is what the caller passed.
    design : ndarray or tuple
        What the core reads: the float64 design (C or Fortran order, not copied), or
        ``(inputs, kernels)`` for history features.
    counts : ndarray, shape (n_samples, n_neurons)
        float64, Fortran order.
    rows : ndarray of int64
        The rows fitted: no NaN or inf in the design or in any neuron's count.
    mask : ndarray of uint8, shape (n_features, n_neurons)
    penalty : dict
        The core's penalty terms (``Regularizer.penalty_arrays``).
    settings : dict
        ``family``, ``scale``, ``tol``, ``max_iter``, ``n_threads`` (plain values, so a task can
        carry them).
    coef, intercept : ndarray
        The start, in population layout; ``solve`` leaves the solution here.
    """

    model: Any
    X: Any
    user_X: Any
    design: Any
    counts: NDArray
    rows: NDArray
    mask: NDArray
    penalty: dict[str, NDArray]
    settings: dict[str, Any]
    coef: NDArray
    intercept: NDArray

    @property
    def n_neurons(self) -> int:
        return self.counts.shape[1]


@dataclasses.dataclass(frozen=True)
class FittedState:
    """A fitted model as the analyses of it (``inference``) read it: ``_BaseGLM._fitted_state``.

    Attributes
    ----------
    coef : ndarray, shape (n_features, n_neurons)
        Population layout, also for the single-neuron ``GLM``.
    intercept : ndarray, shape (n_neurons,)
    mask : ndarray of bool, shape (n_features, n_neurons)
        The features each neuron uses.
    ridge : ndarray
        Per-coefficient l2 strengths, (n_features, n_neurons), or (0, 0) when unpenalised.
    family : _core.ObservationFamily
    link : str
        The inverse link's name.
    population : bool
        False for the single-neuron ``GLM`` (whose results drop the neuron axis).
    info : dict
        ``fit_info_``.
    check_design : callable
        ``X -> X`` checked as ``fit`` checks it.
    linear_predictor : callable
        ``X -> eta``, (n_samples, n_neurons), NaN on rows without a full history.
    """

    coef: NDArray
    intercept: NDArray
    mask: NDArray
    ridge: NDArray
    family: Any
    link: str
    population: bool
    info: dict[str, Any]
    check_design: Callable[[Any], Any]
    linear_predictor: Callable[[Any], NDArray]


def rows_of(counts: NDArray, rows: NDArray) -> NDArray:
    """counts[rows], as a view when the rows are one contiguous range (the usual case)."""
    if rows[-1] - rows[0] + 1 == rows.size:
        return counts[rows[0] : rows[-1] + 1]
    return counts[rows]


def prepare(model: Any, X: Any, y: Any, init_params: tuple | None) -> FitProblem:
    """Check a fit's inputs and build its :class:`FitProblem` (no fitting yet)."""
    tol, max_iter, n_threads = model._solver_settings()
    user_X = X
    history = isinstance(X, HistoryFeatures)
    reuse_inputs = history and X.is_view_of(y)
    X, Y = model._check_inputs(X, y)
    n_samples, n_features = X.shape
    n_neurons = Y.shape[1]
    if n_neurons == 0:
        raise ValueError("y must have at least one neuron (column), got shape " + str(Y.shape))
    mask = model._population_mask(n_features, n_neurons)
    penalty = model._penalty_arrays(n_features, n_neurons)
    family = model._family()

    # The counts the features were computed from are already float64 in Fortran order.
    counts = X.inputs if reuse_inputs else fortran_float64(Y)
    if history:
        design = (X.inputs, X.kernels)
        valid = np.ones(n_samples, dtype=np.uint8)
        valid[: X.window_size] = 0
    else:
        design = design_for_core(X)
        valid = np.empty(n_samples, dtype=np.uint8)
        _core.finite_rows(design, valid, n_threads)
    # Rows with NaN/inf counts are dropped (unless X was built from these counts, whose NaN rows
    # it already marks); negative or fractional counts are flagged in the same pass.
    count_flags = _core.scan_counts(counts, valid, not reuse_inputs, n_threads)
    rows = np.flatnonzero(valid).astype(np.int64)
    if rows.size == 0:
        raise ValueError(
            "no valid samples: every row of X or y contains NaN or inf (for convolutional "
            "features, the first window_size rows are NaN; is n_samples > window_size?)"
        )
    used_counts = rows_of(counts, rows)
    observation = model.observation_model
    observation.check_y(used_counts, scan_flags=count_flags)
    if init_params is not None and not model._population:
        init_params = model._single_init_to_population(init_params)
    coef, intercept = model._starting_point(init_params, used_counts, n_features, n_neurons)
    settings = {
        "family": int(family), "scale": float(observation.scale), "tol": tol,
        "max_iter": max_iter, "n_threads": n_threads,
    }  # fmt: skip
    return FitProblem(
        model, X, user_X, design, counts, rows, mask, penalty, settings, coef, intercept
    )


def solve(
    design: Any, counts: NDArray, rows: NDArray, mask: NDArray, penalty: dict[str, NDArray],
    settings: dict[str, Any], coef: NDArray, intercept: NDArray, progress: Any = None,
) -> dict[str, NDArray]:  # fmt: skip
    """Run the engine on a problem's pieces; return its per-neuron record.

    ``coef`` and ``intercept`` hold the start on entry and the solution on exit; the record has
    ``status``, ``n_iter``, ``gradient_norm``, ``objective`` and ``n_hessian``.
    """
    options = _core.FitOptions(
        family=_core.ObservationFamily(settings["family"]), scale=settings["scale"],
        tol=settings["tol"], max_iter=settings["max_iter"], n_threads=settings["n_threads"],
    )  # fmt: skip
    return _core.fit_population(
        design, counts, rows, mask, coef, intercept, options, penalty, progress
    )


def run(problem: FitProblem, progress: Any = None) -> dict[str, NDArray]:
    """Solve every neuron of ``problem`` (its coef and intercept become the solution)."""
    return solve(
        problem.design, problem.counts, problem.rows, problem.mask, problem.penalty,
        problem.settings, problem.coef, problem.intercept, progress,
    )  # fmt: skip


def finish(problem: FitProblem, record: dict[str, NDArray]) -> FitResult:
    """Return the :class:`FitResult` of a solved problem: solution, scale, dof, fit record."""
    model, X, rows = problem.model, problem.X, problem.rows
    coef, intercept = problem.coef, problem.intercept
    observation = model.observation_model
    regularizer = model.regularizer
    needs_rank = regularizer.smooth and not regularizer.needs_strength
    dof_resid, dof_pending = None, None
    if needs_rank and observation.fixed_scale and X is problem.user_X:
        # The rank of X costs a Gram matrix: computed on first access, not in every fit.
        dof_pending = (weakref.ref(problem.user_X), rows, coef)
    else:
        dof_resid = model._resid_dof(X, rows, coef, problem.settings["n_threads"])
    if observation.fixed_scale:
        scale = observation.estimate_scale(np.empty((0, problem.n_neurons)), None, None)
    else:
        eta = model._linear_predictor(X, model._coef_from_population(coef), intercept)
        scale = observation.estimate_scale(
            rows_of(problem.counts, rows), model._mean_response(eta[rows]), dof_resid
        )
    info = {
        **{key: np.asarray(record[key]) for key in _RECORD_KEYS},
        "n_samples_used": int(rows.size),
        "n_threads": problem.settings["n_threads"],
    }
    return FitResult(coef, intercept, scale, info, dof_resid, dof_pending)


#: The per-neuron entries of the engine's record, in ``fit_info_``.
_RECORD_KEYS = ("status", "n_iter", "gradient_norm", "objective", "n_hessian")


def gram_rank(gram: NDArray) -> int:
    """Return the rank of X from its Gram matrix X^T X.

    It counts the eigenvalues of the Jacobi-scaled Gram above ``RANK_TOLERANCE`` times the
    largest: the engine's rule, so that the dof and the minimum-norm fit agree on what is
    collinear.
    """
    scale = np.sqrt(np.maximum(np.diag(gram), 0.0))
    nonzero = scale > 0
    if not nonzero.any():
        return 0
    scaled = gram[np.ix_(nonzero, nonzero)] / np.outer(scale[nonzero], scale[nonzero])
    eigenvalues = np.linalg.eigvalsh(scaled)
    return int(np.sum(eigenvalues > eigenvalues.max() * _core.RANK_TOLERANCE))
