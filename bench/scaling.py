"""Large populations: fit time against the number of neurons at a fixed recording length.

One simulated 400-neuron network (T = 50,000 bins, baseline spike probabilities 0.02-0.08 per
bin, the package's default couplings: connection probability 0.1, refractory strength 3; mean
rate about 0.05), ``RaisedCosineLogConv(4, 50)``), its first N neurons
fitted as a fully coupled population (P = 4 N features per neuron) from
``basis.history_features`` (the T x P design is never formed). Each fit runs in its own
process; the table gives the fit seconds, the process's peak RSS, the Hessians and Newton
iterations summed over neurons, and the max |gradient| of the mean NLL at the answer as the
fit reports it. The exponent is the least-squares slope of log(time) on log(N) over the rows.

NeMoS (when importable) fits the same features of the same neurons with its defaults, warm
(after a first JIT-compiling fit on 2,000 rows), and is skipped for N whose projected time
(from the previous N, times (N / previous N)^3) exceeds --nemos-budget seconds.

Usage: ``python bench/scaling.py [--neurons 25 50 100 200 400] [--nemos-budget 900]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
import warnings

import numpy as np

N_SAMPLES, MAX_NEURONS = 50_000, 400
N_BASIS, WINDOW = 4, 50


def make_counts() -> np.ndarray:
    import popglm as nmo
    from popglm.simulation import random_coupled_network, simulate_counts

    basis = nmo.basis.RaisedCosineLogConv(N_BASIS, window_size=WINDOW)
    network = random_coupled_network(
        basis, MAX_NEURONS, spike_probability=(0.02, 0.08), seed=2026,
    )  # fmt: skip
    return simulate_counts(network, N_SAMPLES, seed=4).astype(np.float64)


def fit_popglm(path: str, n_neurons: int):
    import popglm as nmo

    warnings.simplefilter("ignore")  # the warm-up's short recording may leave MLEs at infinity
    counts = np.asfortranarray(np.load(path)[:, :n_neurons])
    basis = nmo.basis.RaisedCosineLogConv(N_BASIS, window_size=WINDOW)
    X = basis.history_features(counts)
    model = nmo.glm.PopulationGLM()
    # Starts the thread pool; a small population (2,000 rows would not identify 4 N features).
    small = np.asfortranarray(counts[:2000, :5])
    model.fit(basis.history_features(small), small)
    start = time.perf_counter()
    model.fit(X, counts)
    seconds = time.perf_counter() - start
    info = model.fit_info_
    return {
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "hessians": int(info["n_hessian"].sum()),
        "iterations": int(info["n_iter"].sum()),
        "max_grad": float(info["gradient_norm"].max()),
        "mean_rate": float(counts.mean()),
        "reasons": sorted(set(info["reason"])),
    }


def fit_nemos(path: str, n_neurons: int):
    import jax

    jax.config.update("jax_enable_x64", True)
    import nemos

    import popglm as nmo

    counts = np.load(path)[:, :n_neurons]
    X = nmo.basis.RaisedCosineLogConv(N_BASIS, window_size=WINDOW).compute_features(counts)
    valid = np.isfinite(X).all(axis=1)
    X, counts = X[valid], counts[valid]
    nemos.glm.PopulationGLM().fit(X[:2000], counts[:2000])  # JIT
    model = nemos.glm.PopulationGLM()
    start = time.perf_counter()
    model.fit(X, counts)
    seconds = time.perf_counter() - start
    eta = X @ np.asarray(model.coef_) + np.asarray(model.intercept_)
    gradient = X.T @ (np.exp(eta) - counts) / X.shape[0]
    return {
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_grad": float(np.abs(gradient).max()),
    }


def in_process(function, path: str, n_neurons: int):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, (path, n_neurons))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--neurons", type=int, nargs="*", default=[25, 50, 100, 200, 400])
    parser.add_argument("--nemos-budget", type=float, default=900.0)
    args = parser.parse_args()
    try:
        import nemos  # noqa: F401

        with_nemos = True
    except ImportError:
        with_nemos = False
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {len(os.sched_getaffinity(0))} cores  "
          f"python bench/scaling.py --neurons {' '.join(map(str, args.neurons))}", flush=True)  # fmt: skip
    print(
        "| N | P | popglm s | peak MB | Hessians | iterations | max grad | NeMoS s | NeMoS max grad | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    times, last_nemos = [], None
    scratch = tempfile.TemporaryDirectory()
    path = os.path.join(scratch.name, "counts.npy")
    np.save(path, make_counts())
    for n in args.neurons:
        ours = in_process(fit_popglm, path, n)
        times.append(ours["seconds"])
        nemos_cells = ["not installed", "-", "-"]
        if with_nemos:
            projected = None if last_nemos is None else last_nemos[1] * (n / last_nemos[0]) ** 3
            if projected is not None and projected > args.nemos_budget:
                nemos_cells = [f"skipped (~{projected:.0f} s projected)", "-", "-"]
            else:
                theirs = in_process(fit_nemos, path, n)
                last_nemos = (n, theirs["seconds"])
                ratio = theirs["seconds"] / ours["seconds"]
                nemos_cells = [
                    f"{theirs['seconds']:.1f}",
                    f"{theirs['max_grad']:.0e}",
                    f"{ratio:.0f}x",
                ]
        print(f"| {n} | {4 * n} | {ours['seconds']:.1f} | {ours['peak_mb']:.0f} | "
              f"{ours['hessians']} | {ours['iterations']} | {ours['max_grad']:.0e} | "
              f"{' | '.join(nemos_cells)} |", flush=True)  # fmt: skip
        print(f"<!-- N={n}: mean rate {ours['mean_rate']:.3f}, {ours['reasons']} -->", flush=True)
    if len(times) > 1:
        slope = np.polyfit(np.log(args.neurons[: len(times)]), np.log(times), 1)[0]
        print(f"\nFitted exponent: time ~ N^{slope:.2f}")


if __name__ == "__main__":
    main()
