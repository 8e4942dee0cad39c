"""Run the C++ core's kernels in the fastest build this CPU runs.

``_core`` holds the engine, the bindings and kernels for any x86-64 CPU; on x86-64,
``_kernels_v3`` holds the same kernels compiled for x86-64-v3 (AVX2 + FMA, about twice as fast in
the Hessian kernel) and ``_kernels_v4`` for x86-64-v4 (AVX-512, faster again in the matrix
products). At import the best one the CPU supports is handed to ``_core``; ``POPGLM_ISA`` set to
``baseline``, ``x86-64-v3`` or ``x86-64-v4`` caps the choice. ``core.active_isa()`` says which
runs.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator

from . import _core as core

__all__ = ["LEVELS", "core", "runnable_levels", "use_level"]

LEVELS = ("baseline", "x86-64-v3", "x86-64-v4")


def _table(level: str):
    """Return the kernel table of `level`, or None when this CPU cannot run it or it was not built."""
    if level == "baseline":
        return core.kernels
    suffix = level.rsplit("-", 1)[1]
    # The CPU first: a kernel module for an instruction set the CPU lacks may die of SIGILL.
    if not getattr(core, f"cpu_supports_x86_64_{suffix}")():
        return None
    try:
        return importlib.import_module(f"{__package__}._kernels_{suffix}").table
    except ImportError:  # not built on this platform
        return None


def runnable_levels() -> list[str]:
    """List the instruction-set levels whose kernels were built and this CPU runs, lowest first."""
    return [level for level in LEVELS if _table(level) is not None]


@contextlib.contextmanager
def use_level(level: str) -> Iterator[None]:
    """Run the kernels of `level` inside the block (tests and benchmarks compare the builds)."""
    table = _table(level)
    if table is None:
        raise ValueError(f"the {level} kernels are not available on this machine")
    previous = core.active_isa()
    core.use_kernels(table)
    try:
        yield
    finally:
        core.use_kernels(_table(previous))


def _select() -> None:
    requested = os.environ.get("POPGLM_ISA", "").lower() or LEVELS[-1]
    if requested not in LEVELS:
        raise ValueError(f"POPGLM_ISA must be one of {', '.join(LEVELS)}, got {requested!r}")
    for level in reversed(LEVELS[: LEVELS.index(requested) + 1]):
        table = _table(level)
        if table is not None:
            core.use_kernels(table)
            return


_select()
