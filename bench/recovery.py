"""Ground-truth recovery of couplings: simulate a network with known sparse couplings, fit it,
test every sender -> receiver filter, and report sensitivity and false discovery rate.

    python bench/recovery.py            # prints a Markdown table for bench/RESULTS.md

Networks come from popglm.simulation.random_coupled_network (20 neurons, refractory
self-coupling, each directed pair coupled with probability 0.1, half excitatory and half
inhibitory); spikes from the C++ simulate_recurrent. The tests are popglm's Wald chi-square on
each filter's basis coefficients and the likelihood-ratio test by refits, both followed by
Benjamini-Hochberg at FDR 0.05 over the 380 off-diagonal pairs.
"""

from __future__ import annotations

import time

import numpy as np

import popglm as nmo
from popglm.inference import benjamini_hochberg, coupling_likelihood_ratio_test

N_NEURONS, N_BASIS, WINDOW = 20, 4, 20


def one_run(n_samples: int, coupling_strength: float, seed: int) -> dict:
    basis = nmo.basis.RaisedCosineLogConv(N_BASIS, window_size=WINDOW)
    network = nmo.simulation.random_coupled_network(
        basis, N_NEURONS, spike_probability=(0.02, 0.06), connection_probability=0.1,
        coupling_strength=coupling_strength, seed=seed,
    )  # fmt: skip
    coupling = nmo.simulation.coupling_coef_from_model(network.coef, N_BASIS)
    spikes, _ = nmo.simulation.simulate_recurrent(
        coupling, np.zeros((N_NEURONS, 1)), network.intercept, seed,
        np.zeros((n_samples, N_NEURONS, 1)), basis.kernel_, np.zeros((WINDOW, N_NEURONS)),
    )  # fmt: skip
    X = basis.compute_features(spikes)
    t0 = time.perf_counter()
    model = nmo.glm.PopulationGLM().fit(X, spikes)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, wald_p = model.inference(X).coupling_test(N_BASIS)
    wald_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, lr_p = coupling_likelihood_ratio_test(model, X, spikes, N_BASIS)
    lr_s = time.perf_counter() - t0
    off = ~np.eye(N_NEURONS, dtype=bool)
    truth = (np.abs(network.coef).reshape(N_NEURONS, N_BASIS, N_NEURONS).sum(axis=1) > 0) & off
    row = {"n_samples": n_samples, "strength": coupling_strength, "seed": seed,
           "true": int(truth.sum()), "fit_s": fit_s, "wald_s": wald_s, "lr_s": lr_s,
           "spikes_per_bin": float(spikes.mean())}  # fmt: skip
    for name, p in (("wald", wald_p), ("lr", lr_p)):
        found = benjamini_hochberg(np.where(off, p, np.nan), fdr=0.05)
        row[f"{name}_sensitivity"] = float((found & truth).sum() / truth.sum())
        row[f"{name}_fdr"] = float((found & ~truth).sum() / max(found.sum(), 1))
    return row


def main() -> None:
    print("| T bins | coupling gain | true couplings | mean spikes/bin | Wald: sensitivity | Wald: FDR "
          "| LR: sensitivity | LR: FDR | fit s | Wald s | LR s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n_samples, strength in ((10_000, 0.5), (10_000, 1.5), (60_000, 0.5), (60_000, 1.5)):
        for seed in (1, 2, 3):
            r = one_run(n_samples, strength, seed)
            print(f"| {n_samples} | {strength} | {r['true']} | {r['spikes_per_bin']:.3f} | "
                  f"{r['wald_sensitivity']:.2f} | {r['wald_fdr']:.3f} | {r['lr_sensitivity']:.2f} | "
                  f"{r['lr_fdr']:.3f} | {r['fit_s']:.2f} | {r['wald_s']:.2f} | {r['lr_s']:.2f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
