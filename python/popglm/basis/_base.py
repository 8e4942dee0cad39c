"""The machinery shared by every basis: inputs, shapes, labels, composition, splitting."""

from __future__ import annotations

import copy
import inspect
import os
import re
import sys
from math import prod
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._memory import check_allocation
from . import _pynapple

__all__ = ["Basis", "InputCountError"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """Return the ``stacklevel`` that points a warning at the first caller outside this package."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == (
        _PACKAGE_DIR
    ):
        frame = frame.f_back
        level += 1
    return level


class InputCountError(TypeError, ValueError):
    """A basis received the wrong number of inputs.

    A ``TypeError`` (as NeMoS raises) and a ``ValueError`` (a bad argument value).
    """


def _shape_of(xi: Any, name: str = "xi") -> tuple[int, ...] | None:
    """Turn one ``set_input_shape`` argument into the shape of one sample (NeMoS rules)."""
    if xi is None:
        return None
    if isinstance(xi, tuple):
        shape = xi
    elif isinstance(xi, (int, np.integer)) and not isinstance(xi, (bool, np.bool_)):
        if xi < 1:
            raise ValueError(f"{name} must be a positive number of inputs, got {xi}")
        shape = () if xi == 1 else (int(xi),)
    elif hasattr(xi, "shape"):
        shape = tuple(np.shape(xi)[1:])
    else:
        raise ValueError(
            f"{name} must be an int, a tuple of int or an array of shape (n_samples, ...), "
            f"got {xi!r}"
        )
    if not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape
    ):
        raise ValueError(f"{name} must be a tuple of positive integers, got {shape!r}")
    return tuple(int(s) for s in shape)


class Basis:
    """Base class of every basis: the API NeMoS's bases share.

    Subclasses set ``_n_inputs`` (how many time series ``compute_features`` takes) and
    implement ``_features`` (the feature matrix of checked inputs) and ``_evaluate``.
    """

    _n_inputs = 1
    # False for bases of labels (Category): inputs are not converted to float.
    _numeric_inputs = True

    def __init__(self, label: str | None = None) -> None:
        self._parent: Basis | None = None
        self._input_shapes: list[tuple[int, ...] | None] = [None] * self._n_inputs
        self._label: str | None = None
        self.label = label

    # -- sklearn-style parameters -------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn convention).

        Parameters
        ----------
        deep : bool
            Also return the parameters of component bases, as ``component__name``.

        Returns
        -------
        dict
        """
        params = {name: getattr(self, name) for name in self._param_names()}
        if "label" in params:
            params["label"] = self._label
        if deep:
            for name, value in list(params.items()):
                if isinstance(value, Basis):
                    for key, sub in value.get_params(deep=True).items():
                        params[f"{name}__{key}"] = sub
        return params

    def set_params(self, **params: Any) -> Basis:
        """Set constructor parameters (scikit-learn convention) and return the basis.

        Parameters
        ----------
        **params
            ``name=value`` pairs; ``component__name=value`` reaches a component basis.

        Returns
        -------
        self
        """
        valid = set(self._param_names())
        direct, nested = {}, {}
        for key, value in params.items():
            name, _, rest = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}; valid parameters "
                    f"are {sorted(valid)}"
                )
            if rest:
                nested.setdefault(name, {})[rest] = value
            else:
                direct[name] = value
        if direct:
            self._replace_params(direct)
        for name, sub in nested.items():
            getattr(self, name).set_params(**sub)
        return self

    def _replace_params(self, params: dict[str, Any]) -> None:
        # Rebuild through the constructor, so every parameter is validated as at creation;
        # the position in a composite and the declared input shapes are kept.
        merged = {**self.get_params(deep=False), **params}
        fresh = type(self)(**merged)
        parent, shapes = self._parent, self._input_shapes
        self.__dict__.update(fresh.__dict__)
        self._parent = parent
        if self._n_inputs == len(shapes):
            self._input_shapes = shapes

    def __sklearn_clone__(self) -> Basis:
        # A copy keeps the declared input shapes and labels, as NeMoS's clone does.
        clone = copy.deepcopy(self)
        clone._parent = None
        return clone

    # -- labels -------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """Name of the basis: its key in ``split_by_feature``'s output.

        Defaults to the class name; repeated default names inside a composite basis get the
        suffixes ``_1``, ``_2``, ... in order, as in NeMoS.
        """
        if self._label is not None:
            return self._label
        return self._default_label()

    @label.setter
    def label(self, label: str | None) -> None:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string or None, got {type(label).__name__}")
        if label is not None and re.fullmatch(rf"{type(self).__name__}(_\d+)?", label):
            label = None  # the class's default name: keep it default
        if label is not None:
            root = self._root()
            taken = {b.label for b in root._all_nodes() if b is not self}
            if label in taken:
                raise ValueError(
                    f"label {label!r} is already in use in this basis; labels must be unique"
                )
        self._label = label

    def _default_label(self) -> str:
        name = type(self).__name__
        index = 0
        for component in self._root()._atoms():
            if component is self:
                break
            if type(component).__name__ == name and component._label is None:
                index += 1
        return name if index == 0 else f"{name}_{index}"

    def _root(self) -> Basis:
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    def _all_nodes(self):
        yield self

    def _atoms(self):
        yield self

    # -- structure ----------------------------------------------------------------------------
    def __iter__(self):
        """Iterate over the additive components (just this basis for an atomic one)."""
        yield self

    def __len__(self) -> int:
        return 1

    def __getitem__(self, label: str) -> Basis:
        if not isinstance(label, str):
            raise IndexError(f"bases are indexed by label (a string), got {label!r}")
        for node in self._all_nodes():
            if node.label == label:
                return node
        available = ", ".join(repr(node.label) for node in self._all_nodes())
        raise IndexError(f"Basis label {label!r} not found. Available labels: {available}")

    def __add__(self, other: Basis) -> Basis:
        from ._composite import AdditiveBasis

        if not isinstance(other, Basis):
            return NotImplemented
        return AdditiveBasis(self, other)

    def __mul__(self, other: Basis | int) -> Basis:
        from ._composite import MultiplicativeBasis

        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            if other < 1:
                raise ValueError(f"a basis can be multiplied by a positive integer, got {other}")
            result = copy.deepcopy(self)
            for _ in range(int(other) - 1):
                result = result + copy.deepcopy(self)
            return result
        if not isinstance(other, Basis):
            raise TypeError(
                "Basis multiplicative factor should be a Basis object or a positive integer, "
                f"got {type(other).__name__}"
            )
        return MultiplicativeBasis(self, other)

    def __rmul__(self, other: int) -> Basis:
        return self.__mul__(other)

    def __pow__(self, exponent: int) -> Basis:
        if not isinstance(exponent, (int, np.integer)) or isinstance(exponent, bool):
            raise TypeError(f"exponent must be a positive integer, got {exponent!r}")
        if exponent < 1:
            raise ValueError(f"exponent must be a positive integer, got {exponent}")
        result = copy.deepcopy(self)
        for _ in range(int(exponent) - 1):
            result = result * copy.deepcopy(self)
        return result

    # -- shapes -------------------------------------------------------------------------------
    @property
    def n_basis_funcs(self) -> int:
        """Number of basis functions."""
        return self._n_basis_funcs

    @property
    def input_shape(self) -> list[tuple[int, ...] | None]:
        """Shape of one sample of each input (None where not yet known)."""
        return list(self._input_shapes)

    def _input_products(self) -> list[int] | None:
        if any(shape is None for shape in self._input_shapes):
            return None
        return [prod(shape) for shape in self._input_shapes]

    @property
    def n_output_features(self) -> int | None:
        """Number of columns of ``compute_features``' output; None until input shapes are known."""
        products = self._input_products()
        if products is None:
            return None
        return self.n_basis_funcs * products[0]

    def set_input_shape(self, *xi: int | tuple[int, ...] | ArrayLike | None) -> Basis:
        """Declare the shape of one sample of each input, so ``n_output_features`` is known.

        Parameters
        ----------
        *xi : int, tuple of int, array or None
            One per input: a number of input columns (1 means a 1-D time series), the shape of
            one sample, or an example input whose first axis is samples; None resets.

        Returns
        -------
        self

        Examples
        --------
        >>> import popglm as nmo
        >>> basis = nmo.basis.BSplineEval(5) + nmo.basis.RaisedCosineLogConv(3, window_size=10)
        >>> basis.set_input_shape(1, 4).n_output_features
        17
        """
        if self._parent is not None:
            raise ValueError(
                "Cannot set input shape on a component of a composite basis; call "
                "set_input_shape on the root basis with one shape per input"
            )
        if len(xi) == 1 and xi[0] is None:
            xi = (None,) * self._n_inputs
        if len(xi) != self._n_inputs:
            raise ValueError(
                f"set_input_shape expects {self._n_inputs} input"
                f"{'s' if self._n_inputs != 1 else ''}, but {len(xi)} were provided"
            )
        self._assign_shapes([_shape_of(x, f"xi[{i}]") for i, x in enumerate(xi)])
        return self

    def _assign_shapes(self, shapes: list[tuple[int, ...] | None]) -> None:
        self._input_shapes = list(shapes)

    # -- inputs -------------------------------------------------------------------------------
    def _check_inputs(self, xi: tuple, method: str = "compute_features") -> list:
        """Check count, type and sample consistency; return arrays or pynapple objects."""
        if len(xi) != self._n_inputs:
            raise InputCountError(
                f"{method} of this basis requires {self._n_inputs} input(s) (one per "
                f"component time series), but {len(xi)} were provided"
            )
        checked = []
        numeric = self._numeric_flags()
        for i, x in enumerate(xi):
            name = "xi" if self._n_inputs == 1 else f"xi[{i}]"
            if _pynapple.is_tsd(x):
                checked.append(x)
                continue
            try:
                array = np.asarray(x)
            except (TypeError, ValueError) as error:
                raise TypeError(f"{name} must be a numeric array: {error}") from None
            if not numeric[i]:  # labels (Category): any dtype
                if array.ndim == 0 or array.shape[0] == 0:
                    raise ValueError(f"{name} must have shape (n_samples, ...), got {array.shape}")
                checked.append(array)
                continue
            if array.dtype.kind not in "biuf" and array.dtype.kind != "O":
                raise TypeError(
                    f"{name} must be a real numeric array (bool, int or float), got dtype "
                    f"{array.dtype}"
                )
            check_allocation(8.0 * array.size, f"a float64 copy of {name} (shape {array.shape})")
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be a real numeric array") from None
            if array.ndim == 0:
                raise ValueError(
                    f"{name} must have at least one dimension (n_samples, ...), got a scalar"
                )
            if array.shape[0] == 0:
                raise ValueError(
                    f"{name} must contain at least one sample, got shape {array.shape}"
                )
            checked.append(array)
        n_samples = {np.shape(x)[0] for x in checked}
        if len(n_samples) > 1:
            raise ValueError(
                "Sample size mismatch: the inputs must have the same number of samples "
                f"(first axis), got {[np.shape(x)[0] for x in checked]}"
            )
        return checked

    def _numeric_flags(self) -> list[bool]:
        return [self._numeric_inputs] * self._n_inputs

    def _as_arrays(self, checked: list) -> list[NDArray]:
        return [
            _pynapple.values(x) if numeric else np.asarray(x.values if _pynapple.is_tsd(x) else x)
            for x, numeric in zip(checked, self._numeric_flags(), strict=True)
        ]

    def compute_features(self, *xi: ArrayLike) -> NDArray:
        """Compute the feature matrix of the inputs.

        Parameters
        ----------
        *xi : array-like or pynapple Tsd/TsdFrame/TsdTensor, shape (n_samples, ...)
            One time series per input of the basis; every axis after the first is a separate
            input column (e.g. a neuron). pynapple inputs are processed per epoch and the
            result is a pynapple ``TsdFrame`` on the same time index.

        Returns
        -------
        ndarray, shape (n_samples, n_output_features)
            Components side by side in order; within an atomic basis, input-major columns
            (column ``i * n_basis_funcs + k`` is input ``i`` through basis function ``k``).
        """
        checked = self._check_inputs(xi)
        self._record_shapes(checked)
        time_info = _pynapple.time_info(checked)
        arrays = self._as_arrays(checked)
        out = self._features(arrays, _pynapple.epoch_starts(checked))
        return _pynapple.wrap(out, time_info)

    def _record_shapes(self, checked: list) -> None:
        self._assign_shapes([tuple(np.shape(x)[1:]) for x in checked])

    def _features(self, arrays: list[NDArray], epochs: NDArray | None) -> NDArray:
        raise NotImplementedError

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, *xi: ArrayLike) -> NDArray:
        """Evaluate the basis functions at sample points.

        Parameters
        ----------
        *xi : array-like, shape (n_samples, ...)
            One array of sample points per input.

        Returns
        -------
        ndarray, shape (n_samples, ..., n_basis_funcs)
        """
        arrays = [np.atleast_1d(x) for x in self._as_arrays(self._check_inputs(xi, "evaluate"))]
        self._check_evaluation(arrays[0].size, "evaluate")
        return self._evaluate(*arrays)

    def _evaluate(self, *xi: NDArray) -> NDArray:
        raise NotImplementedError

    def _check_evaluation(self, n_points: int, what: str) -> None:
        """Refuse an evaluation at ``n_points`` points larger than the memory there is.

        Its values are n_points x n_basis_funcs float64, and the basis families form about as
        much again in temporaries (rescaled points, knot differences).
        """
        check_allocation(
            16.0 * n_points * max(self.n_basis_funcs, 1),
            f"{what}: {n_points} points x {self.n_basis_funcs} basis functions",
        )

    def _grid_bounds(self) -> list[tuple[float, float]]:
        return [(0.0, 1.0)] * self._n_inputs

    def evaluate_on_grid(self, *n_samples: int) -> tuple[NDArray, ...]:
        """Evaluate the basis on an equi-spaced grid.

        Parameters
        ----------
        *n_samples : int
            Number of grid points along each input (one per input).

        Returns
        -------
        *grids : ndarray, shape (*n_samples)
            The grid coordinates of each input (``np.meshgrid`` with ``indexing="ij"``): on
            ``bounds`` when the basis has them, else on [0, 1].
        values : ndarray, shape (*n_samples, n_basis_funcs)

        Examples
        --------
        >>> import popglm as nmo
        >>> x, values = nmo.basis.BSplineEval(6).evaluate_on_grid(50)
        >>> x.shape, values.shape
        ((50,), (50, 6))
        """
        if len(n_samples) != self._n_inputs:
            raise InputCountError(
                f"evaluate_on_grid of this basis requires {self._n_inputs} sample count(s), "
                f"but {len(n_samples)} were provided"
            )
        for n in n_samples:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"n_samples must be positive integers, got {n_samples}")
        self._check_evaluation(
            prod(int(n) for n in n_samples), f"evaluate_on_grid{tuple(int(n) for n in n_samples)}"
        )
        axes = [
            np.linspace(lo, hi, n)
            for (lo, hi), n in zip(self._grid_bounds(), n_samples, strict=True)
        ]
        grids = np.meshgrid(*axes, indexing="ij")
        values = self._evaluate(*(g.reshape(-1) for g in grids))
        return (*grids, values.reshape(*n_samples, -1))

    # -- splitting ----------------------------------------------------------------------------
    def _slices(self, start: int) -> tuple[dict[str, tuple[slice, Basis]], int]:
        n = self.n_output_features
        return {self.label: (slice(start, start + n), self)}, start + n

    def _split_shape(self) -> tuple[int, ...]:
        shape = self._input_shapes[0]
        assert shape is not None
        return shape

    def split_by_feature(self, x: ArrayLike, axis: int = 1) -> dict[str, NDArray]:
        """Split the feature axis of ``x`` into one array per additive component.

        Parameters
        ----------
        x : array-like
            An array whose ``axis`` has ``n_output_features`` entries, e.g. the feature matrix
            (``axis=1``, the default) or ``coef_`` of shape ``(n_features, n_neurons)``
            (``axis=0``).
        axis : int
            The feature axis.

        Returns
        -------
        dict
            ``{label: array}`` with one entry per additive component, in order; the feature
            axis of each array is replaced by ``(*input_shape, n_basis_funcs)``.

        Examples
        --------
        >>> import numpy as np
        >>> import popglm as nmo
        >>> basis = nmo.basis.BSplineEval(5, label="position") + nmo.basis.HistoryConv(
        ...     4, label="history"
        ... )
        >>> X = basis.compute_features(np.linspace(0, 1, 20), np.ones((20, 3)))
        >>> {key: value.shape for key, value in basis.split_by_feature(X).items()}
        {'position': (20, 5), 'history': (20, 3, 4)}
        """
        x = np.asarray(x)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of bounds for an array of dimension {x.ndim}")
        axis = axis % x.ndim
        expected = self.n_output_features
        if expected is None:
            raise ValueError(
                "the input shapes are unknown: call compute_features or set_input_shape first"
            )
        if x.shape[axis] != expected:
            raise ValueError(
                "`x.shape[axis]` does not match the expected number of features. "
                f"`x.shape[axis] == {x.shape[axis]}`, while the expected number of features "
                f"is {expected}"
            )
        out = {}
        for label, (part, component) in self._slices(0)[0].items():
            index = [slice(None)] * x.ndim
            index[axis] = part
            block = x[tuple(index)]
            shape = x.shape[:axis] + component._split_shape() + (-1,) + x.shape[axis + 1 :]
            out[label] = block.reshape(shape)
        return out

    # -- scikit-learn -------------------------------------------------------------------------
    def to_transformer(self):
        """Wrap the basis as a scikit-learn transformer (``TransformerBasis``).

        The transformer takes one 2-D array whose columns are the inputs side by side (set
        their shapes first with ``set_input_shape``; unset shapes default to 1-D inputs).

        Returns
        -------
        TransformerBasis

        Examples
        --------
        >>> import numpy as np
        >>> import popglm as nmo
        >>> trans = nmo.basis.RaisedCosineLinearEval(4).set_input_shape(1).to_transformer()
        >>> trans.fit_transform(np.linspace(0, 1, 10)[:, None]).shape
        (10, 4)
        """
        from ._transformer import TransformerBasis

        return TransformerBasis(copy.deepcopy(self))

    # -- display ------------------------------------------------------------------------------
    def _repr_params(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self._param_names() if name != "label"}

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self._repr_params().items())
        text = f"{type(self).__name__}({params})"
        return text if self._label is None else f"{self._label!r}: {text}"
