"""scikit-learn wrapper of a basis: one 2-D array in, the feature matrix out."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["TransformerBasis"]


class TransformerBasis(TransformerMixin, BaseEstimator):
    """A basis as a scikit-learn transformer (made by ``basis.to_transformer()``).

    ``transform(X)`` splits the columns of ``X`` into the basis inputs, in order and with the
    shapes set by ``basis.set_input_shape`` (inputs whose shape is unset are 1-D time
    series), and returns ``basis.compute_features(*inputs)``.

    Parameters
    ----------
    basis : Basis
        The basis to wrap.

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> from sklearn.pipeline import make_pipeline
    >>> basis = nmo.basis.BSplineEval(5) + nmo.basis.HistoryConv(3)
    >>> trans = basis.set_input_shape(1, 2).to_transformer()
    >>> X = np.random.default_rng(0).normal(size=(20, 3))
    >>> trans.fit_transform(X).shape
    (20, 11)
    """

    def __init__(self, basis) -> None:
        self.basis = basis

    def _ready_basis(self):
        shapes = [s if s is not None else () for s in self.basis.input_shape]
        if any(s is None for s in self.basis.input_shape):
            self.basis.set_input_shape(*shapes)
        return shapes

    def _unpack(self, X: ArrayLike) -> list[NDArray]:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-dimensional, shape (n_samples, n_features); got shape {X.shape}"
            )
        shapes = self._ready_basis()
        sizes = [int(np.prod(s)) for s in shapes]
        if X.shape[1] != sum(sizes):
            raise ValueError(
                f"Input mismatch: X must have {sum(sizes)} columns (input shapes {shapes}), got "
                f"{X.shape[1]}. To change the expected inputs call set_input_shape on the basis "
                "before to_transformer()."
            )
        inputs, start = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            inputs.append(X[:, start : start + size].reshape(X.shape[0], *shape))
            start += size
        return inputs

    def fit(self, X: ArrayLike, y: Any = None) -> TransformerBasis:
        """Check ``X`` against the basis inputs; nothing is learned.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_input_columns)
        y : ignored

        Returns
        -------
        self
        """
        self._unpack(X)
        return self

    def transform(self, X: ArrayLike, y: Any = None) -> NDArray:
        """Compute the basis features of the columns of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_input_columns)
        y : ignored

        Returns
        -------
        ndarray, shape (n_samples, n_output_features)
        """
        inputs = self._unpack(X)
        shapes = self.basis.input_shape
        features = self.basis.compute_features(*inputs)
        # compute_features records the shapes it saw; keep the declared ones.
        self.basis._assign_shapes(shapes)
        return features

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return ``basis`` and the basis's own parameters (so pipelines can tune them).

        Parameters
        ----------
        deep : bool
            Include the parameters of component bases.

        Returns
        -------
        dict
        """
        return {"basis": self.basis, **self.basis.get_params(deep=deep)}

    def set_params(self, **params: Any) -> TransformerBasis:
        """Replace ``basis`` or set parameters of the wrapped basis.

        Parameters
        ----------
        **params
            ``basis=...`` or any parameter of the basis (``n_basis_funcs=8``,
            ``basis1__window_size=20``, ...).

        Returns
        -------
        self
        """
        if "basis" in params:
            self.basis = params.pop("basis")
        if params:
            self.basis.set_params(**params)
        return self

    def __sklearn_clone__(self) -> TransformerBasis:
        return TransformerBasis(copy.deepcopy(self.basis))

    def __getattr__(self, name: str):
        basis = self.__dict__.get("basis")
        if basis is None or name.startswith("__"):
            raise AttributeError(f"'TransformerBasis' object has no attribute {name!r}")
        return getattr(basis, name)
