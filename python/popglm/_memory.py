"""Memory checked before a large allocation: the bytes a call will need, refused up front.

A request larger than the memory this process can get (``available_bytes``) would end in a
``MemoryError`` after minutes of work, or in the kernel's OOM killer taking the Python process
(and a notebook's state) with it. ``check_allocation`` refuses it at once with a ``ValueError``
that says how much, for what, and how much there is. The environment variable
``POPGLM_MEMORY_LIMIT`` overrides the limit, read at each check: a size (``"64G"``, ``"512M"``,
a number of bytes) or ``"off"`` (for machines with swap or memory the estimate cannot see).
"""

from __future__ import annotations

import math
import os

__all__ = ["available_bytes", "check_allocation", "format_bytes", "memory_limit"]

#: The environment variable that overrides the limit.
LIMIT_VARIABLE = "POPGLM_MEMORY_LIMIT"
#: Without an override, requests up to this size are not checked (reading /proc costs more than
#: they do).
_UNCHECKED = 256 * 2**20
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int | None:
    """Return the bytes this process can still allocate, or None where that cannot be read.

    The smaller of the system's available memory (``MemAvailable``: free plus reclaimable) and
    what the process's cgroup (a container's or a job's limit) leaves.
    """
    candidates = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    limit = _read_int("/sys/fs/cgroup/memory.max")
    used = _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        candidates.append(max(limit - used, 0))
    return min(candidates) if candidates else None


def memory_limit() -> float | None:
    """Return the largest allocation allowed in bytes (inf when off, None when unknown)."""
    override = _override()
    return available_bytes() if override is None else override


def _override() -> float | None:
    """Return the limit ``POPGLM_MEMORY_LIMIT`` sets (inf for off), or None when it is unset."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return None
    if text.lower() in ("off", "none", "inf"):
        return math.inf
    number, unit = text.rstrip("BbIi"), ""
    if number and number[-1].upper() in _UNITS:
        number, unit = number[:-1], number[-1].upper()
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(
            f"{LIMIT_VARIABLE} must be a size such as 64G, 512M or a number of bytes, or 'off'; "
            f"got {text!r}"
        ) from None
    if not value > 0:
        raise ValueError(f"{LIMIT_VARIABLE} must be positive, got {text!r}")
    return value


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in the largest binary unit that keeps it >= 1 (e.g. ``'7.3 TiB'``)."""
    for unit, size in (
        ("PiB", 2**50),
        ("TiB", 2**40),
        ("GiB", 2**30),
        ("MiB", 2**20),
        ("KiB", 2**10),
    ):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{int(n_bytes)} bytes"


def check_allocation(n_bytes: float, what: str) -> None:
    """Raise ValueError if allocating ``n_bytes`` for ``what`` exceeds ``memory_limit()``.

    ``what`` names the array and the arguments that size it, e.g. ``"the kernel (window_size x
    n_basis_funcs = 1000000 x 1000000 float64)"``.
    """
    limit = _override()
    source = f"{LIMIT_VARIABLE} allows"
    if limit is None:
        if n_bytes <= _UNCHECKED:
            return
        limit, source = available_bytes(), "this process can allocate"
    if limit is None or n_bytes <= limit:
        return
    raise ValueError(
        f"{what} would need {format_bytes(n_bytes)}, more than the {format_bytes(limit)} "
        f"{source}; reduce the arguments that size it, or set the environment variable "
        f"{LIMIT_VARIABLE} (a size such as 64G, or 'off') if this machine has the memory"
    )
