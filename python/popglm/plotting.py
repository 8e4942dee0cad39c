"""Figures of coupled GLMs: coupling filters, connectivity maps, feature matrices, basis kernels.

matplotlib is an optional dependency (``pip install popglm[plot]``); it is imported when a
function here is called. Every function returns the :class:`matplotlib.figure.Figure` it drew,
so scripts can save it and tests can inspect it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["plot_basis", "plot_connectivity", "plot_coupling_filters", "plot_feature_matrix"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("popglm.plotting needs matplotlib: pip install 'popglm[plot]'") from None
    return plt


def _kernel(basis: Any) -> NDArray:
    kernel = np.asarray(basis.kernel_ if hasattr(basis, "kernel_") else basis, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(
            "basis must be a convolution basis or a (window_size, n_basis_funcs) kernel matrix, "
            f"got an array of shape {kernel.shape}"
        )
    return kernel


def coupling_filters_of(model: Any, basis: Any) -> NDArray:
    """Coupling filters ``kernel @ w`` of a fitted population model.

    Parameters
    ----------
    model : PopulationGLM
        Fitted on history features of the population's own counts (``compute_features`` layout).
    basis : convolution basis or ndarray, shape (window_size, n_basis_funcs)

    Returns
    -------
    ndarray, shape (n_senders, window_size, n_receivers)
        ``filters[s, :, r]``: effect of a spike of ``s`` on the log-rate of ``r``, lag 1 first.
    """
    kernel = _kernel(basis)
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.ndim == 1:
        coef = coef[:, None]
    n_basis = kernel.shape[1]
    if coef.shape[0] % n_basis:
        raise ValueError(
            f"model.coef_ has {coef.shape[0]} features, not a multiple of the basis's "
            f"n_basis_funcs = {n_basis}: was the model fitted on this basis's features?"
        )
    blocks = coef.reshape(coef.shape[0] // n_basis, n_basis, coef.shape[1])
    return np.einsum("lb,sbr->slr", kernel, blocks)


def plot_coupling_filters(
    model: Any,
    basis: Any,
    inference: Any = None,
    *,
    level: float = 0.95,
    bin_size: float | None = None,
    neuron_names: list[str] | None = None,
    figsize: tuple[float, float] | None = None,
    pairs: ArrayLike | None = None,
    reference: ArrayLike | None = None,
    senders: ArrayLike | None = None,
    receivers: ArrayLike | None = None,
    max_pairs: int = 36,
):
    """Draw the coupling filters, sender (rows) by receiver (columns), with confidence bands.

    With ``pairs``, only the listed (sender, receiver) pairs are drawn, one axes each, in rows of
    at most four. Without, the grid of ``senders`` x ``receivers`` (default: all) is drawn when
    it has at most ``max_pairs`` axes, and otherwise its ``max_pairs`` strongest pairs (largest
    absolute filter value) as a list: a population of 100+ neurons never builds its full grid.

    Parameters
    ----------
    model : PopulationGLM
        Fitted on the history features of its own counts through ``basis``.
    basis : convolution basis or ndarray, shape (window_size, n_basis_funcs)
    inference : CoefficientInference, optional
        ``model.inference(X)``: pointwise Wald bands at ``level`` are shaded.
    level : float
        Confidence level of the bands.
    bin_size : float, optional
        Seconds per bin: the x axis is then in seconds, else in bins.
    neuron_names : list of str, optional
    figsize : (float, float), optional
    pairs : array_like of int, shape (n_pairs, 2), optional
        (sender, receiver) pairs to draw instead of the full grid.
    reference : ndarray, shape (n_senders, window_size, n_receivers), optional
        Filters drawn dashed beside the fitted ones, e.g. a simulated network's true filters.
    senders, receivers : array_like of int, optional
        Restrict the drawn pairs to these senders / receivers (ignored with ``pairs``).
    max_pairs : int
        The most axes drawn without ``pairs``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per (sender, receiver) pair (row-major over senders and receivers, or in the
        order of ``pairs``); all share x and y.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import popglm as nmo
    >>> from popglm.plotting import plot_coupling_filters
    >>> counts = np.random.default_rng(0).poisson(0.3, size=(2000, 3))
    >>> basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
    >>> X = basis.compute_features(counts)
    >>> model = nmo.glm.PopulationGLM().fit(X, counts)
    >>> fig = plot_coupling_filters(model, basis, model.inference(X))
    >>> len(fig.axes)
    9
    """
    plt = _pyplot()
    if inference is not None:
        filters, lower, upper = inference.coupling_filters(basis, level=level)
    else:
        filters = coupling_filters_of(model, basis)
        lower = upper = None
    n_senders, window, n_receivers = filters.shape
    names = _names(neuron_names, max(n_senders, n_receivers))
    lags = np.arange(1, window + 1) * (bin_size if bin_size else 1.0)
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float64)
        if reference.shape != filters.shape:
            raise ValueError(
                f"reference must have shape {filters.shape} like the filters, got {reference.shape}"
            )
    if pairs is None:
        rows = np.arange(n_senders) if senders is None else _indices(senders, n_senders, "senders")
        columns = (
            np.arange(n_receivers) if receivers is None
            else _indices(receivers, n_receivers, "receivers")
        )  # fmt: skip
        if int(max_pairs) < 1:
            raise ValueError(f"max_pairs must be >= 1, got {max_pairs!r}")
        if rows.size * columns.size > max_pairs:
            peak = np.abs(filters[np.ix_(rows, np.arange(window), columns)]).max(axis=1)
            strongest = np.argsort(-peak, axis=None, kind="stable")[: int(max_pairs)]
            pick = np.unravel_index(strongest, peak.shape)
            pairs = np.column_stack([rows[pick[0]], columns[pick[1]]])
    if pairs is None:
        chosen = [(int(s), int(r)) for s in rows for r in columns]
        n_rows, n_cols = rows.size, columns.size
    else:
        chosen_array = np.asarray(pairs)
        if chosen_array.ndim != 2 or chosen_array.shape[1] != 2 or len(chosen_array) == 0:
            raise ValueError(
                f"pairs must have shape (n_pairs, 2) with n_pairs >= 1, got {chosen_array.shape}"
            )
        if not np.issubdtype(chosen_array.dtype, np.integer) or (chosen_array < 0).any() or (
            chosen_array[:, 0] >= n_senders).any() or (chosen_array[:, 1] >= n_receivers).any():  # fmt: skip
            raise ValueError(
                f"pairs must hold integer (sender, receiver) indices below ({n_senders}, "
                f"{n_receivers})"
            )
        chosen = [(int(s), int(r)) for s, r in chosen_array]
        n_cols = min(len(chosen), 4)
        n_rows = -(-len(chosen) // n_cols)
    size = figsize or (1.6 * n_cols + 1.0, 1.2 * n_rows + 1.0)
    fig, axes = plt.subplots(n_rows, n_cols, sharex=True, sharey=True, squeeze=False, figsize=size)
    for ax in axes.flat[len(chosen) :]:
        ax.set_visible(False)
    for k, (s, r) in enumerate(chosen):
        ax = axes.flat[k]
        ax.axhline(0.0, color="0.7", linewidth=0.6)
        color = "tab:red" if s == r else "tab:blue"  # self-coupling: the history filter
        if reference is not None:
            ax.plot(lags, reference[s, :, r], color="black", linestyle="--", linewidth=1.0)
        if lower is not None:
            ax.fill_between(lags, lower[s, :, r], upper[s, :, r], color=color, alpha=0.25,
                            linewidth=0)  # fmt: skip
        ax.plot(lags, filters[s, :, r], color=color, linewidth=1.2)
        if n_rows * n_cols == len(chosen) and pairs is None:
            if k >= len(chosen) - n_cols:
                ax.set_xlabel(f"to {names[r]}\nlag ({'s' if bin_size else 'bins'})")
            if k % n_cols == 0:
                ax.set_ylabel(f"from {names[s]}")
        else:
            ax.set_title(f"{names[s]} \u2192 {names[r]}", fontsize="small")
            if k >= len(chosen) - n_cols:
                ax.set_xlabel(f"lag ({'s' if bin_size else 'bins'})")
    fig.suptitle("Coupling filters (log-rate change per spike)")
    fig.tight_layout()
    return fig


def plot_connectivity(
    strength: Any,
    basis: Any = None,
    significant: ArrayLike | None = None,
    *,
    neuron_names: list[str] | None = None,
    ax: Any = None,
    vmax: float | None = None,
    percentile: float = 99.0,
    diagonal: bool = True,
    order: ArrayLike | None = None,
    senders: ArrayLike | None = None,
    receivers: ArrayLike | None = None,
):
    """Draw coupling strength as a sender x receiver heatmap, marking significant pairs.

    Parameters
    ----------
    strength : PopulationGLM or ndarray, shape (n_senders, n_receivers)
        A fitted model (with ``basis``: each pair's strength is the sum of its filter over lags,
        the total log-rate change one spike causes) or a matrix of strengths.
    basis : convolution basis or ndarray, optional
        Needed when ``strength`` is a model.
    significant : ndarray of bool, shape (n_senders, n_receivers), optional
        Pairs to mark with a black dot, e.g. ``benjamini_hochberg(p_values)`` of the p-values
        from ``model.inference(X).coupling_test(n_basis_funcs)``. With a model, the pairs whose
        features its fit dropped (no MLE along them: ``fit_info_["dropped_features"]``) are
        marked "not identifiable" with a grey cross instead, never as significant.
    neuron_names : list of str, optional
    ax : matplotlib Axes, optional
        Draw here instead of in a new figure.
    vmax : float, optional
        The colour scale's limit (strengths from -vmax to vmax), e.g. to draw two maps on one
        scale; by default the ``percentile`` of the absolute off-diagonal strengths (a few
        outlying pairs then saturate instead of washing out the rest; the colour bar shows it).
    percentile : float
        See ``vmax``; 100 gives the largest.
    diagonal : bool
        Draw the self-couplings (the history filters, often far stronger); False leaves the
        diagonal blank.
    order : array_like of int, optional
        A permutation of the neurons (e.g. from a clustering) applied to senders and receivers.
    senders, receivers : array_like of int, optional
        Draw only these rows / columns (after ``order``), e.g. 20 neurons of 170.

    Tick labels name every neuron up to 30 and every k-th beyond; the figure grows with the
    number of neurons up to 10 inches a side.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from popglm.plotting import plot_connectivity
    >>> fig = plot_connectivity(np.array([[-1.0, 0.3], [0.0, -0.8]]), significant=np.eye(2) > 0)
    >>> len(fig.axes)  # the map and its colour bar
    2
    """
    plt = _pyplot()
    unidentified = None
    if hasattr(strength, "coef_"):
        if basis is None:
            raise ValueError("basis is required when strength is a fitted model")
        matrix = coupling_filters_of(strength, basis).sum(axis=1)
        unidentified = _unidentified_pairs(strength, matrix.shape, basis)
    else:
        matrix = np.asarray(strength, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(
            f"strength must be a model or a (n_senders, n_receivers) matrix, got shape {matrix.shape}"
        )
    marks = None
    if significant is not None:
        marks = np.asarray(significant)
        if marks.shape != matrix.shape:
            raise ValueError(f"significant must have shape {matrix.shape}, got {marks.shape}")
        marks = marks & ~unidentified if unidentified is not None else marks.astype(bool)
    if not (np.isfinite(percentile) and 0 < percentile <= 100):
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    names = np.array(_names(neuron_names, max(matrix.shape)), dtype=object)
    if not diagonal:
        matrix = matrix.copy()
        size = min(matrix.shape)
        matrix[np.arange(size), np.arange(size)] = np.nan
        for layer in (marks, unidentified):
            if layer is not None:
                layer[np.arange(size), np.arange(size)] = False
    # Which rows and columns, in which order: names travel with them.
    row_index = np.arange(matrix.shape[0])
    column_index = np.arange(matrix.shape[1])
    if order is not None:
        permutation = _indices(order, matrix.shape[0], "order")
        if matrix.shape[0] != matrix.shape[1] or sorted(permutation) != list(
            range(matrix.shape[0])
        ):
            raise ValueError("order must be a permutation of the neurons of a square map")
        row_index, column_index = permutation, permutation
    if senders is not None:
        row_index = row_index[_indices(senders, row_index.size, "senders")]
    if receivers is not None:
        column_index = column_index[_indices(receivers, column_index.size, "receivers")]
    off_diagonal = matrix[~np.eye(*matrix.shape, dtype=bool)] if diagonal else matrix
    selection = np.ix_(row_index, column_index)
    matrix = matrix[selection]
    layers = [
        None if layer is None else layer[selection] for layer in (marks, unidentified)
    ]  # fmt: skip
    marks, unidentified = layers
    if ax is None:
        largest = max(matrix.shape)
        per_cell = min(0.45, 9.0 / largest)
        fig, ax = plt.subplots(
            figsize=(1.6 + per_cell * matrix.shape[1], 0.8 + per_cell * matrix.shape[0])
        )
    else:
        fig = ax.figure
    if vmax is not None:
        if not (np.isfinite(vmax) and vmax > 0):
            raise ValueError(f"vmax must be a finite number > 0, got {vmax!r}")
        limit = float(vmax)
    else:
        values = np.abs(off_diagonal[np.isfinite(off_diagonal)])
        if values.size == 0:
            values = np.abs(matrix[np.isfinite(matrix)])
        limit = float(np.percentile(values, percentile)) if values.size else 1.0
    limit = limit or 1.0
    colours = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    image = ax.imshow(
        np.ma.masked_invalid(matrix), cmap=colours, vmin=-limit, vmax=limit, interpolation="nearest"
    )
    saturated = (
        np.nanmax(np.abs(matrix), initial=0.0) > limit if np.isfinite(matrix).any() else False
    )
    fig.colorbar(
        image, ax=ax, label="coupling strength (sum over lags)",
        extend="both" if saturated else "neither",
    )  # fmt: skip
    marker_size = max(2.0, min(12.0, 3000.0 / max(matrix.shape) ** 2))
    if marks is not None and marks.any():
        rows, columns = np.nonzero(marks)
        ax.scatter(columns, rows, s=marker_size, color="black", label="significant")
    if unidentified is not None and unidentified.any():
        rows, columns = np.nonzero(unidentified)
        ax.scatter(columns, rows, s=marker_size * 1.2, marker="x", color="0.4",
                   label="not identifiable")  # fmt: skip
    if ax.collections:
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.08), ncol=2, fontsize="small",
                  frameon=False)  # fmt: skip
    for axis_ticks, index, rotate in (
        (ax.set_xticks, column_index, 90),
        (ax.set_yticks, row_index, 0),
    ):
        step = max(1, -(-index.size // 30))
        positions = np.arange(0, index.size, step)
        axis_ticks(positions, list(names[index[positions]]), rotation=rotate, fontsize="small")
    ax.set_xlabel("receiver")
    ax.set_ylabel("sender")
    ax.set_title("Connectivity")
    return fig


def _indices(values: ArrayLike, size: int, name: str) -> NDArray:
    """Integer indices below ``size``, or a ValueError naming the argument."""
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D array of integers, got {values!r}")
    if (array < 0).any() or (array >= size).any():
        raise ValueError(f"{name} must hold indices in [0, {size}), got {values!r}")
    return array.astype(np.int64)


def _unidentified_pairs(model: Any, shape: tuple[int, int], basis: Any) -> NDArray | None:
    """(sender, receiver) pairs with a feature the fit dropped, or None when none was."""
    dropped = getattr(model, "fit_info_", {}).get("dropped_features")
    if dropped is None or not any(len(d) for d in dropped):
        return None
    n_basis = int(basis.n_basis_funcs)
    pairs = np.zeros(shape, dtype=bool)
    for receiver, features in enumerate(dropped):
        pairs[np.unique(np.asarray(features, dtype=np.int64) // n_basis), receiver] = True
    return pairs


def plot_feature_matrix(
    X: ArrayLike,
    counts: ArrayLike | None = None,
    *,
    n_samples: int | None = 100,
    basis: Any = None,
    figsize: tuple[float, float] = (8.0, 4.0),
):
    """Draw the design matrix as an image, as in the coupling how-to, beside the counts.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
        Features (NaN rows at the start of convolutional features are drawn blank).
    counts : ndarray, shape (n_samples, n_neurons), optional
        The population's counts, drawn beside the features.
    n_samples : int, optional
        Show the first ``n_samples`` rows (all when None).
    basis : convolution basis, optional
        Lines separate each sender's ``n_basis_funcs`` columns.
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (counts, features) when ``counts`` is given, else one.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import popglm as nmo
    >>> from popglm.plotting import plot_feature_matrix
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(100, 4))
    >>> basis = nmo.basis.HistoryConv(window_size=10)
    >>> fig = plot_feature_matrix(basis.compute_features(counts), counts, basis=basis)
    >>> len(fig.axes)
    2
    """
    plt = _pyplot()
    features = np.asarray(X, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"X must have shape (n_samples, n_features), got {features.shape}")
    rows = slice(None) if n_samples is None else slice(0, n_samples)
    if counts is not None:
        spikes = np.asarray(counts, dtype=np.float64).reshape(len(counts), -1)
        if spikes.shape[0] != features.shape[0]:
            raise ValueError(
                f"counts must have n_samples = {features.shape[0]} rows like X, got {spikes.shape[0]}"
            )
        fig, (count_ax, feature_ax) = plt.subplots(
            1, 2, figsize=figsize, width_ratios=[1, 4], sharey=True
        )
        count_ax.imshow(spikes[rows], aspect="auto", cmap="Greys", interpolation="none")
        count_ax.set_title("counts")
        count_ax.set_xlabel("neuron")
        count_ax.set_ylabel("sample")
    else:
        fig, feature_ax = plt.subplots(figsize=figsize)
        feature_ax.set_ylabel("sample")
    feature_ax.imshow(features[rows], aspect="auto", cmap="Greys", interpolation="none")
    feature_ax.set_title("features")
    feature_ax.set_xlabel("feature")
    if basis is not None:
        for boundary in range(basis.n_basis_funcs, features.shape[1], basis.n_basis_funcs):
            feature_ax.axvline(boundary - 0.5, color="tab:orange", linewidth=0.8)
    fig.tight_layout()
    return fig


def plot_basis(basis: Any, *, bin_size: float | None = None, ax: Any = None):
    """Draw the basis kernels over the history window (lag 1 first).

    Parameters
    ----------
    basis : convolution basis or ndarray, shape (window_size, n_basis_funcs)
    bin_size : float, optional
        Seconds per bin for the x axis.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import popglm as nmo
    >>> from popglm.plotting import plot_basis
    >>> fig = plot_basis(nmo.basis.RaisedCosineLogConv(5, window_size=40))
    >>> len(fig.axes[0].lines)
    5
    """
    plt = _pyplot()
    kernel = _kernel(basis)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.0))
    else:
        fig = ax.figure
    lags = np.arange(1, kernel.shape[0] + 1) * (bin_size if bin_size else 1.0)
    for k in range(kernel.shape[1]):
        ax.plot(lags, kernel[:, k], linewidth=1.2)
    ax.set_xlabel(f"lag ({'s' if bin_size else 'bins'})")
    ax.set_title(getattr(basis, "label", "basis kernels"))
    return fig


def _names(names: list[str] | None, count: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(count)]
    names = [str(name) for name in names]
    if len(names) < count:
        raise ValueError(f"neuron_names needs {count} names, got {len(names)}")
    return names
