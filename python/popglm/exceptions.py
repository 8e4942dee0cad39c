"""Warnings and errors raised by popglm."""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "NotFittedError"]


class ConvergenceWarning(UserWarning):
    """A neuron's fit did not reach the requested tolerance, or its MLE does not exist."""


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit`` (subclasses ValueError and AttributeError, as sklearn's)."""
