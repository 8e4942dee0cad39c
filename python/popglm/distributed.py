"""Fit ``PopulationGLM`` on a Dask cluster (``pip install popglm[dask]``).

Two ways to spread one fit over the workers of a :class:`dask.distributed.Client`:

Receiver-parallel (NumPy ``X`` and ``y``, or ``HistoryFeatures``)
    Each neuron's Newton solve needs only the design, its own column of ``y`` and its column of
    ``feature_mask``, so the neurons are split into chunks and each chunk is one task that runs
    the C++ engine on its worker. The shared inputs are sent to every worker once: the design
    matrix, or for ``HistoryFeatures`` only the counts and the basis kernels, from which each
    worker rebuilds the features. The result is the local fit's, neuron by neuron; every model,
    link and penalty of ``PopulationGLM.fit`` is supported.

Sample-parallel (``X`` and ``y`` as :class:`dask.array.Array` chunked along samples)
    For recordings whose samples do not fit in one worker's memory. Every Newton iteration
    reduces, over the sample chunks, each neuron's objective, gradient ``[1, X]^T (mu - y)`` and
    Hessian ``[1, X]^T diag(mu) [1, X]`` (C++ kernels on the workers); the Newton step and its
    line search run on the client. Poisson observations with the exp link, unregularised or
    Ridge.

Both are reached through ``PopulationGLM.fit(X, y, client=client)``; :func:`fit` gives the
chunking options. Tasks are pure functions of their inputs, so Dask can rerun any of them
when a worker dies mid-fit and the answer does not change.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _fitting
from ._fitting import FitResult
from ._history_features import HistoryFeatures
from ._native import core as _core
from ._validation import as_numeric_array, check_positive_int, design_for_core
from .observation_models import PoissonObservations
from .regularizer import Ridge, UnRegularized

__all__ = ["compute_features", "fit"]

_CONVERGED = int(_core.FitStatus.converged)
_MAX_ITER_REACHED = int(_core.FitStatus.max_iter_reached)
_LINE_SEARCH_FAILED = int(_core.FitStatus.line_search_failed)
_MLE_AT_INFINITY = int(_core.FitStatus.mle_at_infinity)

#: Partial sums combined per task in the tree reduction of the sample chunks.
_FAN_IN = 8
#: Default size of one chunk's result in a sample-parallel pass (its Hessians dominate): it sets
#: how many neurons share a pass, and so the memory each chunk result needs on the workers and
#: the client.
_PASS_BYTES = 256 * 2**20


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as error:  # pragma: no cover - the test extra installs dask
        raise ImportError(
            "fitting with client= needs Dask's distributed scheduler: pip install 'popglm[dask]'"
        ) from error
    return distributed


def _check_client(client: Any) -> None:
    distributed = _import_distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"client must be a dask.distributed.Client, got {type(client).__name__}; create one "
            "with dask.distributed.Client(cluster) (or Client() for a local cluster)"
        )


def _is_dask_array(value: Any) -> bool:
    # Checked without importing dask.array: arrays of any other library are not dask arrays.
    return type(value).__module__.startswith("dask.array") and hasattr(value, "chunks")


def fit(
    model: Any,
    X: Any,
    y: Any,
    client: Any,
    init_params: tuple | None = None,
    *,
    neurons_per_task: int | None = None,
    neurons_per_pass: int | None = None,
    persist: bool = True,
) -> Any:
    """Fit ``model`` on the workers of ``client`` (what ``model.fit(X, y, client=client)`` does).

    Parameters
    ----------
    model : PopulationGLM or GLM
        The model to fit; it is left fitted, with the same attributes as after a local fit.
    X : array-like, HistoryFeatures or dask.array.Array, shape (n_samples, n_features)
        NumPy (or ``HistoryFeatures``): receiver-parallel fit. A dask array chunked along
        samples (one chunk along features): sample-parallel fit.
    y : array-like or dask.array.Array, shape (n_samples, n_neurons) or (n_samples,) for GLM
        Spike counts. A dask array (or a dask ``X``) selects the sample-parallel fit; NumPy
        inputs are chunked like ``X``.
    client : dask.distributed.Client
        The cluster to run on.
    init_params : tuple (coef, intercept), optional
        Starting point, as for ``fit``.
    neurons_per_task : int, optional
        Receiver-parallel only: neurons fitted per task. Default: the neurons split evenly into
        one task per worker thread. Smaller tasks balance uneven neurons better but repeat
        the passes over the design that a task's neurons share.
    neurons_per_pass : int, optional
        Sample-parallel only: neurons whose gradients and Hessians one pass over the data
        computes (each chunk's result holds ``8 * neurons_per_pass * (n_features + 1)**2``
        bytes, on the workers and on the client). Default: as many as fit in 256 MiB. Groups
        of neurons are fitted one after the other.
    persist : bool
        Sample-parallel only: keep the sample chunks in the workers' memory for the whole fit
        (default). ``False`` recomputes them from their source (e.g. a Zarr store) in every
        Newton iteration, for data larger than the cluster's memory.

    Returns
    -------
    model
        The fitted model.

    Raises
    ------
    TypeError
        When ``client`` is not a ``dask.distributed.Client``.
    NotImplementedError
        When the sample-parallel fit is asked for a model, link, penalty or design it does not
        support (see the module docstring).

    Notes
    -----
    Each task runs the C++ engine with the model's ``n_threads`` threads, or one thread when
    ``n_threads`` is None: Dask's worker threads supply the parallelism. The results do not
    depend on either.

    The sample-parallel fit takes exact Newton steps (every pass forms each neuron's float64
    Hessian on every row) until ``max |gradient| <= tol``, then one more; ``fit_info_`` has the
    local fit's keys. It flags silent neurons (``status`` 3, with a ``ConvergenceWarning``) but,
    unlike the local engine, not features that perfectly separate a neuron's spikes.

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> from dask.distributed import Client, LocalCluster
    >>> counts = np.random.default_rng(0).poisson(0.5, size=(400, 4)).astype(float)
    >>> X = nmo.basis.HistoryConv(window_size=3).history_features(counts)
    >>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     model = nmo.glm.PopulationGLM().fit(X, counts, client=client)
    >>> local = nmo.glm.PopulationGLM().fit(X, counts)
    >>> bool(np.allclose(model.coef_, local.coef_, rtol=0, atol=1e-10))
    True
    """
    _check_client(client)
    if _is_dask_array(X) or _is_dask_array(y):
        if neurons_per_task is not None:
            raise ValueError(
                "neurons_per_task applies to the receiver-parallel fit (NumPy X and y); with dask "
                "arrays the fit is sample-parallel and splits the samples"
            )
        return _fit_samples(model, X, y, client, init_params, neurons_per_pass, persist)
    if neurons_per_pass is not None:
        raise ValueError(
            "neurons_per_pass applies to the sample-parallel fit (dask arrays); with NumPy X and y "
            "the fit is receiver-parallel: use neurons_per_task"
        )
    return _fit_receivers(model, X, y, client, init_params, neurons_per_task)


def compute_features(basis: Any, xi: Any) -> Any:
    """Return ``basis.compute_features(xi)`` as a dask array, computed chunk by chunk on the workers.

    The input for the sample-parallel fit: only the counts travel to the workers, and each
    sample chunk of the design is convolved there from its chunk of ``xi`` and the
    ``window_size`` samples before it. The values are those of ``basis.compute_features``
    (the first ``window_size`` rows are NaN, and the fit drops them).

    Parameters
    ----------
    basis : HistoryConv or RaisedCosineLogConv
        The convolution basis.
    xi : dask.array.Array, shape (n_samples,) or (n_samples, n_inputs)
        The time series (spike counts), chunked along samples.

    Returns
    -------
    dask.array.Array, shape (n_samples, n_inputs * n_basis_funcs)
        Chunked along samples like ``xi``, one chunk along features.

    Examples
    --------
    >>> import numpy as np
    >>> import dask
    >>> import dask.array as da
    >>> import popglm as nmo
    >>> import popglm.distributed
    >>> counts = np.random.default_rng(0).poisson(0.5, size=(100, 3)).astype(float)
    >>> basis = nmo.basis.RaisedCosineLogConv(2, window_size=5)
    >>> X = popglm.distributed.compute_features(basis, da.from_array(counts, chunks=(30, 3)))
    >>> X.shape, X.chunks[0]
    ((100, 6), (30, 30, 30, 10))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     design = X.compute()
    >>> np.array_equal(design, basis.compute_features(counts), equal_nan=True)
    True
    """
    import dask.array as da

    if not _is_dask_array(xi):
        raise TypeError(
            f"xi must be a dask.array.Array chunked along samples, got {type(xi).__name__}; for "
            "a NumPy array use basis.compute_features"
        )
    if xi.ndim not in (1, 2) or xi.shape[0] == 0:
        raise ValueError(
            f"xi must have shape (n_samples,) or (n_samples, n_inputs), got {tuple(xi.shape)}"
        )
    if xi.ndim == 1:
        xi = xi[:, None]
    xi = xi.rechunk((xi.chunks[0], -1))
    window = basis.window_size
    n_features = xi.shape[1] * basis.n_basis_funcs
    blocks = []
    start = 0
    for n_rows in xi.chunks[0]:
        first = max(0, start - window)  # the history the chunk's first rows look back on
        piece = xi[first : start + n_rows].rechunk(-1)
        blocks.append(
            piece.map_blocks(
                _features_after,
                basis,
                start - first,
                chunks=((n_rows,), (n_features,)),
                dtype=np.float64,
                meta=np.empty((0, 0)),
            )  # fmt: skip
        )
        start += n_rows
    return da.concatenate(blocks, axis=0)


def _features_after(x: NDArray, basis: Any, skip: int) -> NDArray:
    """``basis.compute_features(x)`` without its first ``skip`` rows (history only)."""
    return basis.compute_features(x)[skip:]


# -- shared -----------------------------------------------------------------------------------


def _task_threads(model: Any) -> int:
    return 1 if model.n_threads is None else model.n_threads


def _store_fit(model: Any, result: FitResult, tol: float, max_iter: int) -> Any:
    """Set the fitted attributes exactly as ``_BaseGLM.fit`` does, and warn about failures."""
    result.info["n_threads"] = _task_threads(model)  # per task: each worker runs its own solves
    model._set_fitted(result)
    _fitting.warn_about_failures(result.info, {"tol": tol, "max_iter": max_iter})
    return model


# -- receiver-parallel ------------------------------------------------------------------------


def _solve_columns(
    design: NDArray, kernels: NDArray | None, counts: NDArray, columns: slice, rows: NDArray,
    mask: NDArray, penalty: dict[str, NDArray], settings: dict[str, Any], coef: NDArray,
    intercept: NDArray,
) -> dict[str, Any]:  # fmt: skip
    """Solve the neurons ``columns`` of a FitProblem with the C++ engine, on a worker.

    A pure function: its inputs are copied, never written.
    """
    coef, intercept = np.array(coef, order="F"), np.array(intercept)
    record = _fitting.solve(
        design if kernels is None else (design, kernels), np.asfortranarray(counts[:, columns]),
        rows, np.asfortranarray(mask), {k: np.asfortranarray(v) for k, v in penalty.items()},
        settings, coef, intercept,
    )  # fmt: skip
    return {"coef": coef, "intercept": intercept, **record}


def _default_neurons_per_task(client: Any, n_neurons: int) -> int:
    # One task per worker thread: the engine steps a task's neurons in lockstep, sharing each
    # pass over the design (for HistoryFeatures, its reconvolution) among them, so smaller
    # tasks repeat that work.
    n_threads = sum(client.nthreads().values()) or 1
    return max(1, math.ceil(n_neurons / n_threads))


def _fit_receivers(
    model: Any, X: Any, y: Any, client: Any, init_params: tuple | None,
    neurons_per_task: int | None,
) -> Any:  # fmt: skip
    problem = _fitting.prepare(model, X, y, init_params)
    n_neurons = problem.n_neurons
    if neurons_per_task is None:
        neurons_per_task = _default_neurons_per_task(client, n_neurons)
    neurons_per_task = check_positive_int(neurons_per_task, "neurons_per_task")
    problem.settings["n_threads"] = _task_threads(model)
    history = isinstance(problem.design, tuple)
    _fitting.presolve(problem)  # on the client: one pass over the design

    # Every worker gets one copy of the shared inputs: tasks then read them locally, and a
    # worker's death loses no data (the other copies remain for Dask's retries).
    shared = {"design": problem.design[0] if history else problem.design}
    if history:
        shared["kernels"] = problem.design[1]
    if problem.counts is not shared["design"]:  # else the counts are the history inputs
        shared["counts"] = problem.counts
    # A list, not the dict: a dict's keys would become the data's keys on the cluster, shared
    # by every fit (hash=False gives each array a fresh key).
    futures = dict(
        zip(shared, client.scatter(list(shared.values()), broadcast=True, hash=False), strict=True)
    )
    futures.setdefault("counts", futures["design"])
    chunks = [
        slice(start, min(start + neurons_per_task, n_neurons))
        for start in range(0, n_neurons, neurons_per_task)
    ]
    tasks = []
    try:
        for columns in chunks:
            tasks.append(
                client.submit(
                    _solve_columns,
                    futures["design"],
                    futures.get("kernels"),
                    futures["counts"],
                    columns,
                    problem.rows,
                    problem.mask[:, columns],
                    {key: value[:, columns] for key, value in problem.penalty.items()},
                    problem.settings,
                    problem.coef[:, columns],
                    problem.intercept[columns],
                    pure=True,
                )  # fmt: skip
            )
        results = client.gather(tasks)
    finally:
        client.cancel(tasks + list(futures.values()))

    for columns, result in zip(chunks, results, strict=True):
        problem.coef[:, columns] = result["coef"]
        problem.intercept[columns] = result["intercept"]
    record = {
        key: np.concatenate([result[key] for result in results])
        for key in ("status", "n_iter", "gradient_norm", "objective", "n_hessian")
    }
    # Neurons without a finite answer are settled here, on the client (few, and small fits).
    _fitting.settle(problem, record)
    settings = problem.settings
    return _store_fit(
        model, _fitting.finish(problem, record), settings["tol"], settings["max_iter"]
    )


# -- sample-parallel --------------------------------------------------------------------------


def _chunk_rows(x: NDArray, y: NDArray) -> tuple[NDArray, NDArray]:
    design = design_for_core(x)
    finite = np.empty(design.shape[0], dtype=np.uint8)
    _core.scan_design(design, finite, np.empty(design.shape[1]), 1)
    valid = finite.astype(bool) & np.isfinite(y).all(axis=1)
    return design, np.flatnonzero(valid).astype(np.int64)


def _chunk_summary(x: NDArray, y: NDArray, gram: bool) -> dict[str, Any]:
    """Rows used, count sums, count checks and (optionally) the Gram of ``[1, X]`` of a chunk."""
    design, rows = _chunk_rows(x, y)
    used = y[rows]
    summary = {
        "n": np.array(rows.size),
        "count_sum": used.sum(axis=0),
        "negative": np.array(np.any(used < 0)),
        "non_integer": np.array(np.any(used != np.round(used))),
    }
    if gram:
        summary["gram"] = _core.weighted_gram(design, rows, np.ones(rows.size), False)
    return summary


def _chunk_moments(
    x: NDArray, y: NDArray, neurons: NDArray, coef: NDArray, intercept: NDArray,
    direction: NDArray, step: NDArray,
) -> dict[str, NDArray]:  # fmt: skip
    """One chunk's share of the objective, its change along a step, gradient and Hessians.

    For the neurons ``neurons``, at ``theta + step * direction`` (``theta = (intercept, coef)``;
    ``direction`` is (1 + n_features, k), intercept first): the sums over the chunk's used rows
    of ``mu - y eta`` (``loss``), of ``mu_0 (expm1(s dEta) - s dEta)`` (``curvature``: with the
    gradient, the exact change of the loss from theta, without cancellation), of
    ``[1, X]^T (mu - y)`` (``gradient``) and of ``[1, X]^T diag(mu) [1, X]`` (``hessian``, one
    per neuron). A pure function of its inputs, so Dask may rerun it.
    """
    design, rows = _chunk_rows(x, y)
    k = neurons.size
    counts = y[rows][:, neurons]
    coefs = np.asfortranarray(np.concatenate([coef, direction[1:]], axis=1))
    offsets = np.concatenate([intercept, direction[0]])
    products = np.empty((rows.size, 2 * k), order="F")
    _core.design_multiply(design, rows, coefs, offsets, products, 1)
    base, delta = products[:, :k], products[:, k:]
    with np.errstate(over="ignore", invalid="ignore"):
        # A trial step can overflow exp(); its objective is then inf and the step is rejected.
        scaled = delta * step
        eta = base + scaled
        mu = np.exp(eta)
        curvature = np.sum(np.exp(base) * (np.expm1(scaled) - scaled), axis=0)
        loss = np.sum(mu - counts * eta, axis=0)
        residual = mu - counts
        gradient = np.empty((1 + design.shape[1], k))
        gradient[0] = residual.sum(axis=0)
        used = design if rows.size == design.shape[0] else design[rows]
        gradient[1:] = used.T @ residual
    hessian = np.empty((k, 1 + design.shape[1], 1 + design.shape[1]))
    for j in range(k):
        weights = np.ascontiguousarray(mu[:, j])
        if np.all(np.isfinite(weights)):
            hessian[j] = _core.weighted_gram(design, rows, weights, False)
        else:
            hessian[j] = np.nan
    return {
        "loss": loss,
        "curvature": curvature,
        "gradient": gradient,
        "hessian": hessian,
    }


def _sum_parts(*parts: dict[str, NDArray]) -> dict[str, NDArray]:
    """Add chunk results key by key (a node of the tree reduction)."""
    return {key: sum(part[key] for part in parts) for key in parts[0]}


class _SampleChunks:
    """The row chunks of ``X`` and ``y`` on the cluster, and reductions over them."""

    def __init__(self, client: Any, X: Any, y: Any, persist: bool) -> None:
        import dask

        if persist:
            X, y = client.persist([X, y])
        self._client = client
        self._dask = dask
        self._blocks = list(
            zip(X.to_delayed().ravel().tolist(), y.to_delayed().ravel().tolist(), strict=True)
        )
        self._keep = (X, y)  # holds persisted chunks in memory while the fit runs

    def reduce(self, function: Any, *args: Any) -> dict[str, NDArray]:
        """``function(x_chunk, y_chunk, *args)`` on every chunk, summed by a tree on the workers."""
        delayed = self._dask.delayed
        parts = [delayed(function, pure=True)(x, y, *args) for x, y in self._blocks]
        while len(parts) > 1:
            parts = [
                delayed(_sum_parts, pure=True)(*parts[start : start + _FAN_IN])
                for start in range(0, len(parts), _FAN_IN)
            ]
        return self._client.compute(parts[0]).result()


def _as_sample_dask_arrays(X: Any, y: Any, population: bool) -> tuple[Any, Any]:
    import dask.array as da

    if isinstance(X, HistoryFeatures):
        raise NotImplementedError(
            "the sample-parallel fit (dask arrays) needs X as a dask array of features; "
            "HistoryFeatures is fitted receiver-parallel (pass NumPy counts and "
            "basis.history_features(counts)); for a sample-parallel fit, pass "
            "popglm.distributed.compute_features(basis, counts) with counts a dask array"
        )
    if not _is_dask_array(X):
        X = as_numeric_array(X, "X")
    if not _is_dask_array(y):
        y = as_numeric_array(y, "y")
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D with shape (n_samples, n_features), got shape {tuple(X.shape)}"
        )
    if population and y.ndim != 2:
        raise ValueError(
            f"y must be 2-D with shape (n_samples, n_neurons), got shape {tuple(y.shape)}"
        )
    if not population:
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D with shape (n_samples,), got shape {tuple(y.shape)}")
        y = y[:, None]
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of samples, got X.shape[0] = {X.shape[0]} "
            f"and y.shape[0] = {y.shape[0]}"
        )
    if X.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise TypeError(f"X and y must be real numeric arrays, got dtypes {X.dtype} and {y.dtype}")
    # Samples are split like the dask input; every chunk holds all features and all neurons.
    rows = X.chunks[0] if _is_dask_array(X) else y.chunks[0]
    X = da.asarray(X).astype(np.float64).rechunk((rows, -1))
    y = da.asarray(y).astype(np.float64).rechunk((rows, -1))
    return X, y


def _check_sample_model(model: Any) -> None:
    supported = "Poisson observations with the exp link, unregularised or Ridge"
    if not isinstance(model.observation_model, PoissonObservations) or model._link() != "exp":
        raise NotImplementedError(
            f"the sample-parallel fit (dask arrays) supports {supported}; got "
            f"{model.observation_model!r} with link {model._link()!r}. Fit other models "
            "receiver-parallel (NumPy X and y)"
        )
    if type(model.regularizer) not in (UnRegularized, Ridge):
        raise NotImplementedError(
            f"the sample-parallel fit (dask arrays) supports {supported}; got regularizer "
            f"{model.regularizer!r}. Fit other penalties receiver-parallel (NumPy X and y)"
        )


def _newton_direction(hessian: NDArray, gradient: NDArray) -> NDArray:
    """``-H^+ g``: by Cholesky, or from the eigendecomposition when H is (nearly) singular."""
    try:
        factor = np.linalg.cholesky(hessian)
        diagonal = np.diag(factor)
        if diagonal.min() > np.sqrt(_core.RANK_TOLERANCE) * diagonal.max():
            return -np.linalg.solve(factor.T, np.linalg.solve(factor, gradient))
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh(hessian)
    keep = values > _core.RANK_TOLERANCE * max(values.max(), 0.0)
    return -vectors[:, keep] @ ((vectors[:, keep].T @ gradient) / values[keep])


def _fit_samples(
    model: Any, X: Any, y: Any, client: Any, init_params: tuple | None,
    neurons_per_pass: int | None, persist: bool,
) -> Any:  # fmt: skip
    _check_sample_model(model)
    tol, max_iter, _ = model._solver_settings()
    X, Y = _as_sample_dask_arrays(X, y, model._population)
    n_features, n_neurons = X.shape[1], Y.shape[1]
    if n_neurons == 0:
        raise ValueError(f"y must have at least one neuron (column), got shape {Y.shape}")
    mask = model._population_mask(n_features, n_neurons).astype(bool)
    if neurons_per_pass is None:
        neurons_per_pass = max(1, _PASS_BYTES // (8 * (1 + n_features) ** 2))
    neurons_per_pass = check_positive_int(neurons_per_pass, "neurons_per_pass")
    ridge = model._ridge_matrix(n_features, n_neurons)
    if ridge.size == 0:
        ridge = np.zeros((n_features, n_neurons))
    if init_params is not None:
        coef, intercept = _fitting.start(
            model, init_params, np.empty((0, n_neurons)), n_features, n_neurons
        )
        coef = np.where(mask, coef, 0.0)

    chunks = _SampleChunks(client, X, Y, persist)
    needs_rank = not model.regularizer.needs_strength
    summary = chunks.reduce(_chunk_summary, needs_rank)
    n_used = int(summary["n"])
    if n_used == 0:
        raise ValueError("no valid samples: every row of X or y contains NaN or inf")
    if summary["negative"]:
        raise ValueError("y must contain non-negative spike counts, found negative values")
    if summary["non_integer"]:
        raise ValueError("y must contain integer spike counts, found non-integer values")
    if init_params is None:
        coef = np.zeros((n_features, n_neurons))
        mean = np.maximum(summary["count_sum"] / n_used, 0.5 / n_used)
        intercept = np.log(mean)
    coef = np.array(coef, dtype=np.float64)
    intercept = np.array(intercept, dtype=np.float64)

    # Per neuron j: free = [intercept, features kept by the mask]; parameters theta = (b, c).
    free = [np.concatenate([[0], 1 + np.flatnonzero(mask[:, j])]) for j in range(n_neurons)]
    penalty = [np.concatenate([[0.0], ridge[mask[:, j], j]]) for j in range(n_neurons)]
    status = np.ones(n_neurons, dtype=np.int32)  # max_iter_reached until settled
    n_iter = np.zeros(n_neurons, dtype=np.int32)
    n_hessian = np.zeros(n_neurons, dtype=np.int32)
    objective = np.empty(n_neurons)
    gradient_norm = np.empty(n_neurons)
    gradients: dict[int, NDArray] = {}
    hessians: dict[int, NDArray] = {}

    def theta(j: int) -> NDArray:
        return np.concatenate([[intercept[j]], coef[mask[:, j], j]])

    def evaluate(neurons: NDArray, directions: NDArray, step: NDArray) -> dict[str, NDArray]:
        moments = chunks.reduce(
            _chunk_moments, neurons, coef[:, neurons], intercept[neurons], directions, step
        )
        n_hessian[neurons] += 1
        return moments

    def record(j: int, position: int, moments: dict[str, NDArray], point: NDArray) -> None:
        """Store neuron j's objective, gradient and Hessian at ``point`` (its free values)."""
        p = penalty[j]
        objective[j] = moments["loss"][position] / n_used + 0.5 * np.sum(p * point**2)
        gradients[j] = moments["gradient"][free[j], position] / n_used + p * point
        hessian = moments["hessian"][position][np.ix_(free[j], free[j])] / n_used
        hessians[j] = hessian + np.diag(p)
        gradient_norm[j] = np.max(np.abs(gradients[j]))

    def solve(group: NDArray) -> None:
        """Newton's method for the neurons ``group``, their passes over the data shared."""
        start = evaluate(group, np.zeros((1 + n_features, group.size)), np.zeros(group.size))
        for position, j in enumerate(group):
            record(j, position, start, theta(j))
        active = list(group) if max_iter > 0 else []
        if not active:
            status[group] = np.where(gradient_norm[group] <= tol, _CONVERGED, _MAX_ITER_REACHED)
        polishing: set[int] = set()
        while active:
            # Newton directions; a neuron already within tol takes one more (polishing) step.
            polishing.update(j for j in active if gradient_norm[j] <= tol)
            directions = np.zeros((1 + n_features, n_neurons))
            for j in active:
                directions[free[j], j] = _newton_direction(hessians[j], gradients[j])
            slope = {j: float(gradients[j] @ directions[free[j], j]) for j in active}
            step = np.ones(n_neurons)
            pending = list(active)
            for _ in range(_core.MAX_HALVINGS + 1):  # the full step, then the halvings
                neurons = np.array(pending)
                moments = evaluate(neurons, directions[:, neurons], step[neurons])
                rejected = []
                for position, j in enumerate(pending):
                    s = step[j]
                    d = directions[free[j], j]
                    # Exact change of the objective along the step (no difference of large sums).
                    change = (
                        s * slope[j]
                        + moments["curvature"][position] / n_used
                        + 0.5 * s * s * np.sum(penalty[j] * d**2)
                    )
                    # Within tol, rounding may make a good polishing step look like no progress.
                    accept = change <= _core.ARMIJO * s * slope[j] or (
                        j in polishing and change <= 0
                    )
                    if np.isfinite(change) and accept:
                        point = theta(j) + s * d
                        intercept[j] = point[0]
                        coef[mask[:, j], j] = point[1:]
                        record(j, position, moments, point)
                        n_iter[j] += 1
                    elif j not in polishing:  # (a polishing neuron is within tol already)
                        rejected.append(j)
                        step[j] = s / 2
                pending = rejected
                if not pending:
                    break
            failed = set(pending)
            settled = []
            for j in active:
                if j in failed:
                    status[j] = _LINE_SEARCH_FAILED
                elif j in polishing:
                    status[j] = _CONVERGED
                elif n_iter[j] >= max_iter:
                    status[j] = _CONVERGED if gradient_norm[j] <= tol else _MAX_ITER_REACHED
                else:
                    continue
                settled.append(j)
            active = [j for j in active if j not in settled]
        for j in group:  # only the coefficients stay on the client
            gradients.pop(j, None)
            hessians.pop(j, None)

    for first in range(0, n_neurons, neurons_per_pass):
        solve(np.arange(first, min(first + neurons_per_pass, n_neurons)))

    # A silent neuron has no finite MLE (its intercept runs to -inf until the gradient is below
    # tol), as the local engine reports. Perfect separation by the features is not detected here.
    status[(summary["count_sum"] == 0) & (status == _CONVERGED)] = _MLE_AT_INFINITY
    info = {
        "status": status,
        "n_iter": n_iter,
        "gradient_norm": gradient_norm,
        "objective": objective,
        "n_hessian": n_hessian,
        "n_samples_used": n_used,
        # The certificate needs the design on the client: not run on sample-split data.
        "dropped_features": [np.empty(0, dtype=np.int64) for _ in range(n_neurons)],
    }
    if needs_rank:
        dof = np.full(n_neurons, n_used - _fitting.gram_rank(summary["gram"][1:, 1:]) - 1.0)
    else:
        dof = np.full(n_neurons, n_used - n_features - 1.0)
    scale = model.observation_model.estimate_scale(np.empty((0, n_neurons)), None, None)
    result = FitResult(np.asfortranarray(coef), intercept, scale, info, dof)
    return _store_fit(model, result, tol, max_iter)
