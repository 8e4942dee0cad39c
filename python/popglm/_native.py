"""Pick the fastest build of the C++ core this CPU can run.

``_core`` runs on any CPU; ``_core_v3`` (x86-64 only) is the same code compiled for x86-64-v3
(AVX2 + FMA), about twice as fast in the Hessian kernel. ``POPGLM_ISA=baseline`` forces ``_core``.
"""

from __future__ import annotations

import os

from . import _core as baseline

__all__ = ["core"]


def _select():
    if (
        os.environ.get("POPGLM_ISA", "").lower() == "baseline"
        or not baseline.cpu_supports_x86_64_v3()
    ):
        return baseline
    try:
        from . import _core_v3
    except ImportError:  # not built on this platform
        return baseline
    return _core_v3


core = _select()
