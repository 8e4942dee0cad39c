"""popglm: fully coupled Poisson GLMs for neural populations, on an exact C++ Newton core."""

from __future__ import annotations

from . import basis, glm
from ._version import __version__
from .exceptions import ConvergenceWarning

__all__ = ["ConvergenceWarning", "__version__", "basis", "glm"]
