"""Penalties on the GLM coefficients, with NeMoS's names and objective.

Per neuron, the objective is the mean over samples of the negative log-likelihood plus the
penalty, with no 1/n factor on the penalty; the intercept is never penalised:

- ``UnRegularized``: no penalty.
- ``Ridge``: ``0.5 * sum(strength * coef**2)``.

``strength`` is a scalar or an array broadcastable to the coefficients' shape (one strength per
coefficient). Lasso, ElasticNet and GroupLasso are not available in this version.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Regularizer", "Ridge", "UnRegularized", "resolve_regularizer"]


class Regularizer:
    """Base class: a penalty on the coefficients (never the intercept)."""

    #: Whether ``regularizer_strength`` is required (a default of 1.0 is used, with a warning).
    needs_strength = False

    def penalty(self, coef: NDArray, strength: NDArray | None) -> float:
        """Value of the penalty at ``coef`` (summed over all neurons)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class UnRegularized(Regularizer):
    """No penalty: the maximum-likelihood estimate."""

    def penalty(self, coef: NDArray, strength: NDArray | None) -> float:  # noqa: D102
        return 0.0


class Ridge(Regularizer):
    """L2 penalty ``0.5 * sum(strength * coef**2)`` (NeMoS's Ridge)."""

    needs_strength = True

    def penalty(self, coef: NDArray, strength: NDArray | None) -> float:  # noqa: D102
        return 0.5 * float(np.sum(strength * np.square(coef)))


_AVAILABLE = {"UnRegularized": UnRegularized, "Ridge": Ridge}
_NOT_YET = ("Lasso", "ElasticNet", "GroupLasso")


def resolve_regularizer(regularizer: Any) -> Regularizer:
    """Return a Regularizer instance for a name, an instance, or None (unregularised)."""
    if regularizer is None:
        return UnRegularized()
    if isinstance(regularizer, Regularizer):
        return regularizer
    name = regularizer if isinstance(regularizer, str) else type(regularizer).__name__
    if name in _AVAILABLE:
        return _AVAILABLE[name]()
    if name in _NOT_YET:
        raise ValueError(
            f"regularizer {name!r} is not available in this version of popglm; available: "
            f"{sorted(_AVAILABLE)}"
        )
    raise ValueError(
        f"Unknown regularizer {regularizer!r}; expected one of {sorted(_AVAILABLE)} (by name or "
        "instance) or None"
    )
