"""popglm: fully coupled Poisson GLMs for neural populations, on an exact C++ Newton core."""

import importlib as _importlib

from . import (
    basis,
    glm,
    identifiability_constraints,
    inference,
    io,
    observation_models,
    regularizer,
    simulation,
)
from ._version import __version__
from .exceptions import ConvergenceWarning, NotFittedError
from .glm import load_model

__all__ = [
    "ConvergenceWarning",
    "NotFittedError",
    "__version__",
    "basis",
    "glm",
    "identifiability_constraints",
    "inference",
    "io",
    "load_model",
    "observation_models",
    "regularizer",
    "simulation",
]

# Imported on first access (and left out of `import *`): they need optional dependencies
# (matplotlib, dask) that most sessions never load.
_LAZY_SUBMODULES = frozenset({"distributed", "plotting"})


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY_SUBMODULES])
