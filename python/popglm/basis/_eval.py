"""Evaluation bases: features are the basis functions evaluated at the inputs."""

from __future__ import annotations

import inspect
import itertools
import numbers
import warnings
from collections.abc import Callable
from math import prod

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_positive_int
from . import _functions as F
from ._base import Basis, user_stacklevel

__all__ = ["Category", "CustomBasis", "FourierEval", "IdentityEval", "Zero"]


def _check_pair(values, name: str) -> tuple[float, float]:
    if not hasattr(values, "__len__") or len(values) != 2:
        raise ValueError(f"{name} must be a pair (lower, upper), got {values!r}")
    try:
        lower, upper = (float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold two floats, got {values!r}") from None
    if not upper > lower:
        raise ValueError(
            f"{name} must have lower < upper, got {(lower, upper)}: the lower bound is greater "
            "than or equal to the upper bound"
        )
    return lower, upper


class _EvalBasis(Basis):
    """Shared machinery of the evaluation bases: bounds, fill value, features."""

    # Bases defined on the whole real line (Fourier) do not fill out-of-bounds samples.
    _fill_out_of_bounds = True

    def __init__(self, label: str | None, bounds=None, fill_value: float = np.nan) -> None:
        super().__init__(label=label)
        self.bounds = bounds
        self.fill_value = fill_value

    @property
    def bounds(self):
        """Domain ``(lower, upper)`` mapped to [0, 1], or None for each input's min and max.

        A basis of several inputs takes one pair per input. Samples outside the bounds give
        ``fill_value`` rows in ``compute_features``.
        """
        return self._bounds

    @bounds.setter
    def bounds(self, values) -> None:
        if values is None:
            self._bounds = None
            return
        if isinstance(values, np.ndarray):
            values = values.tolist()
        if not isinstance(values, (list, tuple)):
            raise TypeError(
                f"bounds must be a pair (lower, upper) or one pair per input, got {values!r}"
            )
        if len(values) == 2 and not any(isinstance(v, (list, tuple)) for v in values):
            self._bounds = _check_pair(values, "bounds")
            return
        if len(values) != self._n_inputs:
            raise ValueError(
                f"bounds must be a pair (lower, upper) or one pair per input ({self._n_inputs}), "
                f"got {values!r}"
            )
        self._bounds = tuple(_check_pair(v, f"bounds[{i}]") for i, v in enumerate(values))

    @property
    def fill_value(self) -> float:
        """Value of the features of samples outside ``bounds`` (default NaN)."""
        return self._fill_value

    @fill_value.setter
    def fill_value(self, value: float) -> None:
        if not isinstance(value, numbers.Real):
            raise TypeError(f"fill_value must be a real number, got {value!r}")
        self._fill_value = float(value)

    def _bounds_per_input(self) -> list[tuple[float, float] | None]:
        if self._bounds is None or not isinstance(self._bounds[0], tuple):
            return [self._bounds] * self._n_inputs
        return list(self._bounds)

    def _grid_bounds(self) -> list[tuple[float, float]]:
        return [b if b is not None else (0.0, 1.0) for b in self._bounds_per_input()]

    def _features(self, arrays: list[NDArray], epochs: list) -> NDArray:
        n_samples = arrays[0].shape[0]
        flat = [x.reshape(n_samples, -1) for x in arrays]
        self._check_evaluation(flat[0].size, "compute_features")
        out = self._evaluate(*flat).reshape(n_samples, -1)
        if self._fill_out_of_bounds and self._bounds is not None:
            outside = np.zeros(n_samples, dtype=bool)
            for x, (lower, upper) in zip(flat, self._bounds_per_input(), strict=True):
                outside |= ((x < lower) | (x > upper)).any(axis=1)
            out = np.where(outside[:, None], self.fill_value, out)
        return out

    def compute_features(self, *xi: ArrayLike) -> NDArray:
        """Evaluate the basis at every sample of the inputs.

        Parameters
        ----------
        *xi : array-like or pynapple Tsd/TsdFrame/TsdTensor, shape (n_samples, ...)
            One array per input of the basis; every axis after the first is a separate input
            column, rescaled separately (by ``bounds`` if set, else by its min and max).

        Returns
        -------
        ndarray or pynapple TsdFrame, shape (n_samples, n_output_features)
            Input-major columns; rows with a sample outside ``bounds`` are ``fill_value``.

        Examples
        --------
        >>> import numpy as np
        >>> import popglm as nmo
        >>> basis = nmo.basis.BSplineEval(4, order=2, bounds=(0, 1))
        >>> basis.compute_features(np.array([0.0, 0.5, 2.0]))
        array([[1. , 0. , 0. , 0. ],
               [0. , 0.5, 0.5, 0. ],
               [nan, nan, nan, nan]])
        """
        return super().compute_features(*xi)

    def _rescaled(self, points: NDArray) -> tuple[NDArray, NDArray]:
        return F.rescale(points, self._bounds_per_input()[0])

    def _unit_points(self, points: NDArray) -> tuple[NDArray, NDArray]:
        """Map the samples to [0, 1] by ``bounds`` (else their min and max); return the scaling too.

        The families (``_raised_cosine``, ``_splines``, ...) evaluate on these points.
        """
        return self._rescaled(points)


class IdentityEval(_EvalBasis):
    """The input itself as a feature (one basis function), NaN or ``fill_value`` outside bounds.

    Parameters
    ----------
    bounds : tuple of float, optional
        ``(lower, upper)``; samples outside are replaced by ``fill_value``.
    fill_value : float
        Value of samples outside ``bounds`` (default NaN).
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> nmo.basis.IdentityEval(bounds=(0, 1)).compute_features(np.array([0.2, 3.0]))
    array([[0.2],
           [nan]])
    """

    def __init__(
        self,
        bounds: tuple[float, float] | None = None,
        fill_value: float = np.nan,
        label: str | None = None,
    ) -> None:
        self._n_basis_funcs = 1
        super().__init__(label, bounds, fill_value)

    def _evaluate(self, points: NDArray) -> NDArray:
        bounds = self._bounds_per_input()[0]
        if bounds is None:
            return points[..., None].astype(np.float64)
        lower, upper = bounds
        return np.where((points < lower) | (points > upper), self.fill_value, points)[..., None]


class Zero(_EvalBasis):
    """A basis with no functions: zero feature columns (e.g. to drop a covariate).

    Parameters
    ----------
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> nmo.basis.Zero().compute_features(np.ones(5)).shape
    (5, 0)
    """

    def __init__(self, label: str | None = None) -> None:
        self._n_basis_funcs = 0
        super().__init__(label, None)

    @_EvalBasis.bounds.setter
    def bounds(self, values) -> None:
        if values is not None:
            raise AttributeError("Zero basis does not use bounds")
        self._bounds = None

    def _evaluate(self, points: NDArray) -> NDArray:
        return np.empty((*points.shape, 0), dtype=np.float64)


def _frequency_axis(arg) -> NDArray:
    if isinstance(arg, (bool, np.bool_)):
        raise TypeError(f"frequencies must be integers, got {arg!r}")
    if isinstance(arg, numbers.Integral):
        if arg < 0:
            raise ValueError(f"Integer frequencies must be >= 0, got {arg}")
        return np.arange(int(arg), dtype=np.float64)
    if isinstance(arg, tuple):
        if len(arg) != 2 or not all(isinstance(v, numbers.Integral) for v in arg):
            raise TypeError(f"Tuple frequencies must be (start, stop) integers, got {arg!r}")
        start, stop = arg
        if start < 0 or stop <= start:
            raise ValueError(
                f"Tuple frequencies must satisfy 0 <= start < stop, got start={start}, stop={stop}"
            )
        return np.arange(start, stop, dtype=np.float64)
    values = np.asarray(arg)
    if values.ndim != 1 or values.dtype.kind not in "iuf":
        raise TypeError(
            "frequencies must be an int, a (start, stop) tuple, a 1-D array of non-negative "
            f"integers or a list of those (one per dimension), got {arg!r}"
        )
    if (values < 0).any() or (values != np.round(values)).any():
        raise ValueError("frequencies must be non-negative integers")
    ordered = np.sort(values).astype(np.float64)
    if not np.array_equal(ordered, values):
        warnings.warn(
            "Unsorted frequencies provided! Frequencies will be sorted.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return ordered


class FourierEval(_EvalBasis):
    """Fourier basis: cosines and sines of integer frequencies over the bounds (NeMoS's).

    Each input is rescaled to [0, 1] (by ``bounds`` if given, else its min and max) and
    mapped to an angle ``2 * pi * x``; the features are ``cos`` of every selected
    frequency combination followed by ``sin`` of each (the sine of the zero frequency,
    identically 0, is dropped). Samples outside ``bounds`` are not filled: the basis is
    periodic.

    Parameters
    ----------
    frequencies : int, tuple, array or list
        ``n`` means frequencies ``0 .. n-1``; ``(start, stop)`` means ``start .. stop-1``; an
        array lists them; a list gives one of these per dimension.
    ndim : int
        Number of inputs (dimensions), default 1.
    bounds : tuple of float or tuple of tuples, optional
        ``(lower, upper)`` for every input, or one pair per input.
    frequency_mask : {"no-intercept", "all"}, array of 0/1, callable or None
        Which frequency combinations to keep: all but the all-zero one (default), all, a
        mask of shape ``(n_frequencies_dim_0, ...)``, or a function of the frequencies that
        returns a bool.
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.FourierEval(3, bounds=(0, 1))
    >>> basis.n_basis_funcs
    4
    >>> np.round(basis.compute_features(np.array([0.25])), 12)
    array([[ 0., -1.,  1.,  0.]])
    """

    _fill_out_of_bounds = False
    is_complex = True  # cosine and sine columns: a product of two Fourier bases is refused

    def __init__(
        self,
        frequencies,
        ndim: int = 1,
        bounds=None,
        frequency_mask="no-intercept",
        label: str | None = None,
    ) -> None:
        if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim < 1:
            raise ValueError(f"ndim must be a positive integer, got {ndim!r}")
        self._n_inputs = int(ndim)
        self._set_frequencies(frequencies)
        self._set_mask(frequency_mask)
        super().__init__(label, bounds, np.nan)

    @property
    def ndim(self) -> int:
        """Number of inputs of the basis."""
        return self._n_inputs

    @property
    def frequencies(self) -> list[NDArray]:
        """The frequencies of each dimension."""
        return self._frequencies

    @frequencies.setter
    def frequencies(self, frequencies) -> None:
        self._set_frequencies(frequencies)
        self._set_mask(self._frequency_mask if isinstance(self._frequency_mask, str) else None)

    @property
    def frequency_mask(self):
        """The frequency selection: "no-intercept", "all", a 0/1 array or a callable."""
        return self._frequency_mask

    @frequency_mask.setter
    def frequency_mask(self, mask) -> None:
        self._set_mask(mask)

    @property
    def masked_frequencies(self) -> NDArray:
        """The selected frequency combinations, shape ``(ndim, n_combinations)``."""
        return self._combinations

    def _set_frequencies(self, frequencies) -> None:
        ndim = self._n_inputs
        if isinstance(frequencies, list):
            if len(frequencies) != ndim:
                raise ValueError(
                    f"frequencies given as a list must have one entry per dimension ({ndim}), "
                    f"got {len(frequencies)}"
                )
            self._frequencies = [_frequency_axis(f) for f in frequencies]
        else:
            self._frequencies = [_frequency_axis(frequencies)] * ndim

    def _set_mask(self, mask) -> None:
        grids = np.meshgrid(*self._frequencies, indexing="ij")
        every = np.stack([g.reshape(-1) for g in grids]) if grids else np.zeros((0, 0))
        if mask is None or (isinstance(mask, str) and mask == "all"):
            self._frequency_mask = "all"
            combinations = every
        elif isinstance(mask, str) and mask == "no-intercept":
            self._frequency_mask = "no-intercept"
            combinations = every
            if combinations.shape[1] and np.all(combinations[:, 0] == 0):
                combinations = combinations[:, 1:]
        elif isinstance(mask, str):
            raise ValueError(
                f"frequency_mask must be 'no-intercept', 'all', an array of 0/1 or a callable, "
                f"got {mask!r}"
            )
        elif callable(mask):
            selected = []
            for freqs in itertools.product(*self._frequencies):
                keep = mask(*freqs)
                if not (
                    isinstance(keep, (numbers.Number, np.bool_, np.ndarray)) and keep in (0, 1)
                ):
                    raise ValueError(
                        f"frequency_mask(*freqs) must return a bool or 0/1, got {keep!r} for "
                        f"frequencies {freqs}"
                    )
                if keep:
                    selected.append(freqs)
            self._frequency_mask = mask
            combinations = (
                np.asarray(selected, dtype=np.float64).T
                if selected
                else np.zeros((self._n_inputs, 0))
            )
        else:
            values = np.asarray(mask)
            expected = tuple(f.size for f in self._frequencies)
            if not np.isin(values, (0, 1)).all():
                raise ValueError("frequency_mask must be an array of 0s and 1s")
            if values.shape != expected:
                raise ValueError(
                    f"frequency_mask must have shape {expected} (one entry per frequency along "
                    f"each dimension), got {values.shape}"
                )
            values = values.astype(bool)
            self._frequency_mask = values
            index = np.nonzero(values)
            combinations = np.stack([f[i] for f, i in zip(self._frequencies, index, strict=True)])
        self._combinations = np.asarray(combinations, dtype=np.float64)
        has = self._combinations.shape[1] > 0
        self._zero_phase = int(has and bool(np.all(self._combinations[:, 0] == 0)))

    @property
    def n_basis_funcs(self) -> int:
        """Number of features per input sample: cosines plus sines."""
        return 2 * self._combinations.shape[1] - self._zero_phase

    def _evaluate(self, *points: NDArray) -> NDArray:
        shape = points[0].shape
        angles = []
        for x, bounds in zip(points, self._bounds_per_input(), strict=True):
            scaled, _ = F.rescale(x, bounds)
            angles.append(2.0 * np.pi * scaled.reshape(-1))
        phase = np.stack(angles, axis=-1) @ self._combinations
        out = np.concatenate([np.cos(phase), np.sin(phase[:, self._zero_phase :])], axis=1)
        return out.reshape(*shape, out.shape[-1])

    def _repr_params(self) -> dict[str, object]:
        return {
            "frequencies": self._frequencies,
            "ndim": self.ndim,
            "bounds": self.bounds,
            "frequency_mask": self.frequency_mask,
        }


def _n_inputs_of(funcs: list[Callable]) -> int:
    """Count the required positional arguments shared by all ``funcs`` (ufuncs: ``nin``)."""
    counts = set()
    for f in funcs:
        if isinstance(f, np.ufunc):
            counts.add(f.nin)
            continue
        try:
            params = inspect.signature(f).parameters.values()
        except (TypeError, ValueError):
            counts.add(1)
            continue
        counts.add(
            sum(
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
                for p in params
            )
        )
    if len(counts) != 1:
        raise ValueError(
            "Each function provided to ``funcs`` in ``CustomBasis`` must accept the same "
            "number of input time series."
        )
    return max(counts.pop(), 1)


class CustomBasis(_EvalBasis):
    """A basis of user functions: feature ``k`` is ``funcs[k](*xi, **basis_kwargs)``.

    As in NeMoS, each function receives the inputs sliced to ``ndim_input`` dimensions
    (``(n_samples,)`` by default) and is applied to every remaining input column in turn.

    Parameters
    ----------
    funcs : callable or list of callable
        The basis functions; each takes one array per input and returns an array of shape
        ``(n_samples, *output_shape)``. All take the same number of inputs.
    ndim_input : int
        Dimensions of the input one function call consumes, sample axis included (default 1).
    output_shape : tuple of int, optional
        Trailing shape each function returns (default ``()``); updated by
        ``compute_features``.
    basis_kwargs : dict, optional
        Keyword arguments passed to every function.
    pynapple_support : bool
        Accepted for NeMoS compatibility; pynapple inputs are always supported.
    label : str, optional
        Name of the basis (default: the class name).
    is_complex : bool
        Accepted for NeMoS compatibility (marks complex-valued bases).
    bounds : tuple of float, optional
        Samples outside ``(lower, upper)`` give ``fill_value`` rows.
    fill_value : float
        Features of samples outside ``bounds`` (default NaN).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.CustomBasis([np.sin, np.cos])
    >>> basis.compute_features(np.array([0.0, np.pi / 2])).round(12)
    array([[0., 1.],
           [1., 0.]])
    """

    def __init__(
        self,
        funcs: list[Callable] | Callable,
        ndim_input: int = 1,
        output_shape: tuple[int, ...] | int | None = None,
        basis_kwargs: dict | None = None,
        pynapple_support: bool = True,
        label: str | None = None,
        is_complex: bool = False,
        bounds=None,
        fill_value: float = np.nan,
    ) -> None:
        funcs = [funcs] if callable(funcs) else list(funcs)
        if not funcs or not all(callable(f) for f in funcs):
            raise ValueError("funcs must be a callable or a non-empty list of callables")
        self.funcs = funcs
        self._n_inputs = _n_inputs_of(funcs)
        self.ndim_input = check_positive_int(ndim_input, "ndim_input")
        if output_shape is None:
            output_shape = ()
        elif isinstance(output_shape, numbers.Integral):
            output_shape = (int(output_shape),)
        self.output_shape = tuple(output_shape)
        self.basis_kwargs = {} if basis_kwargs is None else dict(basis_kwargs)
        self.pynapple_support = bool(pynapple_support)
        self.is_complex = bool(is_complex)
        super().__init__(label, bounds, fill_value)

    @property
    def n_basis_funcs(self) -> int:
        """Number of functions."""
        return len(self.funcs)

    @property
    def n_output_features(self) -> int | None:
        """Functions x output shape x vectorised input columns (None until shapes are known)."""
        shape = self._input_shapes[0]
        if shape is None:
            return None
        vectorised = shape[self.ndim_input - 1 :]
        return len(self.funcs) * prod(self.output_shape) * prod(vectorised)

    def _split_shape(self) -> tuple[int, ...]:
        shape = self._input_shapes[0]
        assert shape is not None
        return (*self.output_shape, *shape[self.ndim_input - 1 :])

    def _evaluate(self, *points: NDArray) -> NDArray:
        if any(x.ndim < self.ndim_input for x in points):
            raise ValueError(
                f"Each input must have at least ndim_input = {self.ndim_input} dimensions, got "
                f"{[x.ndim for x in points]}"
            )
        shapes = {x.shape for x in points}
        if len(shapes) > 1:
            raise ValueError(f"CustomBasis requires inputs of the same shape, got {shapes}")
        plain = all(x.ndim == self.ndim_input for x in points)
        vec_shape = points[0].shape[self.ndim_input :]
        per_func = []
        for f in self.funcs:
            if plain:
                per_func.append(np.asarray(f(*points, **self.basis_kwargs), dtype=float)[..., None])
                continue
            columns = []
            for index in itertools.product(*(range(d) for d in vec_shape)):
                cut = (slice(None),) * self.ndim_input + index
                value = f(*(x[cut] for x in points), **self.basis_kwargs)
                columns.append(np.asarray(value, dtype=float)[..., None])
            per_func.append(np.concatenate(columns, axis=-1))
        stacked = np.stack(per_func, axis=-1)
        self.output_shape = tuple(stacked.shape[1:-2])
        return stacked[..., 0, :] if plain else stacked

    def _features(self, arrays: list[NDArray], epochs: list) -> NDArray:
        n_samples = arrays[0].shape[0]
        out = self._evaluate(*arrays).reshape(n_samples, -1)
        if self._bounds is not None:
            outside = np.zeros(n_samples, dtype=bool)
            for x, (lower, upper) in zip(arrays, self._bounds_per_input(), strict=True):
                flat = x.reshape(n_samples, -1)
                outside |= ((flat < lower) | (flat > upper)).any(axis=1)
            out = np.where(outside[:, None], self.fill_value, out)
        return out

    def _repr_params(self) -> dict[str, object]:
        return {
            "funcs": [getattr(f, "__name__", repr(f)) for f in self.funcs],
            "ndim_input": self.ndim_input,
        }


class Category(_EvalBasis):
    """One-hot encoding of a categorical input (NeMoS's ``Category``, added after 0.2.8).

    Column ``k`` is 1 where the input equals the ``k``-th category (categories sorted as by
    ``np.unique``) and 0 elsewhere.

    Parameters
    ----------
    categories : int or array-like
        ``n`` means the labels ``0 .. n-1``; otherwise the distinct labels (numbers or
        strings).
    out_of_category : bool
        True (default): a label outside ``categories`` is encoded as all zeros. False: it is
        an error.
    label : str, optional
        Name of the basis (default: the class name).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> nmo.basis.Category(["left", "right"]).compute_features(np.array(["right", "left", "up"]))
    array([[0., 1.],
           [1., 0.],
           [0., 0.]])
    """

    _numeric_inputs = False

    def __init__(self, categories, out_of_category: bool = True, label: str | None = None) -> None:
        if not isinstance(out_of_category, (bool, np.bool_)):
            raise TypeError(f"out_of_category must be a boolean, got {out_of_category!r}")
        self.out_of_category = bool(out_of_category)
        self.categories = categories
        super().__init__(label, None)

    @property
    def categories(self) -> NDArray:
        """The category labels, sorted."""
        return self._categories

    @categories.setter
    def categories(self, categories) -> None:
        if isinstance(categories, numbers.Integral) and not isinstance(categories, bool):
            if categories < 1:
                raise ValueError(
                    f"categories must be a positive number of categories, got {categories}"
                )
            self._categories = np.arange(int(categories))
            return
        values = np.asarray(categories)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                f"categories must be an int or a 1-D list of distinct labels, got {categories!r}"
            )
        unique = np.unique(values)
        if unique.size != values.size:
            duplicates = [c for c in unique.tolist() if np.sum(values == c) > 1]
            raise ValueError(
                f"Duplicate category labels provided: {duplicates}. Each label must be unique."
            )
        self._categories = unique

    @property
    def n_basis_funcs(self) -> int:
        """Number of categories."""
        return int(self._categories.size)

    @_EvalBasis.bounds.setter
    def bounds(self, values) -> None:
        if values is not None:
            raise AttributeError("Category basis does not use bounds")
        self._bounds = None

    def _evaluate(self, labels: NDArray) -> NDArray:
        labels = np.asarray(labels)
        comparable = (labels.dtype.kind in "biuf") == (self._categories.dtype.kind in "biuf")
        if comparable:
            hits = labels[..., None] == self._categories
        else:
            hits = np.zeros((*labels.shape, self.n_basis_funcs), dtype=bool)
        known = hits.any(axis=-1)
        if not self.out_of_category and not known.all():
            unknown = np.unique(labels[~known]).tolist()
            raise ValueError(
                f"Unrecognized label(s) {unknown}. Valid labels are {self._categories.tolist()} "
                "(or set out_of_category=True to encode other labels as all zeros)"
            )
        return hits.astype(np.float64)

    def evaluate_on_grid(self, *n_samples: int) -> tuple[NDArray, NDArray]:
        """Evaluate the basis on its categories (the only grid a category has).

        Parameters
        ----------
        *n_samples : int
            Exactly one value, equal to the number of categories.

        Returns
        -------
        categories : ndarray, shape (n_categories,)
        values : ndarray, shape (n_categories, n_categories)
            The identity matrix.
        """
        if len(n_samples) != 1:
            raise ValueError(
                "Category is one-dimensional; evaluate_on_grid expects exactly one argument, "
                f"got {len(n_samples)}"
            )
        if n_samples[0] != self.n_basis_funcs:
            raise ValueError(
                "n_samples is fixed by the number of categories for a categorical basis: "
                f"expected {self.n_basis_funcs}, got {n_samples[0]}"
            )
        return self._categories, self._evaluate(self._categories)
