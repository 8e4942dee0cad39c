"""How many threads popglm's kernels use when the caller does not say."""

from __future__ import annotations

import numbers
import os

__all__ = ["available_cores", "resolve_n_threads"]


def available_cores() -> int:
    """Return the number of cores this process may run on (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def resolve_n_threads(n_threads: int | None) -> int:
    """Validate ``n_threads``; ``None`` means every core this process may use.

    A larger count is clamped to the cores this process may use.

    ``None`` also honours OpenMP limits: ``OMP_NUM_THREADS`` and threadpoolctl's
    ``threadpool_limits`` (which set OpenMP's thread count), so that popglm inside an already
    parallel program does not oversubscribe the cores.
    """
    if n_threads is None:
        from ._native import core

        return max(1, min(available_cores(), core.openmp_max_threads()))
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    n_threads = int(n_threads)
    if n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads}")
    # More threads than cores only wait on each other (results never depend on the count), and
    # OpenMP cannot start 1e5 of them: ask for what the machine has at most.
    return min(n_threads, available_cores())
