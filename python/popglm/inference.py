"""Inference on fitted coefficients: standard errors, Wald and likelihood-ratio coupling tests.

For the Poisson GLM with exp link, the observed Fisher information of neuron ``j`` at the
optimum is ``A^T diag(rate) A`` with ``A = [1, X_active]`` summed over the rows ``fit`` used;
its inverse is the asymptotic covariance of the estimate (as statsmodels' GLM reports). For a
Ridge fit the information includes the penalty (``n * strength`` on the diagonal) and its inverse
is the posterior covariance under the matching Gaussian prior.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from ._fitting import FittedState, column_factors
from ._history_features import HistoryFeatures
from ._memory import check_allocation
from ._native import core as _core
from ._recession import column_rms
from ._threads import resolve_n_threads
from ._validation import as_numeric_array, check_positive_int, design_for_core

__all__ = [
    "CoefficientInference",
    "benjamini_hochberg",
    "coefficient_inference",
    "coupling_likelihood_ratio_test",
]


class CoefficientInference:
    """Standard errors, Wald statistics and confidence intervals of a fitted model.

    Obtained from ``model.inference(X)``. Masked-out coefficients have NaN statistics, and so
    have the coefficients a fit dropped because they carried a direction of recession (the MLE
    does not exist along them: ``fit_info_["dropped_features"]``).

    Attributes
    ----------
    coef_se : ndarray, shaped like ``coef_``
    intercept_se : ndarray, shaped like ``intercept_``
    z_values, p_values : ndarray, shaped like ``coef_``
        Wald ``coef / se`` and its two-sided normal p-value.
    """

    def __init__(
        self,
        coef: NDArray,
        intercept: NDArray,
        covariances: list[NDArray],
        active: list[NDArray],
        population: bool,
        dropped: list[NDArray] | None = None,
        scales: list[NDArray] | None = None,
    ) -> None:
        self._population = population
        # Covariances are of [intercept, coef[active]] / scales (columns of extreme scale are
        # rescaled, see _scaled_design): a coefficient of 1e-200 has a variance below float64's
        # range, its standard error does not.
        self._scales = scales or [np.ones(a.size + 1) for a in active]
        self._dropped = dropped or [np.empty(0, dtype=np.int64) for _ in active]
        self._coef = coef if population else coef[:, None]
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._covariances = covariances
        self._active = active
        n_features, n_neurons = self._coef.shape
        se = np.full((n_features, n_neurons), np.nan)
        intercept_se = np.empty(n_neurons)
        for j in range(n_neurons):
            errors = np.sqrt(np.diag(covariances[j])) * self._scales[j]
            intercept_se[j] = errors[0]
            se[active[j], j] = errors[1:]
        self._se = se
        self.intercept_se = intercept_se
        self.coef_se = se if population else se[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            z = self._coef / se
        self.z_values = z if population else z[:, 0]
        p = 2.0 * stats.norm.sf(np.abs(z))
        self.p_values = p if population else p[:, 0]

    def covariance(self, neuron: int = 0) -> tuple[NDArray, NDArray]:
        """Covariance of ``[intercept, coef[active]]`` of one neuron, and the active features."""
        scales = self._scales[neuron]
        return self._covariances[neuron] * np.outer(scales, scales), self._active[neuron]

    def coef_conf_int(self, level: float = 0.95) -> tuple[NDArray, NDArray]:
        """Wald confidence intervals ``coef -/+ z * se`` at ``level``: (lower, upper)."""
        z = _normal_quantile(level)
        lower, upper = self._coef - z * self._se, self._coef + z * self._se
        return (lower, upper) if self._population else (lower[:, 0], upper[:, 0])

    def intercept_conf_int(self, level: float = 0.95) -> tuple[NDArray, NDArray]:
        """Wald confidence intervals of the intercepts at ``level``: (lower, upper)."""
        z = _normal_quantile(level)
        return self._intercept - z * self.intercept_se, self._intercept + z * self.intercept_se

    def coupling_test(self, n_basis_funcs: int) -> tuple[NDArray, NDArray]:
        """Wald test that a whole coupling filter is zero, for every sender -> receiver pair.

        The features must be history features of the population's own counts, laid out as
        ``compute_features`` does (``n_basis_funcs`` consecutive columns per sender). For the
        pair (sender ``s``, receiver ``r``) the statistic is ``w^T C^{-1} w``, ``w`` the pair's
        unmasked coefficients and ``C`` their covariance: chi-square with ``len(w)`` degrees of
        freedom under the null.

        Returns
        -------
        statistic, p_value : ndarray, shape (n_senders, n_receivers)
            NaN where the pair is masked out entirely, and where the fit dropped any of the
            pair's features (no MLE along them: the pair is not identifiable).
        """
        n_senders = self._senders(n_basis_funcs)
        n_receivers = self._coef.shape[1]
        statistic = np.full((n_senders, n_receivers), np.nan)
        p_value = np.full((n_senders, n_receivers), np.nan)
        for r in range(n_receivers):
            active = self._active[r]
            covariance = self._covariances[r]
            unidentified = set((np.asarray(self._dropped[r]) // n_basis_funcs).tolist())
            for s in range(n_senders):
                block = np.flatnonzero(active // n_basis_funcs == s)
                if block.size == 0 or s in unidentified:
                    continue
                w = self._coef[active[block], r] / self._scales[r][block + 1]
                sub = covariance[np.ix_(block + 1, block + 1)]
                statistic[s, r] = float(w @ np.linalg.solve(sub, w))
                p_value[s, r] = stats.chi2.sf(statistic[s, r], df=block.size)
        return statistic, p_value

    def coupling_filters(self, basis: Any, level: float = 0.95) -> tuple[NDArray, NDArray, NDArray]:
        """Coupling filters ``kernel @ w`` with pointwise Wald confidence bands.

        Parameters
        ----------
        basis : convolution basis
            The basis the features were computed with (its ``kernel_``, window x n_basis_funcs).
        level : float
            Confidence level of the bands.

        Returns
        -------
        filters, lower, upper : ndarray, shape (n_senders, window_size, n_receivers)
            ``filters[s, :, r]`` is the effect of a spike of ``s`` on the log-rate of ``r``
            1..window_size bins later. Masked pairs are zero filters with zero-width bands.
        """
        kernel = np.asarray(basis.kernel_ if hasattr(basis, "kernel_") else basis, dtype=float)
        if kernel.ndim != 2:
            raise ValueError(
                f"basis must be a convolution basis or a (window_size, n_basis_funcs) kernel "
                f"matrix, got an array of shape {kernel.shape}"
            )
        window, n_basis = kernel.shape
        n_senders = self._senders(n_basis)
        n_receivers = self._coef.shape[1]
        filters = np.zeros((n_senders, window, n_receivers))
        half_width = np.zeros_like(filters)
        z = _normal_quantile(level)
        for r in range(n_receivers):
            active = self._active[r]
            covariance = self._covariances[r]
            for s in range(n_senders):
                block = np.flatnonzero(active // n_basis == s)
                if block.size == 0:
                    continue
                columns = kernel[:, active[block] % n_basis]
                filters[s, :, r] = columns @ self._coef[active[block], r]
                sub = covariance[np.ix_(block + 1, block + 1)]
                variance = np.einsum("ij,jk,ik->i", columns, sub, columns)
                half_width[s, :, r] = z * np.sqrt(np.maximum(variance, 0.0))
        return filters, filters - half_width, filters + half_width

    def _senders(self, n_basis_funcs: int) -> int:
        n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
        n_features = self._coef.shape[0]
        if n_features % n_basis_funcs:
            raise ValueError(
                f"the model has {n_features} features, not a multiple of n_basis_funcs = "
                f"{n_basis_funcs}: coupling tests need history features of the counts"
            )
        return n_features // n_basis_funcs


def _normal_quantile(level: float) -> float:
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _information(
    state: FittedState, X: Any, design: Any, factors: NDArray, n_threads: int | None
) -> tuple[list[NDArray], list[NDArray], NDArray]:
    """Per neuron: the summed observed information over [intercept, active features]; the rows.

    Of the coefficients of ``design``, whose columns are X's times ``factors``.
    """
    n_features, n_neurons = state.coef.shape
    active = [np.flatnonzero(state.mask[:, j]) for j in range(n_neurons)]
    eta = state.linear_predictor(X)
    rows = np.flatnonzero(np.isfinite(eta).all(axis=1))
    if rows.size != state.info["n_samples_used"]:
        raise ValueError(
            f"X has {rows.size} usable rows but the model was fitted on "
            f"{state.info['n_samples_used']}: pass the design the model was fitted on"
        )
    rates = np.exp(eta[rows])
    ridge = state.ridge

    if isinstance(X, HistoryFeatures):
        full = _history_informations(X, rows, rates)
    else:
        row_index = rows.astype(np.int64)

        def one(j: int) -> NDArray:
            return _core.weighted_gram(design, row_index, np.ascontiguousarray(rates[:, j]), False)

        with ThreadPoolExecutor(max_workers=resolve_n_threads(n_threads)) as pool:
            full = list(pool.map(one, range(n_neurons)))

    informations = []
    for j in range(n_neurons):
        keep = np.concatenate([[0], active[j] + 1])
        information = full[j][np.ix_(keep, keep)]
        if ridge.size:
            information = information + rows.size * np.diag(
                np.concatenate([[0.0], ridge[active[j], j] * factors[active[j]] ** 2])
            )
        informations.append(information)
    return informations, active, rows


def _history_informations(X: HistoryFeatures, rows: NDArray, rates: NDArray) -> list[NDArray]:
    n_features = X.shape[1]
    out = [np.zeros((n_features + 1, n_features + 1)) for _ in range(rates.shape[1])]
    for start, block in X.row_blocks(rows, max_elements=1 << 21):
        design = np.column_stack([np.ones(block.shape[0]), block])
        for j, information in enumerate(out):
            information += design.T @ (design * rates[start : start + block.shape[0], j, None])
    return out


#: A finite MLE is flagged as barely identified when a coefficient's Fisher information is below
#: this fraction of the information its feature would carry at the neuron's mean rate: rates
#: suppressed ~e^-16 wherever the feature is active (a strong refractory period, rates ~e^-10
#: after a spike, is not flagged).
_BARELY_IDENTIFIED = 1e-7


def coefficient_inference(model: Any, X: ArrayLike, n_threads: int | None) -> CoefficientInference:
    """Build the CoefficientInference of a fitted model on its design (see ``model.inference``)."""
    state = model._fitted_state()
    if state.family != _core.ObservationFamily.poisson_exp:
        raise ValueError(
            "inference is implemented for the Poisson GLM with exp link, got "
            f"{model.observation_model!r} with inverse link {state.link!r}"
        )
    if not model.regularizer.smooth:
        raise ValueError(
            f"inference after a {model.regularizer!r} fit is not supported: Wald statistics ignore "
            "the selection the penalty made (refit the selected features without the penalty)"
        )
    X = state.check_design(X)
    design, factors = _scaled_design(X)
    informations, active, rows = _information(state, X, design, factors, n_threads)
    # Each feature's information relative to what it would have at the neuron's mean rate.
    mean_square = column_rms(design, rows, np.arange(X.shape[1]))[1:] ** 2
    dropped = state.info.get("dropped_features")
    if dropped is not None and (without := [j for j, d in enumerate(dropped) if len(d)]):
        warnings.warn(
            f"Neurons {without} have no maximum-likelihood estimate along some features, which "
            "the fit dropped (fit_info_['dropped_features']): their standard errors, p-values "
            "and coupling tests are NaN.",
            UserWarning,
            stacklevel=3,
        )
    covariances = []
    singular, barely = [], []
    for j, information in enumerate(informations):
        # Jacobi-scaled, so that the rank cut-off compares directions, not the units of features.
        diagonal = np.diag(information)
        jacobi = np.where(diagonal > 0, 1.0 / np.sqrt(np.where(diagonal > 0, diagonal, 1.0)), 1.0)
        eigenvalues, vectors = np.linalg.eigh(information * np.outer(jacobi, jacobi))
        cutoff = eigenvalues.max(initial=0.0) * 1e-12
        if np.any(eigenvalues <= cutoff):
            singular.append(j)
        else:
            at_mean = information[0, 0] * mean_square[active[j]]
            share = np.diag(information)[1:] / np.where(at_mean > 0, at_mean, np.inf)
            if share.size and share.min() < _BARELY_IDENTIFIED:
                barely.append(j)
        inverse = np.where(
            eigenvalues > cutoff, 1.0 / np.where(eigenvalues > cutoff, eigenvalues, 1.0), 0.0
        )
        covariances.append(((vectors * inverse) @ vectors.T) * np.outer(jacobi, jacobi))
    if singular:
        warnings.warn(
            f"The Fisher information is singular for neurons {singular} (collinear features or "
            "an MLE at infinity): their covariance is a pseudo-inverse and the standard errors of "
            "non-identifiable directions are not meaningful.",
            UserWarning,
            stacklevel=3,
        )
    if barely:
        warnings.warn(
            f"The maximum-likelihood estimate of neurons {barely} is finite but barely identified: "
            f"some coefficient's Fisher information is below {_BARELY_IDENTIFIED:g} of what its "
            "feature would carry at the neuron's mean rate (near separation: the fit drives the "
            "rate to ~0 wherever that feature is active). Its standard error is very large and "
            "its Wald statistics unreliable.",
            UserWarning,
            stacklevel=3,
        )
    scales = [np.concatenate([[1.0], factors[a]]) for a in active]
    return CoefficientInference(
        state.coef if state.population else state.coef[:, 0], model.intercept_, covariances,
        active, state.population, dropped, scales,
    )  # fmt: skip


def _scaled_design(X: Any) -> tuple[Any, NDArray]:
    """X as the core reads it, columns of extreme scale times a power of two; the factors.

    As the fit rescales (``_fitting.column_factors``): a column of 1e200 would square to inf in
    the information matrix. History features are computed from counts and never rescaled.
    """
    if isinstance(X, HistoryFeatures):
        return X, np.ones(X.shape[1])
    design = design_for_core(X)
    max_abs = np.empty(design.shape[1])
    _core.scan_design(design, np.empty(design.shape[0], dtype=np.uint8), max_abs, 1)
    factors = column_factors(max_abs, {})
    if factors is None:
        return design, np.ones(design.shape[1])
    check_allocation(design.nbytes, "a rescaled copy of X (columns of extreme scale)")
    return np.multiply(design, factors, order="K"), factors


def benjamini_hochberg(p_values: ArrayLike, fdr: float = 0.05) -> NDArray:
    """Benjamini-Hochberg step-up procedure: which hypotheses are rejected at false discovery rate ``fdr``.

    NaN p-values (a masked diagonal, pairs that are not identifiable: ``coupling_test`` warns
    about those) are not tested and never rejected, and do not count in the number of tests: the
    false discovery rate is controlled among the tested hypotheses.

    Returns
    -------
    ndarray of bool, shaped like ``p_values``
    """
    p = np.asarray(as_numeric_array(p_values, "p_values"), dtype=np.float64)
    if not (isinstance(fdr, (int, float)) and 0.0 < fdr < 1.0):
        raise ValueError(f"fdr must be a number in (0, 1), got {fdr!r}")
    tested = np.flatnonzero(np.isfinite(p.ravel()))
    if np.any((p.ravel()[tested] < 0) | (p.ravel()[tested] > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    rejected = np.zeros(p.size, dtype=bool)
    m = tested.size
    if m:
        order = tested[np.argsort(p.ravel()[tested], kind="stable")]
        thresholds = fdr * np.arange(1, m + 1) / m
        passing = np.flatnonzero(p.ravel()[order] <= thresholds)
        if passing.size:
            rejected[order[: passing[-1] + 1]] = True
    return rejected.reshape(p.shape)


def coupling_likelihood_ratio_test(
    model: Any, X: ArrayLike, y: ArrayLike, n_basis_funcs: int
) -> tuple[NDArray, NDArray]:
    """Likelihood-ratio test that a coupling filter is zero, by refitting with the pair masked.

    For every receiver, the population engine refits one copy of the receiver per sender, each
    with that sender's block of features removed; the statistic is twice the drop in
    log-likelihood, chi-square with the block's size as degrees of freedom. Needs an
    unregularised fitted ``PopulationGLM``.

    Returns
    -------
    statistic, p_value : ndarray, shape (n_senders, n_receivers)
    """
    from .glm import PopulationGLM

    if not isinstance(model, PopulationGLM):
        raise TypeError("coupling_likelihood_ratio_test needs a fitted PopulationGLM")
    state = model._fitted_state()
    if model.regularizer.needs_strength or state.family != _core.ObservationFamily.poisson_exp:
        raise ValueError(
            "the likelihood-ratio test needs an unregularised Poisson model with exp link"
        )
    n_basis_funcs = check_positive_int(n_basis_funcs, "n_basis_funcs")
    n_features, n_receivers = state.coef.shape
    if n_features % n_basis_funcs:
        raise ValueError(
            f"the model has {n_features} features, not a multiple of n_basis_funcs = {n_basis_funcs}"
        )
    n_senders = n_features // n_basis_funcs
    y = np.asarray(as_numeric_array(y, "y"), dtype=np.float64)
    mask = state.mask
    n_used = state.info["n_samples_used"]
    full_objective = state.info["objective"]
    statistic = np.full((n_senders, n_receivers), np.nan)
    p_value = np.full((n_senders, n_receivers), np.nan)
    sender_of = np.arange(n_features) // n_basis_funcs
    for r in range(n_receivers):
        reduced_mask = np.repeat(mask[:, [r]], n_senders, axis=1)
        reduced_mask[sender_of[:, None] == np.arange(n_senders)[None, :]] = False
        dof = (mask[:, [r]] & (sender_of[:, None] == np.arange(n_senders)[None, :])).sum(axis=0)
        reduced = PopulationGLM(
            feature_mask=reduced_mask.astype(np.uint8),
            tol=model.tol,
            max_iter=model.max_iter,
            n_threads=model.n_threads,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reduced models of silent pairs may not converge
            reduced.fit(X, np.repeat(y[:, [r]], n_senders, axis=1))
        drop = 2.0 * n_used * (reduced.fit_info_["objective"] - full_objective[r])
        tested = dof > 0
        statistic[tested, r] = np.maximum(drop[tested], 0.0)
        p_value[tested, r] = stats.chi2.sf(statistic[tested, r], df=dof[tested])
    return statistic, p_value
