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
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _recession
from ._history_features import HistoryFeatures
from ._memory import check_allocation
from ._native import core as _core
from ._validation import (
    as_numeric_array,
    copy_bytes,
    design_for_core,
    fortran_float64,
    rows_of,
)
from .exceptions import ConvergenceWarning
from .observation_models import link

__all__ = [
    "FitProblem", "FitResult", "FittedState", "finish", "gram_rank", "prepare", "presolve", "run",
    "solve", "start", "residual_dof", "design_rank", "warn_about_failures",
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
    dropped : list of ndarray or None
        Per neuron, the features removed because its MLE does not exist with them.
    factors : ndarray or None
        Per feature, the power of two its column was multiplied by (see ``column_factors``).
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
    #: Per neuron, the features removed because the MLE does not exist with them (``presolve``,
    #: ``settle``); None before ``presolve``.
    dropped: list[NDArray] | None = None
    #: Powers of two the design's columns were multiplied by (``column_factors``), or None: then
    #: ``X``, ``design``, ``coef`` and ``penalty`` are in the rescaled coordinates, and
    #: ``finish`` returns the coefficients of the caller's columns.
    factors: NDArray | None = None

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

    # Both copies are refused together, before either is made.
    copies = (0.0 if reuse_inputs else copy_bytes(Y, any_order=False)) + (
        0.0 if history else copy_bytes(X, any_order=True)
    )
    check_allocation(copies, f"float64 copies of X {X.shape} and y {Y.shape} for the core")
    # The counts the features were computed from are already float64 in Fortran order.
    counts = X.inputs if reuse_inputs else fortran_float64(Y, "y")
    factors = None
    if history:
        design = (X.inputs, X.kernels)
        valid = np.ones(n_samples, dtype=np.uint8)
        valid[: X.window_size] = 0
    else:
        design = design_for_core(X)
        valid = np.empty(n_samples, dtype=np.uint8)
        max_abs = np.empty(n_features)
        _core.scan_design(design, valid, max_abs, n_threads)
        factors = column_factors(max_abs, penalty)
        if factors is not None:
            check_allocation(design.nbytes, "a rescaled copy of X (columns of extreme scale)")
            design = np.multiply(design, factors, order="K")
            X = design
            penalty = _rescaled_penalty(penalty, factors)
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
    coef, intercept = start(model, init_params, used_counts, n_features, n_neurons)
    if factors is not None:
        coef /= factors[:, None]
    settings = {
        "family": int(family), "scale": float(observation.scale), "tol": tol,
        "max_iter": max_iter, "n_threads": n_threads,
        # fit_path's Hessians carried from one strength to the next (same X and y throughout).
        "curvature": getattr(model, "_path_curvature", None),
    }  # fmt: skip
    return FitProblem(
        model, X, user_X, design, counts, rows, mask, penalty, settings, coef, intercept,
        factors=factors,
    )  # fmt: skip


#: A design column whose largest |value| lies outside [2**-_SCALE_BAND, 2**_SCALE_BAND] is
#: multiplied by the power of two that brings that value into [0.5, 1) before the engine sees
#: it. The stopping rule bounds max |gradient|, and a column scaled by s scales its gradient by
#: s: a column of 1e-25 would meet the rule before its coefficient moved, one of 1e200 would
#: square to inf in the Hessian. Rescaled, every column is within a factor 2**_SCALE_BAND of
#: unit scale, so the rule means the same for all of them to that factor, and a power of two
#: changes no digit of the data. Designs within the band (every history design we have seen)
#: are not copied.
_SCALE_BAND = 8


def column_factors(max_abs: NDArray, penalty: dict[str, NDArray]) -> NDArray | None:
    """Per-column powers of two for a design whose columns' largest |value| is ``max_abs``.

    None when every column is within the band (or all-zero). Columns in a group penalty keep
    factor 1: a group's norm is not a sum over its coefficients, so rescaling one member would
    change the problem.
    """
    positive = max_abs > 0
    outside = positive & ((max_abs < 2.0**-_SCALE_BAND) | (max_abs > 2.0**_SCALE_BAND))
    groups = penalty.get("group")
    if groups is not None and groups.size:
        outside &= ~(groups >= 0).any(axis=1)
    if not outside.any():
        return None
    _, exponent = np.frexp(max_abs)
    # 2**1020 is the largest power that stays a normal double (a subnormal column is scaled
    # as far as that allows).
    factors = np.ldexp(1.0, np.clip(-exponent, -1020, 1020))
    return np.where(outside, factors, 1.0)


def _rescaled_penalty(penalty: dict[str, NDArray], factors: NDArray) -> dict[str, NDArray]:
    """Return the penalty on the rescaled coefficients (coef = factor * rescaled coef).

    A strength the rescaling would push past float64 is capped at 1e300: it pins its
    coefficient at zero either way.
    """
    out = dict(penalty)
    for key, power in (("l1", 1), ("l2", 2)):
        strength = penalty[key]
        if strength.size and np.any(strength > 0):
            with np.errstate(over="ignore"):
                scaled = strength * factors[:, None] ** power
            out[key] = np.asfortranarray(np.where(strength > 0, np.minimum(scaled, 1e300), 0.0))
    return out


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
        detect_divergence=settings.get("detect_divergence", True),
    )  # fmt: skip
    if settings.get("curvature") is not None:
        options.curvature = settings["curvature"]
    return _core.fit_population(
        design, counts, rows, mask, coef, intercept, options, penalty, progress
    )


def run(problem: FitProblem, progress: Any = None) -> dict[str, NDArray]:
    """Solve every neuron of ``problem`` (its coef and intercept become the solution)."""
    return solve(
        problem.design, problem.counts, problem.rows, problem.mask, problem.penalty,
        problem.settings, problem.coef, problem.intercept, progress,
    )  # fmt: skip


#: Rounds of certificate and refit (each removes at least one feature from the neurons in it,
#: or solves on a neuron the engine stopped at infinity).
_MAX_SETTLE_ROUNDS = 8
#: Newton iterations a neuron stopped at infinity gets to reach a point the certificate can use.
_PROBE_ITERATIONS = 30


def presolve(problem: FitProblem) -> None:
    """Remove, before the engine runs, the features that are a direction of recession by themselves.

    Only with ``no_mle="drop"`` and families with a certificate. A feature that is zero on every
    row where a neuron has a count and of one sign elsewhere (``_recession``) proves that
    neuron's MLE does not exist; its coefficient would run to infinity over many Newton
    iterations. Found for every neuron in one pass over the design, such features leave the
    neuron's mask (``problem.dropped`` lists them) and ``settle`` labels it ``mle_at_infinity``.
    """
    problem.dropped = [np.empty(0, dtype=np.int64) for _ in range(problem.n_neurons)]
    family = _core.ObservationFamily(problem.settings["family"])
    if not _certifiable(problem.model, family):
        return
    free = problem.mask.astype(bool) & ~_penalised(problem.penalty, problem.mask.shape)
    if not free.any():
        return  # a penalty bounds every coefficient: no feature can recede on its own
    hits = _recession.single_feature_directions(
        problem.X, problem.counts, problem.rows, free, family, problem.settings["n_threads"]
    )
    if not hits.any():
        return
    problem.mask = np.array(problem.mask, dtype=np.uint8, order="F")  # not the user's
    problem.mask[hits] = 0
    for j in np.flatnonzero(hits.any(axis=0)):
        problem.dropped[j] = np.flatnonzero(hits[:, j]).astype(np.int64)
        problem.coef[hits[:, j], j] = 0.0


def _certifiable(model: Any, family: Any) -> bool:
    """Whether neurons without an MLE are to be found (and have a certificate) in this fit."""
    return model.no_mle == "drop" and (
        family in _recession.COUNT_FAMILIES or family in _recession.BINARY_FAMILIES
    )


def settle(problem: FitProblem, record: dict[str, NDArray]) -> None:
    """Decide by certificate whether each neuron's MLE exists; bound the answer where it does not.

    Only with ``no_mle="drop"`` and families with a certificate (``_recession``), after
    ``presolve`` and the engine. Every neuron the engine stopped is checked (at infinity, out of
    iterations, stuck, and converged ones whose fit drives some rate towards zero:
    ``_recession.rates_vanish``) on its unpenalised features and intercept by
    ``_recession.diagnose``. Where a direction of recession exists, the features that carry it
    are removed and the neuron is refitted from the start, then checked again, until the
    certificate says the reduced problem has an MLE; such neurons (and those ``presolve``
    reduced) are labelled ``mle_at_infinity`` and ``record["dropped_features"]`` lists what they
    lost. A neuron whose MLE exists but which the engine called at infinity is solved on without
    the engine's divergence test. A silent neuron (no count on a fitted row, or one binary value)
    keeps no feature and its start's intercept. The problem's mask, coef and intercept and the
    record are updated in place.
    """
    codes = _core.FitStatus
    family = _core.ObservationFamily(problem.settings["family"])
    status = record["status"]
    if problem.dropped is None:
        presolved = False
        problem.dropped = [np.empty(0, dtype=np.int64) for _ in range(problem.n_neurons)]
    else:
        presolved = True
    dropped = problem.dropped
    record["dropped_features"] = dropped
    if not _certifiable(problem.model, family):
        return
    without_mle = np.array([features.size > 0 for features in dropped], dtype=bool)
    try:
        _settle_rounds(problem, record, without_mle, presolved)
    finally:
        status[without_mle & (status == int(codes.converged))] = int(codes.mle_at_infinity)


def _settle_rounds(
    problem: FitProblem, record: dict[str, NDArray], without_mle: NDArray, presolved: bool
) -> None:
    """Run the rounds of certificate and refit of ``settle`` (updating ``without_mle``)."""
    codes = _core.FitStatus
    family = _core.ObservationFamily(problem.settings["family"])
    status, dropped = record["status"], problem.dropped
    checked = (
        (status == int(codes.mle_at_infinity)) | (status == int(codes.max_iter_reached))
        | (status == int(codes.line_search_failed))
    )  # fmt: skip
    X, rows, scale = problem.X, problem.rows, problem.settings["scale"]
    converged = np.flatnonzero(status == int(codes.converged))
    if converged.size:
        # A converged neuron is certified only when its fit drives some rate towards zero.
        mean = rows_of(problem.counts, rows).mean(axis=0)[converged]
        checked[converged] = _recession.rates_vanish(
            X, rows, mean, problem.coef[:, converged], problem.intercept[converged], family
        )
    pending = np.flatnonzero(checked)
    if pending.size == 0:
        return  # the common case, kept cheap
    free = problem.mask.astype(bool) & ~_penalised(problem.penalty, problem.mask.shape)
    silent = []
    copied, probed = False, set()
    for _ in range(_MAX_SETTLE_ROUNDS):
        reduced, exists, tasks = [], [], []
        for j in pending:
            values = rows_of(problem.counts[:, j], rows)
            one_value = values.min() == values.max()
            if one_value and (values[0] == 0 or family in _recession.BINARY_FAMILIES):
                silent.append(j)  # only the intercept recedes (no count, or one binary value)
                continue
            active = np.flatnonzero(free[:, j])
            if active.size == 0:
                continue
            point = None
            if status[j] in (int(codes.converged), int(codes.max_iter_reached)):
                point = np.concatenate([[problem.intercept[j]], problem.coef[active, j]])
            tasks.append((j, active, point))

        def verdict(task: tuple) -> Any:
            j, active, point = task
            # A neuron the engine stopped at infinity is first solved on (below) rather than
            # sent to the linear program: at a finite optimum the dual certificate decides.
            program = point is not None or j in probed
            try:
                y = problem.counts[:, j]
                return _recession.diagnose(
                    X, y, rows, active, family, scale, point, program, singles=not presolved
                )
            except _recession.Undecided as undecided:
                return undecided

        # Neurons are independent and the heavy parts (Gram matrices, the linear program)
        # release the GIL; the verdicts are used in neuron order, whatever the thread count.
        if len(tasks) > 1:
            with ThreadPoolExecutor(max_workers=max(1, problem.settings["n_threads"])) as pool:
                verdicts = list(pool.map(verdict, tasks))
        else:
            verdicts = [verdict(task) for task in tasks]
        probes = []
        for (j, active, _), lost in zip(tasks, verdicts, strict=True):
            if isinstance(lost, _recession.Undecided):
                continue  # the engine's own verdict stands
            if lost is _recession.NEEDS_PROGRAM:
                probes.append(j)
                continue
            if lost is None:
                if status[j] == int(codes.mle_at_infinity) or (
                    j in probed and status[j] != int(codes.converged)
                ):
                    exists.append(j)  # the engine's divergence test was wrong: solve on
                continue
            features = active[lost]
            without_mle[j] = True
            dropped[j] = np.union1d(dropped[j], features)
            free[features, j] = False
            reduced.append(j)
        if (reduced or silent) and not copied:
            problem.mask = np.array(problem.mask, dtype=np.uint8, order="F")  # not the user's
            copied = True
        if exists:
            _solve_again(problem, record, np.array(exists), detect_divergence=False)
        if probes:
            probed.update(probes)
            _solve_again(
                problem, record, np.array(probes), detect_divergence=False,
                max_iter=min(problem.settings["max_iter"], _PROBE_ITERATIONS),
            )  # fmt: skip
        if not (reduced or probes):
            break
        if reduced:
            neurons = np.array(reduced, dtype=np.int64)
            for j in reduced:
                problem.mask[dropped[j], j] = 0
            # From the start, not from where the iterates went along the direction (their other
            # coefficients can be far out too).
            coef, intercept = start(
                problem.model, None, rows_of(problem.counts[:, neurons], rows),
                problem.coef.shape[0], neurons.size,
            )  # fmt: skip
            problem.coef[:, neurons] = coef
            problem.intercept[neurons] = intercept
            _solve_again(problem, record, neurons, detect_divergence=True)
        pending = np.union1d(np.array(reduced, dtype=np.int64), np.array(probes, dtype=np.int64))
    if silent:
        neurons = np.array(silent)
        for j in silent:
            dropped[j] = np.flatnonzero(problem.mask[:, j]).astype(np.int64)
            problem.mask[:, j] = 0
        problem.coef[:, neurons] = 0.0
        problem.intercept[neurons] = start(
            problem.model, None, rows_of(problem.counts[:, neurons], rows), 0, neurons.size
        )[1]
        # Nothing is left to fit: the record is evaluated at the start's intercept.
        _solve_again(problem, record, neurons, detect_divergence=False, max_iter=0)
        status[neurons] = int(codes.mle_at_infinity)


def _penalised(penalty: dict[str, NDArray], shape: tuple[int, int]) -> NDArray:
    """Which coefficients the penalty bounds (a direction of recession cannot move them)."""
    bounded = np.zeros(shape, dtype=bool)
    for key in ("l1", "l2"):
        if key in penalty and penalty[key].size:
            bounded |= penalty[key] > 0
    groups, weights = penalty.get("group"), penalty.get("group_weight")
    if groups is not None and weights is not None and groups.size and weights.size:
        in_group = groups >= 0
        columns = np.broadcast_to(np.arange(shape[1]), shape)
        bounded[in_group] |= weights[groups[in_group], columns[in_group]] > 0
    return bounded


def _solve_again(
    problem: FitProblem, record: dict[str, NDArray], neurons: NDArray, detect_divergence: bool,
    max_iter: int | None = None,
) -> None:  # fmt: skip
    """Solve some neurons of the problem again from their current point, adding to the record."""
    design = problem.design
    counts = np.asfortranarray(problem.counts[:, neurons])
    coef = np.asfortranarray(problem.coef[:, neurons])
    intercept = problem.intercept[neurons].copy()
    penalty = {key: np.asfortranarray(value[:, neurons]) for key, value in problem.penalty.items()}
    settings = dict(problem.settings, detect_divergence=detect_divergence)
    if max_iter is not None:
        settings["max_iter"] = max_iter
    again = solve(
        design, counts, problem.rows, np.asfortranarray(problem.mask[:, neurons]), penalty,
        settings, coef, intercept,
    )  # fmt: skip
    problem.coef[:, neurons] = coef
    problem.intercept[neurons] = intercept
    for key in ("status", "gradient_norm", "objective"):
        record[key][neurons] = again[key]
    for key in ("n_iter", "n_hessian"):
        record[key][neurons] += again[key]


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
        dof_resid = residual_dof(model, X, rows, coef)
    if observation.fixed_scale:
        scale = observation.estimate_scale(np.empty((0, problem.n_neurons)), None, None)
    else:
        eta = model._linear_predictor(X, model._coef_from_population(coef), intercept)
        scale = observation.estimate_scale(
            rows_of(problem.counts, rows), model._mean_response(eta[rows]), dof_resid
        )
    if problem.factors is not None:
        coef = coef * problem.factors[:, None]
    info = {
        **{key: np.asarray(record[key]) for key in _RECORD_KEYS},
        **(
            {"dropped_features": record["dropped_features"]} if "dropped_features" in record else {}
        ),
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


def start(
    model: Any, init_params: tuple | None, counts: NDArray, n_features: int, n_neurons: int
) -> tuple[NDArray, NDArray]:
    """Return the checked starting point ``(coef, intercept)`` in population layout.

    Default: zero coefficients and each neuron's intercept-only optimum, link(mean response) over
    ``counts`` (the fitted rows), as NeMoS; ``init_params`` is in the model's own layout.
    """
    if init_params is None:
        coef = np.zeros((n_features, n_neurons), order="F")
        # A response on the edge of the support (a silent neuron) starts half a count inside it.
        nudge = 0.5 / max(counts.shape[0], 1)
        mean = model.observation_model.initial_mean(counts.mean(axis=0), nudge)
        return coef, np.asarray(link(model._link())(mean), dtype=np.float64)
    if not isinstance(init_params, (tuple, list)) or len(init_params) != 2:
        raise ValueError("init_params must be a tuple (coef, intercept)")
    coef = as_numeric_array(init_params[0], "init_params[0]")
    intercept = as_numeric_array(init_params[1], "init_params[1]")
    if not model._population:
        if coef.ndim != 1:
            raise ValueError(
                f"init_params[0] (coef) must have shape (n_features,), got {coef.shape}"
            )
        coef, intercept = coef[:, None], np.atleast_1d(intercept)
    coef = np.array(coef, dtype=np.float64, order="F")
    intercept = np.array(intercept, dtype=np.float64)
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


def residual_dof(model: Any, X: Any, rows: NDArray, coef: NDArray) -> NDArray:
    """Return NeMoS's residual degrees of freedom per neuron.

    n - rank(X) - 1 unregularised, n - n_features - 1 with Ridge, n - (non-zero coefficients) - 1
    per neuron with the sparse penalties; n counts the rows the fit used.
    """
    n_used = rows.size
    n_neurons = coef.shape[1]
    regularizer = model.regularizer
    if not regularizer.smooth:
        dof = n_used - np.count_nonzero(coef, axis=0) - 1.0
    elif regularizer.needs_strength:
        dof = np.full(n_neurons, n_used - X.shape[1] - 1.0)
    else:
        dof = np.full(n_neurons, n_used - design_rank(X, rows) - 1.0)
    return dof.astype(np.float64)


def design_rank(X: Any, rows: NDArray) -> int:
    """Return the rank of X on the used rows, from its Gram matrix (no SVD of X)."""
    n_features = X.shape[1]
    if n_features == 0:
        return 0
    if isinstance(X, HistoryFeatures):
        gram = np.zeros((n_features, n_features))
        for _, block in X.row_blocks(rows):
            gram += block.T @ block
    else:
        design = design_for_core(X)
        gram = _core.weighted_gram(design, rows, np.ones(rows.size), False)[1:, 1:]
    return gram_rank(gram)


def warn_about_failures(info: dict[str, Any], settings: dict[str, Any]) -> None:
    """Issue one ConvergenceWarning per kind of neuron that did not converge."""
    status, gradient_norm = info["status"], info["gradient_norm"]
    tol, max_iter = settings["tol"], settings["max_iter"]
    if (status == int(_core.FitStatus.converged)).all():  # the common case, kept cheap
        return
    codes = _core.FitStatus

    def neurons(code: Any) -> list[int]:
        return np.flatnonzero(status == int(code)).tolist()

    if at_infinity := neurons(codes.mle_at_infinity):
        dropped = info.get("dropped_features")
        if dropped is not None and all(dropped[j].size for j in at_infinity):
            answer = (
                "a certificate found, for each, directions of recession (a silent neuron, or "
                "features whose values never meet its spikes, e.g. a rare sender or a "
                "refractory self-history function). The features "
                "carrying them were removed for that neuron and the rest fitted to its exact "
                "MLE: see fit_info_['dropped_features'] (a silent neuron keeps only its "
                "intercept, at half a spike over the fitted bins)."
            )
        else:
            answer = (
                "the neuron is silent or its spikes are separated by some features, so some "
                "coefficients diverge. The returned values are the finite point where the "
                "iterates stopped; do not interpret their magnitude (no_mle='drop' removes "
                "the features that carry the divergence instead)."
            )
        warnings.warn(
            f"The maximum-likelihood estimate does not exist for neurons {at_infinity}: {answer}",
            ConvergenceWarning,
            stacklevel=3,
        )
    if stalled := neurons(codes.max_iter_reached):
        worst = float(np.max(gradient_norm[stalled]))
        warnings.warn(
            f"Neurons {stalled} did not converge within max_iter={max_iter} Newton "
            f"iterations (largest final max |gradient| = {worst:.3g}, tol = {tol:g}).",
            ConvergenceWarning,
            stacklevel=3,
        )
    if no_progress := neurons(codes.line_search_failed):
        worst = float(np.max(gradient_norm[no_progress]))
        warnings.warn(
            f"Neurons {no_progress} stopped because no step decreased the objective "
            f"(largest final max |gradient| = {worst:.3g}, tol = {tol:g}): the optimum is "
            "at the limit of float64 precision.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if failed := neurons(codes.internal_error) + neurons(codes.no_valid_rows):
        warnings.warn(
            f"Neurons {failed} could not be fitted (internal error, e.g. out of memory); "
            "their coefficients are the starting point.",
            ConvergenceWarning,
            stacklevel=3,
        )
