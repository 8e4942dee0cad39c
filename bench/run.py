"""Side-by-side benchmark: popglm against NeMoS, scikit-learn, statsmodels and glum.

    python bench/run.py                       # every case, every peer that is installed
    python bench/run.py --cases howto S real  # some cases
    python bench/run.py --quick               # tiny smoke run (howto + a small simulated case)

Every peer fits the same features of the same counts on the same machine in this one run; each
fit runs in its own subprocess so its peak RSS is its own. For every run the table reports the
fit seconds, the feature seconds, peak RSS, the final mean objective, the max gradient norm at the
returned answer (computed here, in float64, the same way for all peers) and, on simulated data,
the error against the true coefficients. It also measures this machine's DGEMM throughput (numpy
matmul) and the fraction of it that popglm's Hessian kernel reaches. Results are appended to
bench/results/<timestamp>.json and printed as a Markdown table for bench/RESULTS.md.
A peer projected to exceed --budget seconds on a case is run on a subset of receiver neurons and
its time extrapolated linearly in the number of neurons, which the table marks.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REAL_DATA = HERE.parents[1] / "shared" / "data" / "s1_spikes.npz"

# name: (n_samples, n_neurons, basis spec); basis spec = (class name, kwargs)
CASES = {
    "howto": (100, 4, ("HistoryConv", {"window_size": 10})),
    "S": (20_000, 20, ("RaisedCosineLogConv", {"n_basis_funcs": 6, "window_size": 50})),
    "M": (100_000, 50, ("RaisedCosineLogConv", {"n_basis_funcs": 8, "window_size": 100})),
    "L": (1_000_000, 100, ("RaisedCosineLogConv", {"n_basis_funcs": 8, "window_size": 100})),
    "real": (35_129, 52, ("RaisedCosineLogConv", {"n_basis_funcs": 4, "window_size": 10})),
    # S's size with what real recordings have: strong couplings, bursts, refractoriness, low
    # rates, rare senders (some neurons' MLE does not exist; some are near separation).
    "S-hard": (20_000, 20, ("RaisedCosineLogConv", {"n_basis_funcs": 6, "window_size": 50})),
}
QUICK_CASES = {
    "howto": CASES["howto"],
    "XS": (5_000, 5, ("RaisedCosineLogConv", {"n_basis_funcs": 4, "window_size": 20})),
}
PEERS = ["popglm", "nemos", "sklearn", "statsmodels", "glum"]
# Cases whose float64 design (here 6.4 GB) is never formed: popglm fits them from the counts and
# the basis (basis.history_features); the peers, which all need the matrix, are not run.
HISTORY_ONLY_CASES = {"L"}


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def make_case(name: str, spec, cache: pathlib.Path) -> pathlib.Path | None:
    """Write the case's counts (and truth) to an .npz in `cache`; None if its data is missing."""
    import popglm as nmo
    from popglm.simulation import random_coupled_network, simulate_counts

    path = cache / f"{name}.npz"
    if path.exists():
        return path
    n_samples, n_neurons, (basis_name, basis_kwargs) = spec
    basis = getattr(nmo.basis, basis_name)(**basis_kwargs)
    if name == "howto":
        np.random.seed(42)
        counts = np.random.poisson(size=(100, 4))
        np.savez(path, counts=counts)
    elif name == "real":
        if not REAL_DATA.exists():
            return None
        counts = np.load(REAL_DATA)["counts"].astype(np.int64)
        np.savez(path, counts=counts)
    elif name == "S-hard":
        network = random_coupled_network(
            basis, n_neurons, spike_probability=(0.002, 0.05), connection_probability=0.2,
            coupling_strength=4.0, refractory_strength=4.0, seed=2026,
        )  # fmt: skip
        counts = simulate_counts(
            network, n_samples, burst_probability=1e-3, burst_log_rate=2.5, seed=2027
        )
        np.savez(path, counts=counts, true_coef=network.coef, true_intercept=network.intercept)
    else:
        network = random_coupled_network(
            basis, n_neurons, spike_probability=(0.01, 0.1), connection_probability=0.1,
            refractory_strength=1.5, seed=len(name) * 1000 + n_neurons,
        )  # fmt: skip
        counts = simulate_counts(network, n_samples, burst_probability=2e-4, seed=n_samples)
        np.savez(path, counts=counts, true_coef=network.coef, true_intercept=network.intercept)
    return path


def make_basis(spec):
    import popglm as nmo

    _, _, (basis_name, basis_kwargs) = spec
    return getattr(nmo.basis, basis_name)(**basis_kwargs)


def build_features(spec, counts):
    return make_basis(spec).compute_features(counts)


def best_of(fit, min_total: float = 1.0, max_repeats: int = 30):
    """(result, best seconds, repeats) of ``fit()``, repeated until ``min_total`` seconds are spent
    or ``max_repeats`` runs are done, as timeit does: a fit of a millisecond timed once measures
    the machine's noise more than the fit. Every peer's timed fit goes through here."""
    times = []
    while True:
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
        if sum(times) >= min_total or len(times) >= max_repeats:
            return result, min(times), len(times)


def warm_up_popglm(spec, counts, n_rows: int = 2000, n_neurons: int = 4) -> None:
    """One small fit before the timed one, as NeMoS gets a warm (second) fit: it starts OpenMP's
    thread pool and loads the code, one-time costs of a process, not of a fit. A few neurons
    only: 2,000 rows of all of L's 800 features would make every neuron separable, and the fit
    spends minutes proving it."""
    import popglm as nmo

    head = np.asarray(counts[:n_rows, :n_neurons], dtype=np.float64)
    nmo.glm.PopulationGLM().fit(make_basis(spec).compute_features(head), head)


def feature_blocks(spec, counts, block_rows: int = 20_000):
    """(first_row, X rows first_row..) blocks of compute_features(counts), skipping the NaN rows,
    without forming the whole matrix: each block convolves only the counts it needs."""
    basis = make_basis(spec)
    window = basis.window_size
    for start in range(window, counts.shape[0], block_rows):
        stop = min(start + block_rows, counts.shape[0])
        yield start, basis.compute_features(counts[start - window : stop])[window:]


def kernel_rates(X, n_neurons: int) -> dict:
    """GFLOP/s of popglm's two dense kernels on this case's design, timed in isolation: the
    Hessian (weighted Gram by rank updates, float64 and float32) and the product that forms
    every neuron's step at once (X @ D, D with one column per neuron)."""
    from popglm._native import core

    rows = np.flatnonzero(np.isfinite(X).all(axis=1)).astype(np.int64)
    weights = np.random.default_rng(0).uniform(0.01, 0.1, rows.size)
    q = X.shape[1] + 1
    rates = {}
    # One Hessian is serial (the fit runs one per core, for different neurons): time one per core
    # at once, as in a fit, so the rate is comparable with the all-core DGEMM.
    n_cores = os.cpu_count() or 1
    for name, single in (("hessian_f64", False), ("hessian_f32", True)):
        core.weighted_gram(X, rows[:4096], weights[:4096], single)  # warm up
        with ThreadPoolExecutor(n_cores) as pool:
            start = time.perf_counter()
            jobs = [
                pool.submit(core.weighted_gram, X, rows, weights, single) for _ in range(n_cores)
            ]
            for job in jobs:
                job.result()
            seconds = time.perf_counter() - start
        # the lower triangle: n * q * (q + 1) / 2 multiply-adds per Hessian
        rates[name] = n_cores * rows.size * q * (q + 1) / seconds / 1e9
    coefs = np.asfortranarray(np.random.default_rng(1).normal(size=(X.shape[1], n_neurons)))
    out = np.empty((rows.size, n_neurons), order="F")
    offsets = np.zeros(n_neurons)
    residual = np.asfortranarray(np.random.default_rng(2).normal(size=(rows.size, n_neurons)))
    n_threads = os.cpu_count() or 1
    products = {
        "product": lambda: core.design_multiply(X, rows, coefs, offsets, out, n_threads),
        "gradient_product": lambda: core.design_transpose_multiply(X, rows, residual, n_threads),
    }
    for name, product in products.items():
        # Best of three after a first call (which page-faults its output in), as for the Hessians.
        product()
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            product()
            seconds.append(time.perf_counter() - start)
        rates[name] = 2 * rows.size * X.shape[1] * n_neurons / min(seconds) / 1e9
    return rates


# ---------------------------------------------------------------------------------------------
# peers (each runs in a worker subprocess)
# ---------------------------------------------------------------------------------------------
def valid_rows(X, y):
    return np.isfinite(X).all(axis=1) & np.isfinite(y).all(axis=1)


def per_neuron(fit_one, X, y, neurons, budget):
    """Fit neurons one by one until done or the budget is spent; returns the fitted subset."""
    keep = valid_rows(X, y)
    Xv, yv = X[keep], y[keep]
    coef = np.full((X.shape[1], len(neurons)), np.nan)
    intercept = np.full(len(neurons), np.nan)
    start = time.perf_counter()
    done = 0
    for k, j in enumerate(neurons):
        coef[:, k], intercept[k] = fit_one(Xv, yv[:, j])
        done = k + 1
        elapsed = time.perf_counter() - start
        if elapsed / done * len(neurons) > budget and done < len(neurons):
            break
    return coef[:, :done], intercept[:done], done, time.perf_counter() - start


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: reset at exec, unlike ru_maxrss after fork)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_peer(case: str, peer: str, spec, data_path: str, budget: float) -> dict:
    data = np.load(data_path)
    counts = data["counts"]
    n_neurons = counts.shape[1]
    record: dict = {"peer": peer}
    if peer == "nemos":
        import jax

        jax.config.update("jax_enable_x64", True)
        import nemos

        _, _, (basis_name, basis_kwargs) = spec
        basis = getattr(nemos.basis, basis_name)(**basis_kwargs)
        t0 = time.perf_counter()
        X = np.asarray(basis.compute_features(counts))
        record["features_cold_s"] = time.perf_counter() - t0
        _, record["features_s"], _ = best_of(
            lambda: np.asarray(basis.compute_features(counts)), min_total=0.5
        )
        y = counts.astype(np.float64)
        settings = {}  # NeMoS's default solver, as a user runs it
        t0 = time.perf_counter()
        model = nemos.glm.PopulationGLM().fit(X, y)
        if not np.isfinite(np.asarray(model.coef_)).all():
            # What a user does when the default returns NaN: NeMoS's LBFGS.
            settings = {"solver_name": "LBFGS"}
            record["solver"] = "LBFGS (default solver returned NaN)"
            t0 = time.perf_counter()
            model = nemos.glm.PopulationGLM(**settings).fit(X, y)
        np.asarray(model.coef_)
        record["fit_cold_s"] = time.perf_counter() - t0

        def fit_nemos():
            model = nemos.glm.PopulationGLM(**settings).fit(X, y)
            return np.asarray(model.coef_), np.asarray(model.intercept_)

        (coef, intercept), record["fit_s"], record["fit_repeats"] = best_of(fit_nemos)
        record["neurons_fitted"] = n_neurons
    elif peer == "popglm" and case in HISTORY_ONLY_CASES:
        import popglm as nmo
        from popglm._native import core

        # The counts are both the history source and the targets: one float64 copy serves both.
        y = np.asfortranarray(counts, dtype=np.float64)
        del counts, data
        warm_up_popglm(spec, y)
        t0 = time.perf_counter()
        features = make_basis(spec).history_features(y)
        record["features_s"] = time.perf_counter() - t0
        model, record["fit_s"], record["fit_repeats"] = best_of(
            lambda: nmo.glm.PopulationGLM().fit(features, y)
        )
        coef, intercept = model.coef_, model.intercept_
        record.update(
            neurons_fitted=n_neurons, newton_iterations=int(model.n_iter_.sum()),
            hessians=int(model.fit_info_["n_hessian"].sum()), isa=core.active_isa(),
            design="history_features (not formed)",
        )  # fmt: skip
    else:
        import popglm  # noqa: F401  (import time is not feature time)

        # Warm timing, as for NeMoS above: calls after the first, which touched the pages.
        build_features(spec, counts)
        X, record["features_s"], _ = best_of(lambda: build_features(spec, counts), min_total=0.5)
        y = counts.astype(np.float64)
        if peer == "popglm":
            import popglm as nmo
            from popglm._native import core

            warm_up_popglm(spec, y)
            model, record["fit_s"], record["fit_repeats"] = best_of(
                lambda: nmo.glm.PopulationGLM().fit(X, y)
            )
            coef, intercept = model.coef_, model.intercept_
            record["neurons_fitted"] = n_neurons
            record["newton_iterations"] = int(model.n_iter_.sum())
            record["hessians"] = int(model.fit_info_["n_hessian"].sum())
            reasons = list(model.fit_info_["reason"])
            record["reasons"] = {reason: reasons.count(reason) for reason in sorted(set(reasons))}
            record["isa"] = core.active_isa()
            record["peak_rss_mb"] = peak_rss_mb()  # before the kernel timings below
            record.update({f"{k}_gflops": v for k, v in kernel_rates(X, n_neurons).items()})
        elif peer == "sklearn":
            from sklearn.linear_model import PoissonRegressor

            def fit_one(Xv, yj):
                m = PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-8, max_iter=1000)
                m.fit(Xv, yj)
                return m.coef_, m.intercept_

        elif peer == "statsmodels":
            import statsmodels.api as sm

            def fit_one(Xv, yj):
                design = np.column_stack([np.ones(len(yj)), Xv])
                params = sm.GLM(yj, design, family=sm.families.Poisson()).fit().params
                return params[1:], params[0]

        elif peer == "glum":
            from glum import GeneralizedLinearRegressor

            def fit_one(Xv, yj):
                m = GeneralizedLinearRegressor(family="poisson", alpha=0.0, gradient_tol=1e-8)
                m.fit(Xv, yj)
                return m.coef_, m.intercept_

        else:
            raise ValueError(peer)
        if peer != "popglm":
            (coef, intercept, done, _), seconds, repeats = best_of(
                lambda: per_neuron(fit_one, X, y, range(n_neurons), budget)
            )
            record.update(fit_s=seconds, neurons_fitted=done, fit_repeats=repeats)
    record.setdefault("peak_rss_mb", peak_rss_mb())
    out = pathlib.Path(data_path).with_name(f"{pathlib.Path(data_path).stem}.{peer}.npz")
    np.savez(
        out,
        coef=np.asarray(coef, dtype=np.float64),
        intercept=np.asarray(intercept, dtype=np.float64),
    )
    record["answer"] = str(out)
    return record


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def quality(spec, counts, coef, intercept, truth=None) -> dict:
    """Mean objective and max |gradient| over the fitted neurons, computed the same way for all
    peers, in float64 NumPy, from blocks of compute_features(counts) (every row after the first
    window is valid: the counts are finite)."""
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        return {"objective": float("nan"), "max_gradient": float("nan")}
    n_fitted = coef.shape[1]
    objective = np.zeros(n_fitted)
    gradient = np.zeros((coef.shape[0] + 1, n_fitted))
    n_rows = 0
    for start, X in feature_blocks(spec, counts):
        y = counts[start : start + len(X), :n_fitted].astype(np.float64)
        eta = X @ coef + intercept
        mu = np.exp(eta)
        objective += (mu - y * eta).sum(axis=0)
        residual = mu - y
        gradient[0] += residual.sum(axis=0)
        gradient[1:] += X.T @ residual
        n_rows += len(X)
    result = {
        "objective": float((objective / n_rows).mean()),
        "max_gradient": float(np.abs(gradient / n_rows).max()),
    }
    if truth is not None:
        true_coef = truth[:, : coef.shape[1]]
        result["coef_rmse_vs_truth"] = float(np.sqrt(np.mean((coef - true_coef) ** 2)))
    return result


def measure_dgemm(size: int = 2000, repeats: int = 5) -> float:
    a = np.random.default_rng(0).random((size, size))
    b = a.T.copy()
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * size**3 / (time.perf_counter() - start) / 1e9


def available(peer: str) -> bool:
    module = {
        "popglm": "popglm",
        "nemos": "nemos",
        "sklearn": "sklearn",
        "statsmodels": "statsmodels",
        "glum": "glum",
    }[peer]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--peers", nargs="*", default=PEERS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds per peer and case")
    parser.add_argument(
        "--worker", nargs=3, metavar=("CASE", "PEER", "DATA"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    if args.worker:
        case, peer, data = args.worker
        print(json.dumps(run_peer(case, peer, cases[case], data, args.budget)))
        return

    names = args.cases or list(cases)
    peers = [p for p in args.peers if available(p)]
    missing = sorted(set(args.peers) - set(peers))
    dgemm = measure_dgemm()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "python": platform.python_version(),
        "dgemm_gflops": dgemm,
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "missing_peers": missing,
    }
    print(
        f"# {meta['date']}  DGEMM {dgemm:.1f} GFLOP/s  peers {peers}  (missing: {missing})",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="popglm-bench-") as tmp:
        cache = pathlib.Path(tmp)
        for name in names:
            spec = cases[name]
            data_path = make_case(name, spec, cache)
            if data_path is None:
                print(f"## {name}: skipped ({REAL_DATA} not found)", flush=True)
                continue
            data = np.load(data_path)
            counts = data["counts"]
            truth = data["true_coef"] if "true_coef" in data else None
            n_features = counts.shape[1] * make_basis(spec).n_basis_funcs
            for peer in peers:
                if name in HISTORY_ONLY_CASES and peer != "popglm":
                    rows.append({"peer": peer, "case": name, "skipped": "needs the dense design"})
                    continue
                proc = subprocess.run(
                    [sys.executable, __file__, "--budget", str(args.budget), *(["--quick"] if args.quick else []),
                     "--worker", name, peer, str(data_path)],
                    capture_output=True, text=True,
                )  # fmt: skip
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    record = {"peer": peer, "error": tail}
                else:
                    record = json.loads(proc.stdout.strip().splitlines()[-1])
                    answer = np.load(record.pop("answer"))
                    record.update(quality(spec, counts, answer["coef"], answer["intercept"], truth))
                    fitted = record["neurons_fitted"]
                    record["fit_s_all_neurons"] = record["fit_s"] * counts.shape[1] / fitted
                    record["extrapolated"] = fitted < counts.shape[1]
                record.update(
                    case=name,
                    n_samples=counts.shape[0],
                    n_neurons=counts.shape[1],
                    n_features=n_features,
                )
                rows.append(record)
                print(json.dumps(record), flush=True)
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (results_dir / f"{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(markdown(meta, rows))


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"Run {meta['date']} on {meta['machine']}, Python {meta['python']}; "
        f"numpy DGEMM {meta['dgemm_gflops']:.1f} GFLOP/s in the same run.",
        f"Command: `{meta['command']}`",
        "",
        "| case | peer | fit s (all neurons) | vs popglm | features s | peak RSS MB | objective | max grad | coef RMSE vs truth | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ours = {r["case"]: r for r in rows if r["peer"] == "popglm" and "fit_s" in r}
    kernel_lines = []
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {r['peer']} | not run | | | | | | | {r['skipped']} |")
            continue
        if "product_gflops" in r:
            dgemm = meta["dgemm_gflops"]
            kernels = ("hessian_f64", "hessian_f32", "product", "gradient_product")
            cells = [
                f"{r[k + '_gflops']:.1f} ({100 * r[k + '_gflops'] / dgemm:.0f}%)" for k in kernels
            ]
            kernel_lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
        if "error" in r:
            lines.append(f"| {r['case']} | {r['peer']} | failed | | | | | | | {r['error'][:80]} |")
            continue
        base = ours.get(r["case"])
        ratio = f"{r['fit_s_all_neurons'] / base['fit_s']:.1f}x" if base else ""
        note = []
        if r.get("extrapolated"):
            note.append(f"{r['neurons_fitted']} of {r['n_neurons']} neurons, extrapolated")
        if r.get("fit_repeats", 1) > 1:
            note.append(f"best of {r['fit_repeats']}")
        if "fit_cold_s" in r:
            note.append(
                f"cold fit {r['fit_cold_s']:.2f} s (JIT), features cold {r['features_cold_s']:.2f} s"
            )
        if "newton_iterations" in r:
            note.append(
                f"{r['newton_iterations']} Newton its, {r['hessians']} Hessians, {r['isa']}"
            )
        if "design" in r:
            note.append(r["design"])
        if "solver" in r:
            note.append(r["solver"])
        if set(r.get("reasons", {})) - {"converged"}:
            note.append(", ".join(f"{n} {reason}" for reason, n in r["reasons"].items()))
        rmse = r.get("coef_rmse_vs_truth")
        lines.append(
            f"| {r['case']} | {r['peer']} | {r['fit_s_all_neurons']:.3g} | {ratio} | {r['features_s']:.3g} | "
            f"{r['peak_rss_mb']:.0f} | {r['objective']:.10g} | {r['max_gradient']:.1e} | "
            f"{'' if rmse is None else f'{rmse:.3g}'} | {'; '.join(note)} |"
        )
    if kernel_lines:
        lines += [
            "",
            f"popglm's dense kernels timed alone on each case's design (GFLOP/s, % of the same run's "
            f"DGEMM {meta['dgemm_gflops']:.1f}):",
            "",
            "| case | Hessian float64 | Hessian float32 | step product X @ D | gradient product X^T R |",
            "|---|---|---|---|---|",
            *kernel_lines,
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
