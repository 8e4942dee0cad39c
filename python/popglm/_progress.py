"""Progress of long fits: a tqdm bar when tqdm is installed, else a line on stderr."""

from __future__ import annotations

import math
import sys
import time

__all__ = ["FitProgress"]


class FitProgress:
    """Callable handed to the C++ solvers as ``progress(done, n_neurons, max_gradient)``.

    Nothing is shown for fits shorter than ``delay`` seconds. ``verbose=None`` shows progress
    only when stderr is a terminal (or in a notebook, through tqdm); ``True`` always, ``False``
    never (then :attr:`callback` is None and the solvers skip the calls entirely).
    """

    def __init__(self, verbose: bool | None, description: str, delay: float = 1.0) -> None:
        if verbose is None:
            verbose = _interactive()
        self._enabled = bool(verbose)
        self._description = description
        self._delay = delay
        self._start = time.perf_counter()
        self._bar = None
        self._last_line = 0.0
        self._total = 0

    @property
    def callback(self) -> FitProgress | None:
        """What to pass to the core: this object, or None when progress is off."""
        return self if self._enabled else None

    def __call__(self, done: int, total: int, max_gradient: float) -> None:
        now = time.perf_counter()
        if now - self._start < self._delay:
            return
        self._total = total
        # NaN: no neuron has a gradient yet (the solvers' first rounds).
        status = (
            "max |gradient| pending"
            if math.isnan(max_gradient)
            else f"max |gradient| {max_gradient:.2e}"
        )
        if self._bar is None and self._last_line == 0.0:
            self._bar = _make_bar(self._description, total)
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(status, refresh=False)
            self._bar.refresh()
        elif now - self._last_line >= 2.0:  # without tqdm: a line every 2 s at most
            self._last_line = now
            print(f"{self._description}: {done}/{total} neurons done, {status}", file=sys.stderr)

    def close(self) -> None:
        """Complete and close the bar, if one was shown."""
        if self._bar is not None:
            self._bar.n = self._total
            self._bar.refresh()
            self._bar.close()
            self._bar = None


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def _make_bar(description: str, total: int):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="neuron", leave=False)
