"""Dense-input convolution: the FFT path against the direct sum, per window (one run).

The two paths of ``_core.convolve_aligned`` on the same dense input (10**6 samples of N(0, 1),
``RaisedCosineLogConv(6, window)`` kernels, one thread): "chosen" is what the cost rule picks;
"direct" is the same input with a stretch of zeros two windows long, which the accuracy rule
sends to the direct sum (its cost differs by 0.4% of the samples). Usage:
``python bench/convolve.py`` with popglm importable.
"""

from __future__ import annotations

import time

import numpy as np

import popglm as nmo
from popglm._native import core as _core


def best_of(x: np.ndarray, kernels: np.ndarray, repeats: int = 3) -> float:
    out = np.empty((x.shape[0], kernels.shape[1]), order="F")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _core.convolve_aligned(x, kernels, -1, out, 1)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    print("| window | chosen path s | direct sum s |")
    print("|---|---|---|")
    for window in (100, 300, 1000, 2000, 4000):
        kernels = np.asfortranarray(nmo.basis.RaisedCosineLogConv(6, window_size=window).kernel_)
        x = rng.normal(size=(10**6, 1))
        zeros = x.copy()
        zeros[1000 : 1000 + 2 * window] = 0.0
        chosen = best_of(np.asfortranarray(x), kernels)
        direct = best_of(np.asfortranarray(zeros), kernels)
        print(f"| {window} | {chosen:.3f} | {direct:.3f} |")


if __name__ == "__main__":
    main()
