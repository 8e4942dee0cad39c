"""Pick the fastest build of the C++ core this CPU can run.

``_core`` runs on any CPU; on x86-64, ``_core_v3`` is the same code compiled for x86-64-v3
(AVX2 + FMA, about twice as fast in the Hessian kernel) and ``_core_v4`` for x86-64-v4
(AVX-512, about 1.8x faster again in the matrix products). ``POPGLM_ISA`` set to ``baseline``,
``x86-64-v3`` or ``x86-64-v4`` caps the choice.
"""

from __future__ import annotations

import importlib
import os

from . import _core as baseline

__all__ = ["core"]

_LEVELS = ("baseline", "x86-64-v3", "x86-64-v4")


def _select():
    requested = os.environ.get("POPGLM_ISA", "").lower() or _LEVELS[-1]
    if requested not in _LEVELS:
        raise ValueError(f"POPGLM_ISA must be one of {', '.join(_LEVELS)}, got {requested!r}")
    # The best level first: x86-64-v4 is _core_v4, checked by cpu_supports_x86_64_v4, and so on.
    for level in reversed(_LEVELS[1 : _LEVELS.index(requested) + 1]):
        suffix = level.rsplit("-", 1)[1]
        if not getattr(baseline, f"cpu_supports_x86_64_{suffix}")():
            continue
        try:
            return importlib.import_module(f"{__package__}._core_{suffix}")
        except ImportError:  # not built on this platform
            continue
    return baseline


core = _select()
