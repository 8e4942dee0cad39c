"""Regularisation paths: popglm's ``fit_path`` against adelie and glum, on one objective.

Every peer minimises, per neuron, the mean Poisson negative log-likelihood (exp link, with an
intercept that is never penalised) plus ``strength * penalty(coef)``:

- Lasso: ``penalty = sum_j |coef_j|``. popglm ``PopulationGLM(regularizer="Lasso")`` with
  ``regularizer_strength = strength``; adelie ``grpnet(glm=glm.poisson(y), groups=one per
  feature, penalty=1, lmda_path=strengths)`` (adelie's loss is a mean: its weights sum to 1);
  glum ``GeneralizedLinearRegressor(family="poisson", l1_ratio=1, alphas=strengths,
  alpha_search=True)`` (glum's loss is half the mean deviance, the same up to a constant).
- GroupLasso, one group per sender (its ``n_basis_funcs`` features):
  ``penalty = sum_g sqrt(p_g) ||coef_g||_2``. popglm ``GroupLasso(mask)``; adelie ``grpnet``
  with the sender groups and its default penalty factors ``sqrt(p_g)``; glum has no group
  penalty.

The path: ``n_strengths`` strengths log-spaced from the smallest one at which every coefficient
of every neuron is zero (computed from the intercept-only fits) down to 1e-3 of it. Each peer
solves the whole path for every neuron, warm-starting along it; popglm fits all neurons at once,
adelie and glum one neuron at a time (their design matrix object is built once). The harness
then evaluates every peer's answers with the same code: the objective and the largest violation
of the optimality conditions (the minimum-norm subgradient's largest entry, the intercept's
gradient included), max over neurons and strengths. Tolerances: popglm its default (1e-8 on
that violation), adelie and glum their defaults (what their users get), and adelie again at
``tol=1e-12, irls_tol=1e-12``.

Cases: "S" (20 simulated neurons, 20,000 bins, ``RaisedCosineLogConv(6, 50)``, 120 features, as
in bench/run.py) and "M50" (50 neurons, 50,000 bins, 300 features).

Usage: ``python bench/paths.py [--cases S M50] [--penalties Lasso GroupLasso] [--peers ...]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import warnings

import numpy as np

CASES = {"S": (20_000, 20), "M50": (50_000, 50)}
N_BASIS, WINDOW = 6, 50
PEERS = ["popglm", "adelie", "adelie-tight", "glum"]
# Read before adelie is imported: importing it pins the process to one core (see timed()).
CORES = len(os.sched_getaffinity(0))


def make_case(name: str):
    import popglm as nmo
    from popglm.simulation import random_coupled_network, simulate_counts

    n_samples, n_neurons = CASES[name]
    basis = nmo.basis.RaisedCosineLogConv(N_BASIS, window_size=WINDOW)
    network = random_coupled_network(
        basis, n_neurons, spike_probability=(0.01, 0.1), connection_probability=0.1,
        refractory_strength=1.5, seed=len(name) * 1000 + n_neurons,
    )  # fmt: skip
    counts = simulate_counts(network, n_samples, burst_probability=2e-4, seed=n_samples)
    X = basis.compute_features(counts)
    valid = np.all(np.isfinite(X), axis=1)
    return np.asfortranarray(X[valid]), np.asfortranarray(counts[valid].astype(np.float64))


def sender_groups(n_features: int) -> np.ndarray:
    """Start column of each sender's group of N_BASIS features."""
    return np.arange(0, n_features, N_BASIS)


def zero_strength(X, Y, penalty: str) -> float:
    """The smallest strength at which every neuron's coefficients are all zero."""
    gradient = X.T @ (Y - Y.mean(axis=0)) / X.shape[0]
    if penalty == "Lasso":
        return float(np.abs(gradient).max())
    starts = sender_groups(X.shape[1])
    norms = [np.linalg.norm(gradient[s : s + N_BASIS], axis=0) / np.sqrt(N_BASIS) for s in starts]
    return float(np.max(norms))


def violation(X, y, coef, intercept, strength, penalty) -> float:
    """Largest entry of the minimum-norm subgradient of one neuron's objective."""
    eta = intercept + X @ coef
    residual = np.exp(eta) - y
    worst = abs(residual.mean())
    gradient = X.T @ residual / X.shape[0]
    if penalty == "Lasso":
        nonzero = coef != 0
        worst = max(worst, np.max(np.abs(gradient + strength * np.sign(coef))[nonzero], initial=0))
        return max(worst, np.max((np.abs(gradient) - strength)[~nonzero], initial=0))
    weight = strength * np.sqrt(N_BASIS)
    for s in sender_groups(X.shape[1]):
        g, b = gradient[s : s + N_BASIS], coef[s : s + N_BASIS]
        norm = np.linalg.norm(b)
        if norm > 0:
            entries = g + weight * b / norm
        else:
            entries = g * max(1 - weight / max(np.linalg.norm(g), 1e-300), 0)
        worst = max(worst, np.abs(entries).max())
    return worst


def objective(X, y, coef, intercept, strength, penalty) -> float:
    eta = intercept + X @ coef
    loss = np.mean(np.exp(eta) - y * eta)
    if penalty == "Lasso":
        return loss + strength * np.abs(coef).sum()
    norms = [np.linalg.norm(coef[s : s + N_BASIS]) for s in sender_groups(X.shape[1])]
    return loss + strength * np.sqrt(N_BASIS) * float(np.sum(norms))


def run_popglm(X, Y, strengths, penalty):
    import popglm as nmo

    if penalty == "Lasso":
        regularizer = "Lasso"
    else:
        mask = np.zeros((X.shape[1] // N_BASIS, X.shape[1]))
        for g, s in enumerate(sender_groups(X.shape[1])):
            mask[g, s : s + N_BASIS] = 1
        regularizer = nmo.regularizer.GroupLasso(mask)
    model = nmo.glm.PopulationGLM(regularizer=regularizer, regularizer_strength=strengths[0])
    path = model.fit_path(X, Y, strengths)
    return path["coef"], path["intercept"]  # (L, P, N), (L, N)


def run_adelie(X, Y, strengths, penalty, tight=False):
    import adelie as ad

    matrix = ad.matrix.dense(np.asfortranarray(X), method="naive", n_threads=CORES)
    groups = np.arange(X.shape[1]) if penalty == "Lasso" else sender_groups(X.shape[1])
    extra = {"tol": 1e-12, "irls_tol": 1e-12} if tight else {}
    coef = np.zeros((strengths.size, X.shape[1], Y.shape[1]))
    intercept = np.zeros((strengths.size, Y.shape[1]))
    for j in range(Y.shape[1]):
        state = ad.grpnet(
            X=matrix, glm=ad.glm.poisson(y=np.ascontiguousarray(Y[:, j])), groups=groups,
            lmda_path=strengths, early_exit=False, progress_bar=False, n_threads=CORES, **extra,
        )  # fmt: skip
        if state.lmdas.size != strengths.size:
            raise RuntimeError(f"adelie solved {state.lmdas.size} of {strengths.size} strengths")
        coef[:, :, j] = state.betas.toarray()
        intercept[:, j] = state.intercepts
    return coef, intercept


def run_glum(X, Y, strengths, penalty):
    from glum import GeneralizedLinearRegressor

    if penalty != "Lasso":
        return None
    coef = np.zeros((strengths.size, X.shape[1], Y.shape[1]))
    intercept = np.zeros((strengths.size, Y.shape[1]))
    for j in range(Y.shape[1]):
        model = GeneralizedLinearRegressor(
            family="poisson", l1_ratio=1.0, alphas=strengths, alpha_search=True
        ).fit(X, Y[:, j])
        coef[:, :, j] = np.asarray(model.coef_path_)
        intercept[:, j] = np.asarray(model.intercept_path_)
    return coef, intercept


RUNNERS = {
    "popglm": run_popglm,
    "adelie": run_adelie,
    "adelie-tight": lambda *a: run_adelie(*a, tight=True),
    "glum": run_glum,
}


def timed(case: str, penalty: str, peer: str, n_strengths: int):
    """One peer's path, in a process of its own: adelie binds the process that imports it to one
    core (it sets OMP_PROC_BIND=TRUE for its OpenMP runtime), which would leave every peer run
    after it in that process on a single core."""
    warnings.simplefilter("ignore")
    X, Y = make_case(case)
    strengths = zero_strength(X, Y, penalty) * np.logspace(0, -3, n_strengths)
    if RUNNERS[peer](X[:2000], Y[:2000, :2], strengths[:3], penalty) is None:  # warm-up
        return None
    start = time.perf_counter()
    coef, intercept = RUNNERS[peer](X, Y, strengths, penalty)
    return time.perf_counter() - start, coef, intercept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="*", default=["S"])
    parser.add_argument("--penalties", nargs="*", default=["Lasso", "GroupLasso"])
    parser.add_argument("--peers", nargs="*", default=PEERS)
    parser.add_argument("--n-strengths", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {CORES} cores  "
          f"python bench/paths.py --cases {' '.join(args.cases)} --penalties "
          f"{' '.join(args.penalties)} --peers {' '.join(args.peers)}", flush=True)  # fmt: skip
    print("| case | penalty | peer | path s | vs popglm | max violation | worst objective gap |")
    print("|---|---|---|---|---|---|---|")
    context = multiprocessing.get_context("spawn")
    for case in args.cases:
        X, Y = make_case(case)
        for penalty in args.penalties:
            strengths = zero_strength(X, Y, penalty) * np.logspace(0, -3, args.n_strengths)
            results = {}
            for peer in args.peers:
                with context.Pool(1) as pool:
                    answer = pool.apply(timed, (case, penalty, peer, args.n_strengths))
                if answer is not None:
                    results[peer] = answer
            objectives = {
                peer: np.array([
                    [objective(X, Y[:, j], c[k, :, j], b[k, j], s, penalty)
                     for j in range(Y.shape[1])] for k, s in enumerate(strengths)
                ]) for peer, (_, c, b) in results.items()
            }  # fmt: skip
            best = np.min(np.stack(list(objectives.values())), axis=0)
            for peer, (seconds, c, b) in results.items():
                worst = max(
                    violation(X, Y[:, j], c[k, :, j], b[k, j], s, penalty)
                    for k, s in enumerate(strengths) for j in range(Y.shape[1])
                )  # fmt: skip
                gap = np.max((objectives[peer] - best) / np.abs(best))
                ratio = seconds / results["popglm"][0] if "popglm" in results else float("nan")
                print(f"| {case} | {penalty} | {peer} | {seconds:.2f} | {ratio:.2f}x | "
                      f"{worst:.1e} | {gap:.1e} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
