"""Penalties on the GLM coefficients, with NeMoS's names and objective.

Per neuron, the objective is the mean over samples of the negative log-likelihood plus the
penalty, with no 1/n factor on the penalty; the intercept is never penalised:

- ``UnRegularized``: no penalty.
- ``Ridge``: ``0.5 * sum(strength * coef**2)``.
- ``Lasso``: ``sum(strength * |coef|)``.
- ``ElasticNet``: ``sum(strength * ((1 - ratio) * 0.5 * coef**2 + ratio * |coef|))``, with
  ``regularizer_strength = (strength, ratio)`` (a bare strength means ratio 0.5).
- ``GroupLasso(mask)``: ``sum_g strength_g * sqrt(p_g) * ||coef_g||_2`` per neuron, with the
  groups given by ``mask`` of shape ``(n_groups, n_features)`` (0/1, each feature in at most one
  group) and ``p_g`` the group's size.

``strength`` is a scalar or an array broadcastable to the coefficients' shape (one strength per
coefficient); for GroupLasso a scalar or one strength per group. Smooth penalties are fitted by
Newton's method, the others by proximal Newton (exact Hessians, coordinate descent on each
quadratic model), both to a (sub)gradient tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ElasticNet",
    "GroupLasso",
    "Lasso",
    "Regularizer",
    "Ridge",
    "UnRegularized",
    "resolve_regularizer",
]


class Regularizer:
    """Base class: a penalty on the coefficients (never the intercept)."""

    #: Whether ``regularizer_strength`` is required (a default of 1.0 is used, with a warning).
    needs_strength = False
    #: Whether the penalty is smooth (Newton) or not (proximal Newton).
    smooth = True

    def penalty(self, coef: NDArray, strength: Any) -> float:
        """Value of the penalty at ``coef`` (all neurons; coef is (n_features, n_neurons))."""
        arrays = self.penalty_arrays(strength, coef.shape)
        total = 0.5 * float(np.sum(arrays["l2"] * coef**2))
        total += float(np.sum(arrays["l1"] * np.abs(coef)))
        for g in range(arrays["group_weight"].shape[0]):
            members = arrays["group"] == g  # (n_features, n_neurons)
            norms = np.sqrt(np.sum(np.where(members, coef, 0.0) ** 2, axis=0))
            total += float(np.sum(arrays["group_weight"][g] * norms))
        return total

    def penalty_arrays(self, strength: Any, shape: tuple[int, int]) -> dict[str, NDArray]:
        """Return the penalty as per-coefficient arrays for the core, for coefficients of ``shape``.

        ``l1``, ``l2`` and ``group`` (a group id or -1, int64) have ``shape``;
        ``group_weight`` is (n_groups, n_neurons).
        """
        n_features, n_neurons = shape
        return {
            "l1": np.zeros(shape, order="F"),
            "l2": np.zeros(shape, order="F"),
            "group": np.full(shape, -1, dtype=np.int64, order="F"),
            "group_weight": np.zeros((0, n_neurons), order="F"),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class UnRegularized(Regularizer):
    """No penalty: the maximum-likelihood estimate."""


def _per_coefficient(strength: Any, shape: tuple[int, int], name: str) -> NDArray:
    values = np.asarray(strength, dtype=np.float64)
    try:
        full = np.broadcast_to(values, shape)
    except ValueError:
        raise ValueError(
            f"{name} must be a scalar or broadcastable to the coefficients' shape {shape}, got "
            f"shape {values.shape}"
        ) from None
    return np.asfortranarray(full, dtype=np.float64)


class Ridge(Regularizer):
    """L2 penalty ``0.5 * sum(strength * coef**2)`` (NeMoS's Ridge)."""

    needs_strength = True

    def penalty_arrays(self, strength: Any, shape: tuple[int, int]) -> dict[str, NDArray]:  # noqa: D102
        arrays = super().penalty_arrays(strength, shape)
        arrays["l2"] = _per_coefficient(strength, shape, "regularizer_strength")
        return arrays


class Lasso(Regularizer):
    """L1 penalty ``sum(strength * |coef|)`` (NeMoS's Lasso)."""

    needs_strength = True
    smooth = False

    def penalty_arrays(self, strength: Any, shape: tuple[int, int]) -> dict[str, NDArray]:  # noqa: D102
        arrays = super().penalty_arrays(strength, shape)
        arrays["l1"] = _per_coefficient(strength, shape, "regularizer_strength")
        return arrays


class ElasticNet(Regularizer):
    """``sum(strength * ((1 - ratio) * 0.5 * coef**2 + ratio * |coef|))`` (NeMoS's ElasticNet).

    ``regularizer_strength`` is ``(strength, ratio)`` with ratio in (0, 1], or a bare strength
    (ratio 0.5).
    """

    needs_strength = True
    smooth = False

    @staticmethod
    def split(strength: Any) -> tuple[Any, Any]:
        """Return ``(strength, ratio)`` from a tuple or a bare strength."""
        if isinstance(strength, tuple):
            if len(strength) != 2:
                raise TypeError("ElasticNet regularizer_strength must be a tuple (strength, ratio)")
            return strength
        return strength, 0.5

    def penalty_arrays(self, strength: Any, shape: tuple[int, int]) -> dict[str, NDArray]:  # noqa: D102
        value, ratio = self.split(strength)
        value = _per_coefficient(value, shape, "regularizer_strength")
        ratio = _per_coefficient(ratio, shape, "the ElasticNet ratio")
        if np.any((ratio <= 0) | (ratio > 1)):
            raise ValueError("ElasticNet ratio (regularizer_strength[1]) must be in (0, 1]")
        arrays = super().penalty_arrays(strength, shape)
        arrays["l1"] = np.asfortranarray(value * ratio)
        arrays["l2"] = np.asfortranarray(value * (1.0 - ratio))
        return arrays


class GroupLasso(Regularizer):
    """Group penalty ``sum_g strength_g * sqrt(p_g) * ||coef_g||_2`` (NeMoS's GroupLasso).

    Parameters
    ----------
    mask : array-like of 0/1, optional
        ``(n_groups, n_features)``: row ``g`` marks the features of group ``g``, and every neuron
        has its own copy of each group. Or NeMoS's population layout ``(n_groups, n_features,
        n_neurons)``, where each group lies within one neuron's coefficients. A coefficient
        belongs to at most one group; coefficients in no group are not penalised; ``p_g`` is
        the number of entries of group ``g``. Default: all features in one group per neuron.
    """

    needs_strength = True
    smooth = False

    def __init__(self, mask: Any = None) -> None:
        self.mask = mask

    @property
    def mask(self) -> NDArray | None:
        """The group mask, or None for one group of all features."""
        return self._mask

    @mask.setter
    def mask(self, mask: Any) -> None:
        if mask is None:
            self._mask = None
            return
        array = np.asarray(mask, dtype=np.float64)
        if array.ndim not in (2, 3) or array.shape[0] == 0:
            raise ValueError(
                "GroupLasso mask must have shape (n_groups, n_features) or (n_groups, n_features, "
                f"n_neurons), got shape {array.shape}"
            )
        if not np.all((array == 0) | (array == 1)):
            raise ValueError("GroupLasso mask must contain only 0 and 1")
        if np.any(array.sum(axis=0) > 1):
            raise ValueError("GroupLasso mask: each coefficient may belong to at most one group")
        if np.any(array.reshape(array.shape[0], -1).sum(axis=1) == 0):
            raise ValueError("GroupLasso mask: every group must contain at least one feature")
        if array.ndim == 3 and np.any((array.sum(axis=1) > 0).sum(axis=1) > 1):
            raise ValueError(
                "GroupLasso mask: a group may not span several neurons (each neuron is fitted "
                "on its own)"
            )
        self._mask = array

    def penalty_arrays(self, strength: Any, shape: tuple[int, int]) -> dict[str, NDArray]:  # noqa: D102
        n_features, n_neurons = shape
        mask = np.ones((1, n_features)) if self._mask is None else self._mask
        if mask.ndim == 2:
            mask = np.repeat(mask[:, :, None], n_neurons, axis=2)
            sizes = self._mask_sizes(n_features)
        else:
            sizes = mask.reshape(mask.shape[0], -1).sum(axis=1)
        if mask.shape[1:] != (n_features, n_neurons):
            raise ValueError(
                f"GroupLasso mask covers coefficients of shape {mask.shape[1:]}, the model has "
                f"{(n_features, n_neurons)}"
            )
        n_groups = mask.shape[0]
        values = np.asarray(strength, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]  # per group, the same for every neuron
        if values.ndim > 2 or (values.ndim == 2 and values.shape not in (
            (n_groups, 1), (n_groups, n_neurons), (1, n_neurons)
        )):  # fmt: skip
            raise ValueError(
                f"GroupLasso regularizer_strength must be a scalar, shape ({n_groups},) or "
                f"({n_groups}, {n_neurons}) (per group and neuron), got shape {values.shape}"
            )
        per_group = np.broadcast_to(values, (n_groups, n_neurons)) * np.sqrt(sizes)[:, None]
        arrays = super().penalty_arrays(strength, shape)
        grouped = mask.sum(axis=0) > 0
        arrays["group"] = np.asfortranarray(
            np.where(grouped, np.argmax(mask, axis=0), -1), dtype=np.int64
        )
        arrays["group_weight"] = np.asfortranarray(per_group)
        return arrays

    def _mask_sizes(self, n_features: int) -> NDArray:
        if self._mask is None:
            return np.array([float(n_features)])
        return self._mask.sum(axis=1)

    def __repr__(self) -> str:
        return "GroupLasso()" if self._mask is None else f"GroupLasso(mask=<{self._mask.shape}>)"

    def __eq__(self, other: object) -> bool:
        if type(other) is not GroupLasso:
            return False
        if self._mask is None or other._mask is None:
            return self._mask is None and other._mask is None
        return self._mask.shape == other._mask.shape and bool(np.all(self._mask == other._mask))

    def __hash__(self) -> int:
        return hash("GroupLasso")


_AVAILABLE = {
    "UnRegularized": UnRegularized,
    "Ridge": Ridge,
    "Lasso": Lasso,
    "ElasticNet": ElasticNet,
    "GroupLasso": GroupLasso,
}


def resolve_regularizer(regularizer: Any) -> Regularizer:
    """Return a Regularizer instance for a name, an instance, or None (unregularised)."""
    if regularizer is None:
        return UnRegularized()
    if isinstance(regularizer, Regularizer):
        return regularizer
    name = regularizer if isinstance(regularizer, str) else type(regularizer).__name__
    if name in _AVAILABLE:
        if name == "GroupLasso" and not isinstance(regularizer, str):
            return GroupLasso(getattr(regularizer, "mask", None))
        return _AVAILABLE[name]()
    raise ValueError(
        f"Unknown regularizer {regularizer!r}; expected one of {sorted(_AVAILABLE)} (by name or "
        "instance) or None"
    )
