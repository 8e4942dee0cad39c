"""popglm on Dask: one fit on 1 and on 2 workers of a LocalCluster, against the local fit.

    python bench/dask_scaling.py            # the RESULTS.md run (about 2 minutes on 2 cores)
    python bench/dask_scaling.py --quick    # tiny smoke run

Two cases, each fitted locally (one thread) and with ``fit(..., client=client)`` on a
LocalCluster of 1 and of 2 single-threaded worker processes:

- receiver-parallel: ``basis.history_features(counts)`` (the workers receive the counts and the
  kernels once and fit chunks of receivers with the C++ engine);
- sample-parallel: the dense design as a dask array chunked along samples, convolved on the
  workers from the counts (``popglm.distributed.compute_features``); every Newton pass reduces
  per-chunk gradients and Hessians on the workers.

Each distributed answer is checked against the local one (receivers: 1e-10; samples: 1e-8
relative, the local engine's own precision on weakly identified coefficients). Cluster start-up
and one small warm-up fit (which imports popglm on the workers) are not timed. The table also
gives the bytes each fit moved, from which bench/RESULTS.md estimates cluster scaling.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def simulate(n_samples: int, n_neurons: int, basis, seed: int) -> np.ndarray:
    from popglm.simulation import random_coupled_network, simulate_counts

    network = random_coupled_network(
        basis, n_neurons, spike_probability=(0.01, 0.1), connection_probability=0.1,
        refractory_strength=1.5, seed=seed,
    )  # fmt: skip
    return simulate_counts(network, n_samples, burst_probability=2e-4, seed=seed)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def worker_cpu_seconds() -> float:
    return time.process_time()  # every thread of the worker process


def timed_on(client, function):
    """Wall seconds of ``function()`` and the CPU seconds each worker process spent meanwhile.

    On a shared machine wall times of 2 workers depend on what else runs; the CPU seconds say
    how the work was split (the CPU-bound speed-up is total / busiest worker).
    """
    before = client.run(worker_cpu_seconds)
    result, seconds = timed(function)
    after = client.run(worker_cpu_seconds)
    return result, seconds, sorted(after[w] - before[w] for w in before)


def count_passes():
    """Wrap the sample-parallel reduction to count the passes over the data and the bytes."""
    import popglm.distributed as distributed

    record = {"passes": 0}
    original = distributed._SampleChunks.reduce

    def reduce(self, function, *args):
        record["passes"] += 1
        record["chunks"] = len(self._blocks)
        result = original(self, function, *args)
        record["bytes_per_chunk"] = sum(np.asarray(v).nbytes for v in result.values())
        return result

    distributed._SampleChunks.reduce = reduce
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    import popglm as nmo
    import popglm.distributed

    if args.quick:
        receivers = (5_000, 8, nmo.basis.RaisedCosineLogConv(4, window_size=20))
        samples = (20_000, 4, nmo.basis.RaisedCosineLogConv(3, window_size=10), 5_000)
    else:
        receivers = (50_000, 40, nmo.basis.RaisedCosineLogConv(6, window_size=50))
        samples = (200_000, 16, nmo.basis.RaisedCosineLogConv(5, window_size=30), 25_000)

    n_samples, n_neurons, basis = receivers
    counts = simulate(n_samples, n_neurons, basis, seed=1)
    X_history = basis.history_features(counts)
    s_samples, s_neurons, s_basis, chunk_rows = samples
    s_counts = simulate(s_samples, s_neurons, s_basis, seed=2)
    X_dense = s_basis.compute_features(s_counts)
    warm = counts[:500]

    def model():
        return nmo.glm.PopulationGLM(n_threads=1)

    rows = []
    local_r, seconds = timed(lambda: model().fit(X_history, counts))
    rows.append(("receivers", "local, 1 thread", seconds, 0.0, [], ""))
    local_s, seconds = timed(lambda: model().fit(X_dense, s_counts))
    rows.append(("samples", "local, 1 thread", seconds, 0.0, [], ""))
    passes = count_passes()
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which pins glibc's mmap threshold
    # at 128 KiB: every large buffer the engine frees goes back to the OS and the next one
    # page-faults (measured: a 20-neuron history fit 2.9 -> 4.2 CPU s). Unset, as docs/dask.md
    # recommends for popglm workers.
    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
    for n_workers in (1, 2):
        with (
            LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            with warnings.catch_warnings():  # a 500-row fit: some MLEs are at infinity
                warnings.simplefilter("ignore", nmo.ConvergenceWarning)
                model().fit(basis.history_features(warm), warm, client=client)  # imports popglm
            fitted, seconds, cpu = timed_on(
                client,
                lambda: model().fit(X_history, counts, client=client),  # noqa: B023
            )
            error = np.max(np.abs(fitted.coef_ - local_r.coef_))
            assert error <= 1e-10, error
            shipped = n_workers * (counts.nbytes + X_history.kernels.nbytes)
            rows.append(
                ("receivers", f"dask, {n_workers} worker(s)", seconds, error, cpu,
                 f"{shipped / 1e6:.1f} MB of counts+kernels sent once; "
                 f"{fitted.coef_.nbytes / 1e6:.2f} MB of coefficients back"),
            )  # fmt: skip
            # Only the counts travel; the workers convolve their chunks of the design.
            yd = da.from_array(s_counts, chunks=(chunk_rows, -1))
            Xd = popglm.distributed.compute_features(s_basis, yd)
            passes["passes"] = 0
            fitted, seconds, cpu = timed_on(
                client,
                lambda: model().fit(Xd, yd, client=client),  # noqa: B023
            )
            error = np.max(
                np.abs(fitted.coef_ - local_s.coef_) / np.maximum(1.0, np.abs(local_s.coef_))
            )
            assert error <= 1e-8, error
            rows.append(
                ("samples", f"dask, {n_workers} worker(s)", seconds, error, cpu,
                 f"{passes['passes']} passes x {passes['chunks']} chunks; "
                 f"{passes['bytes_per_chunk'] / 1e6:.2f} MB per chunk result; "
                 f"{X_dense.nbytes / 1e6:.0f} MB design persisted on the workers"),
            )  # fmt: skip

    print(
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {platform.machine()} "
        f"{os.cpu_count()} cores, Python {platform.python_version()}."
    )
    print(
        f"receivers: history_features of {n_samples} x {n_neurons} counts, "
        f"{X_history.shape[1]} features; samples: dense {X_dense.shape} design, {s_neurons} "
        f"neurons, chunks of {chunk_rows} rows\n"
    )
    print(
        "| case | run | fit s (wall) | wall speed-up vs 1 worker | worker CPU s | CPU-bound "
        "speed-up | max coef difference vs local | note |"
    )
    print("|---|---|---|---|---|---|---|---|")
    one_worker = {case: (s, sum(c)) for case, run, s, _, c, _ in rows if run.startswith("dask, 1")}
    for case, run, seconds, error, cpu, note in rows:
        wall = one_worker[case][0] / seconds
        cpu_text = " + ".join(f"{c:.2f}" for c in cpu) if cpu else ""
        bound = f"{one_worker[case][1] / max(cpu):.2f}x" if cpu else ""
        print(
            f"| {case} | {run} | {seconds:.2f} | {wall:.2f}x | {cpu_text} | {bound} | "
            f"{error:.1e} | {note} |"
        )


if __name__ == "__main__":
    main()
