"""Fits on a quiet and on a busy machine: the default thread count against ``n_threads=1``.

A busy machine is one with another job on every core (a notebook, a second fit, a Dask worker
beside another): the bench starts one spinning process per available core, runs the fits, and
stops them. Each configuration runs in its own subprocess (a fresh OpenMP runtime, so that its
environment applies): a warm-up fit on 2,000 rows, then ``--repeats`` timed fits, median and
best reported. Cases: "S" (20 simulated neurons, 20,000 bins, ``RaisedCosineLogConv(6, 50)``,
as in bench/run.py) and "real" (the S1 recording, when ../shared/data has it).

Usage: ``python bench/busy.py [--cases S real] [--repeats 5] [--env NAME=VALUE ...]``; every
``--env`` setting adds a row per case and state run with that variable set (e.g.
``OMP_WAIT_POLICY=passive``), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REAL_DATA = HERE.parents[1] / "shared" / "data" / "s1_spikes.npz"

WORKER = """
import json, sys, time
import numpy as np
import popglm as nmo

case, n_threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
n_threads = None if n_threads == "default" else int(n_threads)
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
nmo.glm.PopulationGLM(n_threads=n_threads).fit(X[:2000], counts[:2000, :4])
times = []
for _ in range(repeats):
    start = time.perf_counter()
    model = nmo.glm.PopulationGLM(n_threads=n_threads).fit(X, counts)
    times.append(time.perf_counter() - start)
print(json.dumps({
    "median": float(np.median(times)), "best": min(times),
    "threads": int(model.fit_info_["n_threads"]),
}))
"""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def run(case: str, n_threads: str, repeats: int, env: dict[str, str]) -> dict:
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
                    for n_threads in ("1", "default"):
                        result = run(case, n_threads, args.repeats, env)
                        threads = f"{n_threads} ({result['threads']})"
                        print(
                            f"| {case} | {state} | {label or '-'} | {threads} | "
                            f"{result['median']:.3f} | {result['best']:.3f} |",
                            flush=True,
                        )
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()


if __name__ == "__main__":
    main()
