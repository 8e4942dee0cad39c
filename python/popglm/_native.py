"""Run the C++ core's kernels in the fastest build this CPU runs.

``_core`` holds the engine, the bindings and kernels for any x86-64 CPU; on x86-64,
``_kernels_v3`` holds the same kernels compiled for x86-64-v3 (AVX2 + FMA, about twice as fast in
the Hessian kernel) and ``_kernels_v4`` for x86-64-v4 (AVX-512, faster again in the matrix
products). At import the best one the CPU supports is handed to ``_core``; ``POPGLM_ISA`` set to
``baseline``, ``x86-64-v3`` or ``x86-64-v4`` caps the choice. ``core.active_isa()`` says which
runs.

OpenMP's idle threads: GNU OpenMP (libgomp) lets a thread that waits at a barrier spin for
300,000 rounds by default before it sleeps. On a machine with another job on every core, the
thread it waits for is often descheduled, and two spinning threads made a fit slower than one
(bench/busy.py). The engine's rounds are short, so popglm loads its OpenMP runtime with
``GOMP_SPINCOUNT`` = ``SPIN_COUNT`` (about 30 times shorter): as fast as the default on a quiet
machine, never slower than one thread on a busy one. Only popglm's runtime sees it (wheels carry
a private libgomp; the variable is removed again once it has loaded), and a user's own
``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` wins. ``POPGLM_SPIN_COUNT`` sets another value.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator

__all__ = ["LEVELS", "SPIN_COUNT", "core", "runnable_levels", "use_level"]

SPIN_COUNT = 10_000


def _load_core():
    """Import ``_core``, its OpenMP runtime loading with popglm's spin count (see above)."""
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return importlib.import_module(f"{__package__}._core")
    spin_count = os.environ.get("POPGLM_SPIN_COUNT", str(SPIN_COUNT)).strip()
    if not spin_count.isdigit():
        raise ValueError(f"POPGLM_SPIN_COUNT must be a non-negative integer, got {spin_count!r}")
    os.environ["GOMP_SPINCOUNT"] = spin_count
    try:
        return importlib.import_module(f"{__package__}._core")
    finally:
        del os.environ["GOMP_SPINCOUNT"]


core = _load_core()

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
