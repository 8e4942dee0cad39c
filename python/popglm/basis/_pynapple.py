"""Optional pynapple support: time series in, time series out, convolved per epoch.

pynapple is never imported here: its objects are recognised by their attributes, so the
package works (and imports fast) without it; it is imported lazily only to build outputs,
which can only be needed when a pynapple object came in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def is_tsd(x: Any) -> bool:
    """Tell whether ``x`` is a pynapple time series (Tsd, TsdFrame or TsdTensor)."""
    return (
        type(x).__module__.startswith("pynapple")
        and hasattr(x, "time_support")
        and hasattr(x, "t")
        and hasattr(x, "values")
    )


def values(x: Any) -> NDArray:
    """Return the data of ``x`` as a float64 array (pynapple or not)."""
    data = x.values if is_tsd(x) else x
    return np.asarray(data, dtype=np.float64)


def segments(x: Any) -> list[tuple[int, int]] | None:
    """Sample ranges ``[start, stop)`` of the epochs of a pynapple input; None for arrays."""
    if not is_tsd(x):
        return None
    t = np.asarray(x.t)
    support = np.asarray(x.time_support.values, dtype=np.float64).reshape(-1, 2)
    starts = np.searchsorted(t, support[:, 0], side="left")
    stops = np.searchsorted(t, support[:, 1], side="right")
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def time_info(inputs: list) -> tuple[NDArray, Any] | None:
    """Time index and support of the first pynapple input, or None if there is none."""
    for x in inputs:
        if is_tsd(x):
            return np.asarray(x.t), x.time_support
    return None


def epoch_starts(inputs: list) -> list[list[tuple[int, int]] | None]:
    """Return the epoch ranges of every input (None for plain arrays)."""
    return [segments(x) for x in inputs]


def wrap(out: NDArray, info: tuple[NDArray, Any] | None):
    """Return ``out`` as a pynapple object on the time index ``info`` (unchanged if None)."""
    if info is None:
        return out
    import pynapple as nap

    t, support = info
    if out.ndim == 1:
        return nap.Tsd(t=t, d=out, time_support=support)
    if out.ndim == 2:
        return nap.TsdFrame(t=t, d=out, time_support=support)
    return nap.TsdTensor(t=t, d=out, time_support=support)
