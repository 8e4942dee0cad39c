"""Fits on a quiet and on a busy machine: the default thread count against ``n_threads=1``.

A busy machine is one with another job on every core (a notebook, a second fit, a Dask worker
beside another): the bench starts one spinning process per available core, runs the fits, and
stops them. Each setting of ``--env`` runs in its own subprocess (a fresh OpenMP runtime, so
that its environment applies): a warm-up fit on 2,000 rows, then ``--repeats`` rounds of timed
fits, ``n_threads=1`` and the default alternating, median and best reported. Cases: "S" (20
simulated neurons, 20,000 bins, ``RaisedCosineLogConv(6, 50)``, as in bench/run.py) and "real"
(the S1 recording, when ../shared/data has it). Then, per state, how long Ctrl-C takes to stop a
fit (SIGINT to ``KeyboardInterrupt``; an unpenalised and a Lasso fit of the last case, signals
at spread delays).

Usage: ``python bench/busy.py [--cases S real] [--repeats 5] [--env NAME=VALUE ...]``; every
``--env`` setting adds a row per case and state run with that variable set (e.g.
``OMP_WAIT_POLICY=passive``), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REAL_DATA = HERE.parents[1] / "shared" / "data" / "s1_spikes.npz"

WORKER = """
import json, sys, time
import numpy as np
import popglm as nmo

case, repeats = sys.argv[1], int(sys.argv[3])
settings = [None if t == "default" else int(t) for t in sys.argv[2].split(",")]
if case == "S":
    from popglm.simulation import random_coupled_network, simulate_counts

    basis = nmo.basis.RaisedCosineLogConv(6, window_size=50)
    network = random_coupled_network(
        basis, 20, spike_probability=(0.01, 0.1), connection_probability=0.1,
        refractory_strength=1.5, seed=1020,
    )
    counts = simulate_counts(network, 20_000, burst_probability=2e-4, seed=20_000)
else:
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=10)
    counts = np.load(sys.argv[4])["counts"].astype(float)
X = basis.compute_features(counts)
for n_threads in settings:
    nmo.glm.PopulationGLM(n_threads=n_threads).fit(X[:2000], counts[:2000, :4])
# The settings alternate, fit by fit: a busy machine's share for this process drifts, and
# alternating gives every setting the same conditions.
times = {n: [] for n in range(len(settings))}
used = {}
for _ in range(repeats):
    for k, n_threads in enumerate(settings):
        start = time.perf_counter()
        model = nmo.glm.PopulationGLM(n_threads=n_threads).fit(X, counts)
        times[k].append(time.perf_counter() - start)
        used[k] = int(model.fit_info_["n_threads"])
print(json.dumps([
    {"median": float(np.median(times[k])), "best": min(times[k]), "threads": used[k]}
    for k in range(len(settings))
]))
"""


INTERRUPT_WORKER = """
import sys, warnings, numpy as np, popglm as nmo

warnings.simplefilter("ignore")  # a neuron without an MLE warns at every fit

case, regularizer = sys.argv[1], sys.argv[2]
if case == "S":
    from popglm.simulation import random_coupled_network, simulate_counts

    basis = nmo.basis.RaisedCosineLogConv(6, window_size=50)
    network = random_coupled_network(basis, 20, spike_probability=(0.01, 0.1), seed=1020)
    counts = simulate_counts(network, 20_000, seed=20_000)
else:
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=10)
    counts = np.load(sys.argv[3])["counts"].astype(float)
X = basis.compute_features(counts)
kwargs = {} if regularizer == "none" else {"regularizer": regularizer, "regularizer_strength": 1e-4}
print("ready", flush=True)
try:
    while True:
        nmo.glm.PopulationGLM(**kwargs).fit(X, counts)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def interrupt_latency(case: str, regularizer: str, delay: float) -> float:
    """Seconds from SIGINT to the fit's KeyboardInterrupt, the signal sent `delay` s into fitting."""
    command = [sys.executable, "-c", INTERRUPT_WORKER, case, regularizer, str(REAL_DATA)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the interrupt worker did not start")
        time.sleep(delay)
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        answer = proc.stdout.readline().strip()
        elapsed = time.perf_counter() - start
        proc.wait()
    if answer != "interrupted":
        raise RuntimeError(f"the fit did not stop on SIGINT (printed {answer!r})")
    return elapsed


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def run(case: str, n_threads: str, repeats: int, env: dict[str, str]) -> list[dict]:
    command = [sys.executable, "-c", WORKER, case, n_threads, str(repeats), str(REAL_DATA)]
    proc = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="*", default=["S", "real"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings to compare")
    args = parser.parse_args()
    variants = [("", {})] + [(e, dict([e.split("=", 1)])) for e in args.env]
    cases = [c for c in args.cases if c != "real" or REAL_DATA.exists()]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {cores()} cores  python bench/busy.py "
          + " ".join(sys.argv[1:]), flush=True)  # fmt: skip
    print("| case | machine | setting | n_threads | median s | best s |")
    print("|---|---|---|---|---|---|")
    interrupts: list[str] = []
    for state in ("quiet", "busy"):
        spinners = []
        if state == "busy":
            spinners = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores())
            ]
            time.sleep(1.0)
        try:
            for case in cases:
                for label, env in variants:
                    results = run(case, "1,default", args.repeats, env)
                    for n_threads, result in zip(("1", "default"), results, strict=True):
                        threads = f"{n_threads} ({result['threads']})"
                        print(
                            f"| {case} | {state} | {label or '-'} | {threads} | "
                            f"{result['median']:.3f} | {result['best']:.3f} |",
                            flush=True,
                        )
            for regularizer in ("none", "Lasso"):
                delays = (0.3, 0.5, 0.9, 1.2, 1.7, 2.6)
                latencies = [interrupt_latency(cases[-1], regularizer, d) for d in delays]
                interrupts.append(
                    f"| {cases[-1]} | {state} | {regularizer} | "
                    + " ".join(f"{x:.3f}" for x in latencies)
                    + f" | {max(latencies):.3f} |"
                )
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
    print("\nCtrl-C: seconds from SIGINT to KeyboardInterrupt, signals 0.3-2.6 s into fitting\n")
    print("| case | machine | regularizer | latencies s | worst s |")
    print("|---|---|---|---|---|")
    print("\n".join(interrupts))


if __name__ == "__main__":
    main()
