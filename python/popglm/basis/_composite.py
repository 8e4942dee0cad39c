"""Composite bases: sums (features side by side) and products (row-wise tensor products)."""

from __future__ import annotations

import copy
import warnings
from math import prod

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import Basis, user_stacklevel

__all__ = ["AdditiveBasis", "MultiplicativeBasis"]


class _CompositeBasis(Basis):
    """Two component bases; inputs are the first's followed by the second's."""

    _symbol = "?"

    def __init__(self, basis1: Basis, basis2: Basis, label: str | None = None) -> None:
        for name, value in (("basis1", basis1), ("basis2", basis2)):
            if not isinstance(value, Basis):
                raise TypeError(f"{name} must be a popglm basis, got {type(value).__name__}")
        # Components are copied so that a basis used twice (b + b) gives two nodes.
        self.basis1 = copy.deepcopy(basis1)
        self.basis2 = copy.deepcopy(basis2)
        self.basis1._parent = self
        self.basis2._parent = self
        self._n_inputs = basis1._n_inputs + basis2._n_inputs
        self._parent = None
        self._label = None
        user_labels = [n._label for n in self._all_nodes() if n is not self and n._label]
        duplicates = {lab for lab in user_labels if user_labels.count(lab) > 1}
        if duplicates:
            raise ValueError(
                f"label {sorted(duplicates)[0]!r} is used by two components; labels must be "
                "unique within a composite basis"
            )
        self.label = label

    def _default_label(self) -> str:
        return f"({self.basis1.label} {self._symbol} {self.basis2.label})"

    @property
    def is_complex(self) -> bool:
        """True if a component is complex (Fourier), as in NeMoS: such bases do not multiply."""
        return bool(
            getattr(self.basis1, "is_complex", False) or getattr(self.basis2, "is_complex", False)
        )

    def _all_nodes(self):
        yield from self.basis1._all_nodes()
        yield from self.basis2._all_nodes()
        yield self

    def _atoms(self):
        yield from self.basis1._atoms()
        yield from self.basis2._atoms()

    @property
    def _input_shapes(self) -> list:
        return list(self.basis1._input_shapes) + list(self.basis2._input_shapes)

    @_input_shapes.setter
    def _input_shapes(self, shapes) -> None:  # set through _assign_shapes only
        pass

    def _assign_shapes(self, shapes) -> None:
        n1 = self.basis1._n_inputs
        self.basis1._assign_shapes(list(shapes[:n1]))
        self.basis2._assign_shapes(list(shapes[n1:]))

    def _replace_params(self, params: dict) -> None:
        for name, value in params.items():
            if name == "label":
                self.label = value
                continue
            if not isinstance(value, Basis):
                raise TypeError(f"{name} must be a popglm basis, got {type(value).__name__}")
            component = copy.deepcopy(value)
            component._parent = self
            setattr(self, name, component)
        self._n_inputs = self.basis1._n_inputs + self.basis2._n_inputs

    def _numeric_flags(self) -> list[bool]:
        return self.basis1._numeric_flags() + self.basis2._numeric_flags()

    def _grid_bounds(self) -> list[tuple[float, float]]:
        return self.basis1._grid_bounds() + self.basis2._grid_bounds()

    def _split_inputs(self, items: list) -> tuple[list, list]:
        n1 = self.basis1._n_inputs
        return items[:n1], items[n1:]

    def _repr_params(self) -> dict[str, object]:
        return {"basis1": self.basis1, "basis2": self.basis2}


class AdditiveBasis(_CompositeBasis):
    """Sum of two bases: their features side by side, each from its own inputs.

    Made by ``basis1 + basis2``. ``split_by_feature`` returns one entry per additive
    component.

    Parameters
    ----------
    basis1, basis2 : Basis
        The components (copied).
    label : str, optional
        Name of the composite (default ``"(label1 + label2)"``).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.CyclicBSplineEval(6, bounds=(0, 2 * np.pi)) + nmo.basis.RaisedCosineLogConv(
    ...     3, window_size=20
    ... )
    >>> angle = np.linspace(0, 2 * np.pi, 100)
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(100, 4))
    >>> basis.compute_features(angle, counts).shape
    (100, 18)
    >>> basis.label
    '(CyclicBSplineEval + RaisedCosineLogConv)'
    """

    _symbol = "+"

    @property
    def n_basis_funcs(self) -> int:
        """Sum of the components' numbers of basis functions."""
        return self.basis1.n_basis_funcs + self.basis2.n_basis_funcs

    @property
    def n_output_features(self) -> int | None:
        """Sum of the components' numbers of output features (None if one is unknown)."""
        first, second = self.basis1.n_output_features, self.basis2.n_output_features
        return None if first is None or second is None else first + second

    def _features(self, arrays: list[NDArray], epochs: list) -> NDArray:
        a1, a2 = self._split_inputs(arrays)
        e1, e2 = self._split_inputs(epochs)
        return np.hstack((self.basis1._features(a1, e1), self.basis2._features(a2, e2)))

    def __iter__(self):
        """Iterate over the additive components (a product is one component)."""
        yield from self.basis1
        yield from self.basis2

    def __len__(self) -> int:
        return len(self.basis1) + len(self.basis2)

    def _evaluate(self, *xi: NDArray) -> NDArray:
        if any(x.ndim != 1 for x in xi):
            raise ValueError("Input sample must be one dimensional!")
        x1, x2 = self._split_inputs(list(xi))
        return np.hstack((self.basis1._evaluate(*x1), self.basis2._evaluate(*x2)))

    def _slices(self, start: int):
        first, start = self.basis1._slices(start)
        second, start = self.basis2._slices(start)
        return {**first, **second}, start


def _rowwise_kron(a: NDArray, b: NDArray) -> NDArray:
    return (a[:, :, None] * b[:, None, :]).reshape(a.shape[0], -1)


class MultiplicativeBasis(_CompositeBasis):
    """Product of two bases: every product of a function of each (row-wise tensor product).

    Made by ``basis1 * basis2``. Both components' inputs must have the same shape; for
    each input column and sample the features are ``kron(features1, features2)``.

    Parameters
    ----------
    basis1, basis2 : Basis
        The components (copied).
    label : str, optional
        Name of the composite (default ``"(label1 * label2)"``).

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> basis = nmo.basis.BSplineEval(4) * nmo.basis.RaisedCosineLinearEval(3)
    >>> x, y = np.linspace(0, 1, 10), np.linspace(1, 0, 10)
    >>> basis.compute_features(x, y).shape
    (10, 12)
    """

    _symbol = "*"

    def __init__(self, basis1: Basis, basis2: Basis, label: str | None = None) -> None:
        if getattr(basis1, "is_complex", False) and getattr(basis2, "is_complex", False):
            raise ValueError(
                "Invalid multiplication between two complex bases (FourierEval, or CustomBasis "
                "with is_complex=True): their cosine and sine columns would be mixed as if real"
            )
        shapes = [s if s is not None else () for s in basis1.input_shape + basis2.input_shape]
        if len(set(shapes)) > 1:
            basis1 = copy.deepcopy(basis1)
            basis2 = copy.deepcopy(basis2)
            basis1._assign_shapes([None] * basis1._n_inputs)
            basis2._assign_shapes([None] * basis2._n_inputs)
            warnings.warn(
                "Multiple different input shapes detected. Resetting input shape to default "
                "(None).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        super().__init__(basis1, basis2, label)

    @property
    def n_basis_funcs(self) -> int:
        """Product of the components' numbers of basis functions."""
        return self.basis1.n_basis_funcs * self.basis2.n_basis_funcs

    @property
    def n_output_features(self) -> int | None:
        """``n_basis_funcs`` times the number of input columns (None if unknown)."""
        shape = self._input_shapes[0]
        return None if shape is None else self.n_basis_funcs * prod(shape)

    def _check_same_shapes(self, shapes: list) -> None:
        if len(set(shapes)) > 1:
            raise ValueError(
                "MultiplicativeBasis requires all inputs to have the same shape; got input "
                f"shapes {shapes}"
            )

    def set_input_shape(self, *xi: int | tuple[int, ...] | ArrayLike | None) -> Basis:
        """Declare the (common) shape of one sample of each input; see ``Basis.set_input_shape``.

        Parameters
        ----------
        *xi : int, tuple of int, array or None
            One per input; all must describe the same shape.

        Returns
        -------
        self
        """
        super().set_input_shape(*xi)
        self._check_same_shapes([s for s in self._input_shapes if s is not None])
        return self

    def _features(self, arrays: list[NDArray], epochs: list) -> NDArray:
        self._check_same_shapes([x.shape for x in arrays])
        a1, a2 = self._split_inputs(arrays)
        e1, e2 = self._split_inputs(epochs)
        n_samples = arrays[0].shape[0]
        n_columns = prod(arrays[0].shape[1:])
        first = self.basis1._features(a1, e1).reshape(n_samples * n_columns, -1)
        second = self.basis2._features(a2, e2).reshape(n_samples * n_columns, -1)
        return _rowwise_kron(first, second).reshape(n_samples, -1)

    def _evaluate(self, *xi: NDArray) -> NDArray:
        self._check_same_shapes([x.shape for x in xi])
        x1, x2 = self._split_inputs(list(xi))
        shape = xi[0].shape
        first = self.basis1._evaluate(*x1)
        second = self.basis2._evaluate(*x2)
        first = first.reshape(prod(first.shape[:-1]), first.shape[-1])
        second = second.reshape(prod(second.shape[:-1]), second.shape[-1])
        return _rowwise_kron(first, second).reshape(*shape, -1)

    def _split_shape(self) -> tuple[int, ...]:
        shape = self._input_shapes[0]
        assert shape is not None
        return shape

    def _slices(self, start: int):
        n = self.n_output_features
        return {self.label: (slice(start, start + n), self)}, start + n
