"""Warnings and errors raised by popglm."""

from __future__ import annotations

__all__ = ["ConvergenceWarning"]


class ConvergenceWarning(UserWarning):
    """A neuron's fit did not reach the requested tolerance, or its MLE does not exist."""
