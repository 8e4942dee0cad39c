"""Penalty strengths chosen by cross-validation, one per neuron (``GLMCV``, ``PopulationGLMCV``).

The fit's problem is prepared once (``_fitting.prepare``: the design, counts, valid rows, mask and
the penalty at strength 1); folds are sets of its rows, so X is never copied (HistoryFeatures are
never formed). Each fold's path of strengths is solved from the strongest to the weakest, each
fit warm-started from the one before, by the engine for every neuron at once; after each fit
every neuron's held-out score is recorded. Every neuron then gets the strength whose mean score
over the folds is best, and the model is refitted on every row with those strengths (the
penalty is linear in its strength: strength times the penalty at strength 1, for every
regularizer).

The grid, when not given, runs from the strength at which the penalty dominates down to 1e-4 of
it: for Lasso, ElasticNet and GroupLasso the smallest strength at which every penalised
coefficient of every neuron is zero (the largest ratio of the loss's gradient at the
intercept-only fit to the coefficient's, or group's, penalty weight); for Ridge, which zeroes
nothing, 10 times the median over features and neurons of the data loss's curvature along a
feature at that fit (most coefficients then shrink to a small fraction of their own fit).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _fitting
from ._history_features import HistoryFeatures
from ._native import core as _core
from ._recession import _product, column_rms
from ._validation import check_positive_int, rows_of
from .observation_models import inverse_link, link
from .regularizer import GroupLasso, resolve_regularizer

__all__ = ["SCORINGS", "CrossValidated"]

#: What ``scoring`` may name: the held-out mean per bin (higher is better).
SCORINGS = ("log-likelihood", "deviance")
#: The gradient tolerance of the folds' fits (at most; the model's tol when it is looser).
_FOLD_TOL = 1e-6
#: Strengths without a better mean held-out score after which a neuron leaves the path.
_PATIENCE = 3
#: The weakest strength of a default grid, relative to the strongest.
_GRID_SPAN = 1e-4
#: A default Ridge grid starts where the penalty's curvature is this many times the data's.
_RIDGE_DOMINANCE = 10.0


class CrossValidated:
    """What GLMCV and PopulationGLMCV add to GLM and PopulationGLM (a mixin placed first).

    The penalised model's ``regularizer_strength`` is the grid (None: a default grid of
    ``n_strengths``); ``fit`` sets ``regularizer_strength_`` (per neuron), ``cv_strengths_``
    and ``cv_scores_``, then behaves as the plain model fitted with those strengths.
    """

    @classmethod
    def _require_penalty(cls, regularizer: Any) -> None:
        """Raise a ValueError unless ``regularizer`` has a strength to choose."""
        if not resolve_regularizer(regularizer).needs_strength:
            raise ValueError(
                f"{cls.__name__} chooses a penalty's strength: regularizer must be 'Ridge', "
                f"'Lasso', 'ElasticNet' or 'GroupLasso', got {regularizer!r}"
            )

    def _set_cv_parameters(
        self, regularizer_strength: Any, n_strengths: int, cv: Any, scoring: str, gap: int
    ) -> None:
        self.regularizer_strength = regularizer_strength
        self.n_strengths = n_strengths
        self.cv = cv
        self.scoring = scoring
        self.gap = gap
        self._chosen = None

    # -- parameters --

    @property
    def regularizer_strength(self) -> Any:
        """The grid of strengths to try (1-D, > 0), or None for a default grid.

        For ElasticNet, ``(grid, ratio)`` fixes the ratio (default 0.5).
        """
        return self._grid

    @regularizer_strength.setter
    def regularizer_strength(self, grid: Any) -> None:
        ratio = None
        values = grid
        if isinstance(grid, tuple):
            if len(grid) != 2:
                raise TypeError(
                    "regularizer_strength must be a grid, or (grid, ratio) for ElasticNet"
                )
            values, ratio = grid
        if values is not None:
            array = np.asarray(values, dtype=np.float64)
            if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array) & (array > 0)):
                raise ValueError(
                    "regularizer_strength must be None or a non-empty 1-D grid of finite "
                    f"strengths > 0, got {values!r}"
                )
        self._grid = grid
        # The plain model's strength is the penalty at strength 1 (scaled per neuron in fits).
        self._regularizer_strength = 1.0 if ratio is None else (1.0, float(ratio))

    @property
    def n_strengths(self) -> int:
        """Strengths in a default grid."""
        return self._n_strengths

    @n_strengths.setter
    def n_strengths(self, n_strengths: int) -> None:
        self._n_strengths = check_positive_int(n_strengths, "n_strengths")

    @property
    def cv(self) -> Any:
        """Folds: an int (contiguous blocks of bins) or a scikit-learn splitter."""
        return self._cv

    @cv.setter
    def cv(self, cv: Any) -> None:
        if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be an int >= 2 or a scikit-learn splitter, got {cv!r}")
        elif isinstance(cv, (str, bytes)) or not hasattr(cv, "split"):
            raise TypeError(
                f"cv must be an int >= 2 or a scikit-learn splitter (with split), got {cv!r}"
            )
        self._cv = cv

    @property
    def scoring(self) -> str:
        """The held-out score: ``"log-likelihood"`` or ``"deviance"`` (negated), per bin."""
        return self._scoring

    @scoring.setter
    def scoring(self, scoring: str) -> None:
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {list(SCORINGS)}, got {scoring!r}")
        self._scoring = scoring

    @property
    def gap(self) -> int:
        """Bins left out of training on each side of a test block (history features overlap)."""
        return self._gap

    @gap.setter
    def gap(self, gap: int) -> None:
        self._gap = check_positive_int(gap, "gap", minimum=0)

    # -- fitting --

    def _penalty_arrays(self, n_features: int, n_neurons: int) -> dict[str, NDArray]:
        unit = super()._penalty_arrays(n_features, n_neurons)
        if self._chosen is None:
            return unit
        return scaled_penalty(unit, np.broadcast_to(self._chosen, (n_neurons,)))

    def fit(self, X: Any, y: Any, init_params: tuple | None = None, *, client: Any = None) -> Any:
        """Choose each neuron's strength by cross-validation, then fit on every row with it.

        Parameters
        ----------
        X, y, init_params
            As for the plain model's ``fit``; ``init_params`` starts every fold's path and the
            final fit.
        client : None
            Not supported here (the folds run locally).

        Returns
        -------
        self
        """
        if client is not None:
            raise ValueError(f"{type(self).__name__}.fit runs locally: client must be None")
        self._chosen = None
        problem = _fitting.prepare(self, X, y, init_params)
        grid = self._strength_grid(problem)
        folds = _folds(problem.rows, problem.X.shape[0], self._cv, self._gap)
        scores = self._cross_validate(problem, grid, folds)
        mean = _mean_over_folds(scores)
        # The first best in a descending grid: the strongest among equals.
        best = np.argmax(np.where(np.isnan(mean), -np.inf, mean), axis=0)
        chosen = grid[best]
        self._chosen = chosen
        try:
            super().fit(X, y, init_params=init_params)
        except BaseException:
            self._chosen = None
            raise
        self.cv_strengths_ = grid
        self.cv_scores_ = scores if self._population else scores[:, :, 0]
        self.regularizer_strength_ = chosen if self._population else float(chosen[0])
        return self

    def plain_model(self) -> Any:
        """Return the plain model (GLM, PopulationGLM) with the chosen strengths, fitted as this.

        What ``save_params`` writes, so that ``load_model`` needs no cross-validation.
        """
        self._check_is_fit()
        chosen = np.atleast_1d(np.asarray(self.regularizer_strength_, dtype=np.float64))
        strength: Any = chosen if self._population else float(chosen[0])
        if isinstance(self._regularizer, GroupLasso) and self._population:
            mask = self._regularizer.mask
            n_groups = 1 if mask is None else mask.shape[0]
            strength = np.repeat(chosen[None, :], n_groups, axis=0)
        if isinstance(self._regularizer_strength, tuple):
            strength = (strength, self._regularizer_strength[1])
        params = {
            "observation_model": self.observation_model,
            "inverse_link_function": self.inverse_link_function,
            "regularizer": self.regularizer,
            "regularizer_strength": strength,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "n_threads": self.n_threads,
            "verbose": self.verbose,
            "no_mle": self.no_mle,
        }
        if self._population:
            params["feature_mask"] = self.feature_mask
        plain = self._plain_class(**params)
        try:
            dof = np.asarray(self.dof_resid_, dtype=np.float64)
        except (AttributeError, ValueError):
            dof = None
        plain._set_fitted(
            _fitting.FitResult(
                self._coef_to_population(np.asarray(self.coef_)),
                np.asarray(self.intercept_),
                getattr(self, "scale_", None),
                dict(self.fit_info_),
                dof,
            )  # fmt: skip
        )
        return plain

    def save_params(self, filename: Any) -> None:
        """Save as the plain model with the chosen strengths (``load_model`` returns that)."""
        self.plain_model().save_params(filename)

    def _strength_grid(self, problem: _fitting.FitProblem) -> NDArray:
        grid = self._grid[0] if isinstance(self._grid, tuple) else self._grid
        if grid is not None:
            return np.sort(np.asarray(grid, dtype=np.float64))[::-1]
        largest = _largest_strength(self, problem)
        return largest * np.logspace(0.0, np.log10(_GRID_SPAN), self._n_strengths)

    def _cross_validate(
        self, problem: _fitting.FitProblem, grid: NDArray, folds: list[tuple[NDArray, NDArray]]
    ) -> NDArray:
        """Held-out scores (n_strengths, n_folds, n_neurons), NaN past a neuron's stop.

        The folds go down the path together, one strength at a time, each fold's fit
        warm-started from its fit at the previous strength. A neuron whose mean score over the
        folds has not improved for ``_PATIENCE`` strengths in a row leaves the path (its score
        is unimodal along the path in practice, and the rest would be fitted for nothing).
        """
        n_neurons = problem.n_neurons
        scores = np.full((grid.size, len(folds), n_neurons), np.nan)
        starts = [(np.array(problem.coef, order="F"), problem.intercept.copy()) for _ in folds]
        best = np.full(n_neurons, -np.inf)
        waited = np.zeros(n_neurons, dtype=np.int64)
        active = np.arange(n_neurons)
        part = _NeuronSubset(problem, active)
        for index, strength in enumerate(grid):
            for fold, (train, test) in enumerate(folds):
                coef, intercept = starts[fold]
                scores[index, fold, active] = part.fit_and_score(
                    self, strength, train, test, coef, intercept
                )
            mean = _mean_over_folds(scores[index : index + 1])[0, active]
            improved = mean > best[active]  # False for NaN
            best[active] = np.where(improved, mean, best[active])
            waited[active] = np.where(improved, 0, waited[active] + 1)
            still = active[waited[active] < _PATIENCE]
            if still.size == 0:
                break
            if still.size < active.size:
                active = still
                part = _NeuronSubset(problem, active)
        return scores

    def _held_out(
        self, part: _NeuronSubset, train: NDArray, test: NDArray, coef: NDArray,
        intercept: NDArray,
    ) -> NDArray:  # fmt: skip
        """Each neuron's (of ``part``) mean score per bin on the test rows."""
        observation = self._observation_model
        mean = self._mean_response(part.linear_predictor(test, coef, intercept))
        counts = rows_of(part.counts, test)
        if observation.fixed_scale:
            scale = np.full(coef.shape[1], observation.scale)
        else:
            # The scale comes from the training rows: the test rows only score.
            fitted = self._mean_response(part.linear_predictor(train, coef, intercept))
            dof = np.maximum(train.size - part.mask.sum(axis=0) - 1, 1)
            scale = observation.estimate_scale(rows_of(part.counts, train), fitted, dof)
        if self._scoring == "deviance":
            return -observation.deviance(counts, mean, scale).mean(axis=0)
        return observation.log_likelihood(counts, mean, scale).mean(axis=0)


class _NeuronSubset:
    """Some neurons of a problem, in the core's layout (columns copied once per subset)."""

    def __init__(self, problem: _fitting.FitProblem, neurons: NDArray) -> None:
        self.problem = problem
        self.neurons = neurons
        # A fold's fit only ranks strengths: _FOLD_TOL moves its held-out score by far less than
        # neighbouring strengths differ (the final fit uses the model's tol).
        self.settings = dict(problem.settings, tol=max(problem.settings["tol"], _FOLD_TOL))
        everyone = neurons.size == problem.n_neurons
        self.counts = problem.counts if everyone else np.asfortranarray(problem.counts[:, neurons])
        self.mask = problem.mask if everyone else np.asfortranarray(problem.mask[:, neurons])
        self.penalty = (
            problem.penalty
            if everyone
            else {
                key: np.asfortranarray(value[:, neurons]) for key, value in problem.penalty.items()
            }
        )

    def fit_and_score(
        self, model: CrossValidated, strength: float, train: NDArray, test: NDArray,
        coef: NDArray, intercept: NDArray,
    ) -> NDArray:  # fmt: skip
        """Fit these neurons at ``strength`` on ``train``; return their scores on ``test``.

        ``coef`` and ``intercept`` (every neuron's) hold the start and receive the fit.
        """
        neurons = self.neurons
        part_coef = np.asfortranarray(coef[:, neurons])
        part_intercept = intercept[neurons].copy()
        penalty = scaled_penalty(self.penalty, np.full(neurons.size, strength))
        _fitting.solve(
            self.problem.design, self.counts, train, self.mask, penalty, self.settings,
            part_coef, part_intercept,
        )  # fmt: skip
        coef[:, neurons] = part_coef
        intercept[neurons] = part_intercept
        return model._held_out(self, train, test, part_coef, part_intercept)

    def linear_predictor(self, rows: NDArray, coef: NDArray, intercept: NDArray) -> NDArray:
        """[1, X[rows]] @ [intercept; coef] for these neurons."""
        return _linear_predictor(self.problem, rows, coef, intercept)


def scaled_penalty(unit: dict[str, NDArray], strengths: NDArray) -> dict[str, NDArray]:
    """Return the penalty at strength ``strengths[j]`` for neuron j, from that at strength 1."""
    out = dict(unit)
    for key in ("l1", "l2", "group_weight"):
        if key in unit and unit[key].size:
            out[key] = np.asfortranarray(unit[key] * strengths[None, :])
    return out


def _folds(rows: NDArray, n_samples: int, cv: Any, gap: int) -> list[tuple[NDArray, NDArray]]:
    """(train, test) rows of the problem for each fold: contiguous blocks, or a splitter's."""
    if isinstance(cv, (int, np.integer)):
        if rows.size < 2 * cv:
            raise ValueError(f"cv={cv} folds need at least {2 * cv} valid rows, got {rows.size}")
        bounds = np.linspace(0, rows.size, cv + 1).astype(np.int64)
        blocks = [rows[bounds[k] : bounds[k + 1]] for k in range(cv)]
    else:
        blocks = []
        valid = np.zeros(n_samples, dtype=bool)
        valid[rows] = True
        for _, test in cv.split(np.zeros((n_samples, 1))):
            test = np.asarray(test, dtype=np.int64)
            blocks.append(np.sort(test[valid[test]]))
    folds = []
    for test in blocks:
        if test.size == 0:
            raise ValueError("a fold of cv has no valid rows to test on")
        held = np.zeros(n_samples, dtype=bool)
        held[test] = True
        if gap:
            # The bins within `gap` of a test bin are left out of training as well.
            near = np.convolve(held, np.ones(2 * gap + 1), mode="same") > 0
            held |= near
        train = rows[~held[rows]]
        if train.size == 0:
            raise ValueError("a fold of cv leaves no valid rows to train on")
        folds.append((train, test))
    return folds


def _mean_over_folds(scores: NDArray) -> NDArray:
    """Mean over folds (axis 1) ignoring NaN, NaN where a strength has no finite score."""
    finite = np.isfinite(scores)
    total = np.where(finite, scores, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _linear_predictor(
    problem: _fitting.FitProblem, rows: NDArray, coef: NDArray, intercept: NDArray
) -> NDArray:
    """[1, X[rows]] @ [intercept; coef] for every neuron (the engine's products)."""
    features = np.arange(problem.X.shape[1])
    return _product(problem.X, rows, features, np.vstack([intercept, coef]))


def _largest_strength(model: Any, problem: _fitting.FitProblem) -> float:
    """Return the default grid's strongest strength (module docstring)."""
    counts = rows_of(problem.counts, problem.rows)
    observation = model._observation_model
    name = model._link()
    mean = observation.initial_mean(counts.mean(axis=0), 1e-3)
    eta = np.broadcast_to(link(name)(mean), counts.shape)
    # The loss's slope and curvature in eta at the intercept-only fit (whose mean is each
    # neuron's mean), by central differences: every family and link alike.
    step = 1e-4 * np.maximum(1.0, np.abs(eta))
    to_mean = inverse_link(name)
    below, at, above = (
        observation.nll(counts, to_mean(eta + shift)) for shift in (-step, 0.0, step)
    )
    slope = (above - below) / (2.0 * step)
    unit = problem.penalty
    free = problem.mask.astype(bool)
    candidates = []
    needs_gradient = (unit["l1"].size and np.any(unit["l1"] > 0)) or unit["group_weight"].size
    gradient = (
        np.abs(_design_gradient(problem, np.asfortranarray(slope))) if needs_gradient else None
    )
    if unit["l1"].size and np.any(unit["l1"] > 0):
        weighted = (unit["l1"] > 0) & free
        candidates.append(np.max(gradient[weighted] / unit["l1"][weighted], initial=0.0))
    if unit["group_weight"].size:
        groups, weights = unit["group"], unit["group_weight"]
        for j in range(problem.n_neurons):
            for g in np.flatnonzero(weights[:, j] > 0):
                members = (groups[:, j] == g) & free[:, j]
                if members.any():
                    candidates.append(np.linalg.norm(gradient[members, j]) / weights[g, j])
    if not candidates and unit["l2"].size and np.any(unit["l2"] > 0):
        # Ridge zeroes nothing: the strength whose curvature is _RIDGE_DOMINANCE times the
        # data's along the median feature at that fit (the curvature of each neuron's loss,
        # times the feature's mean square): most coefficients shrink to a small fraction of
        # their own fit. The largest would put the grid's weakest end above what rarely
        # firing senders need (curvatures span 3-4 decades in a recording).
        curvature = np.maximum((above - 2.0 * at + below) / step**2, 0.0).mean(axis=0)
        features = np.arange(problem.X.shape[1])
        squares = column_rms(problem.X, problem.rows, features)[1:] ** 2
        weighted = (unit["l2"] > 0) & free
        data = (squares[:, None] * curvature[None, :])[weighted] / unit["l2"][weighted]
        candidates.append(_RIDGE_DOMINANCE * np.median(data) if data.size else 0.0)
    largest = max(candidates, default=0.0)
    if not (np.isfinite(largest) and largest > 0):
        raise ValueError(
            "cannot build a default grid of strengths: the loss's gradient at the intercept-only "
            "fit is zero for every penalised feature (pass regularizer_strength, a grid)"
        )
    return float(largest)


def _design_gradient(problem: _fitting.FitProblem, residual: NDArray) -> NDArray:
    """X[rows]^T residual / len(rows), (n_features, n_neurons)."""
    rows = problem.rows
    if isinstance(problem.X, HistoryFeatures):
        total = np.zeros((problem.X.shape[1], residual.shape[1]))
        for start, block in problem.X.row_blocks(rows):
            total += block.T @ residual[start : start + block.shape[0]]
        return total / rows.size
    product = _core.design_transpose_multiply(
        problem.design, rows, residual, problem.settings["n_threads"]
    )
    return np.asarray(product)[1:]
