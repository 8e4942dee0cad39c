"""popglm: fully coupled Poisson GLMs for neural populations, on an exact C++ Newton core."""

from __future__ import annotations

from . import basis, glm, inference, observation_models, regularizer, simulation
from ._version import __version__
from .exceptions import ConvergenceWarning, NotFittedError
from .glm import load_model

__all__ = [
    "ConvergenceWarning",
    "NotFittedError",
    "__version__",
    "basis",
    "glm",
    "inference",
    "load_model",
    "observation_models",
    "regularizer",
    "simulation",
]
