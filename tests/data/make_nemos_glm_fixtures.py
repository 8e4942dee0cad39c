"""Generate NeMoS references for the GLM API: Ridge fits, scores, dof (run once, by hand).

    /tmp/nemos-venv/bin/pip install nemos==0.2.8
    /tmp/nemos-venv/bin/python tests/data/make_nemos_glm_fixtures.py

Writes tests/data/nemos_glm_fixtures.npz. NeMoS runs in float64 (jax_enable_x64) with LBFGS at
tol=1e-12 so that its Ridge answers are the exact penalised optima, to compare with popglm's
Newton answers. The data are the how-to's: np.random.seed(42); poisson(size=(100, 4)), features
HistoryConv(10).
"""

from __future__ import annotations

import pathlib
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import nemos as nmo  # noqa: E402
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    np.random.seed(42)
    counts = np.random.poisson(size=(100, 4)).astype(np.float64)
    X = np.asarray(nmo.basis.HistoryConv(10).compute_features(counts))
    out: dict[str, np.ndarray] = {"counts": counts, "X": X}
    tight = {"tol": 1e-12, "maxiter": 100000}
    for name, strength in (("ridge", 0.1), ("ridge_strong", 2.0)):
        model = nmo.glm.PopulationGLM(
            regularizer="Ridge",
            regularizer_strength=strength,
            solver_name="LBFGS",
            solver_kwargs=tight,
        ).fit(X, counts)
        out[f"{name}_strength"] = np.array(strength)
        out[f"{name}_coef"] = np.asarray(model.coef_)
        out[f"{name}_intercept"] = np.asarray(model.intercept_)
        out[f"{name}_dof"] = np.asarray(model.dof_resid_)
    # Per-coefficient strengths: 0.05 on self-history rows, 0.5 elsewhere.
    strength = np.full((40, 4), 0.5)
    for j in range(4):
        strength[10 * j : 10 * (j + 1), j] = 0.05
    model = nmo.glm.PopulationGLM(
        regularizer="Ridge",
        regularizer_strength=strength,
        solver_name="LBFGS",
        solver_kwargs=tight,
    ).fit(X, counts)
    out["ridge_array_strength"] = strength
    out["ridge_array_coef"] = np.asarray(model.coef_)
    out["ridge_array_intercept"] = np.asarray(model.intercept_)
    # Non-smooth penalties, solved by NeMoS's ProximalGradient to a tight tolerance.
    # NeMoS 0.2.8's population layout (n_groups, n_features, n_neurons): one group per
    # (sender, receiver) coupling filter.
    group_mask = np.zeros((16, 40, 4))
    for sender in range(4):
        for receiver in range(4):
            group_mask[4 * sender + receiver, 10 * sender : 10 * (sender + 1), receiver] = 1
    sparse_cases = {
        "lasso": ("Lasso", 0.02),
        "elasticnet": ("ElasticNet", (0.03, 0.7)),
        "grouplasso": (nmo.regularizer.GroupLasso(mask=group_mask), 0.02),
        "grouplasso_sparse": (nmo.regularizer.GroupLasso(mask=group_mask), 0.12),
    }
    for name, (regularizer, strength) in sparse_cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = nmo.glm.PopulationGLM(
                regularizer=regularizer,
                regularizer_strength=strength,
                solver_name="ProximalGradient",
                solver_kwargs=tight,
            ).fit(X, counts)
        for warning in caught:
            print(name, "NeMoS warned:", str(warning.message).splitlines()[0])
        out[f"{name}_coef"] = np.asarray(model.coef_)
        out[f"{name}_intercept"] = np.asarray(model.intercept_)
        out[f"{name}_dof"] = np.asarray(model.dof_resid_)
    out["group_mask"] = group_mask
    # Single-neuron GroupLasso with a 2-D mask (one group per sender).
    single_mask = np.zeros((4, 40))
    for sender in range(4):
        single_mask[sender, 10 * sender : 10 * (sender + 1)] = 1
    model = nmo.glm.GLM(
        regularizer=nmo.regularizer.GroupLasso(mask=single_mask),
        regularizer_strength=0.03,
        solver_name="ProximalGradient",
        solver_kwargs=tight,
    ).fit(X, counts[:, 2])
    out["glm_grouplasso_coef"] = np.asarray(model.coef_)
    out["glm_grouplasso_intercept"] = np.asarray(model.intercept_)
    out["single_group_mask"] = single_mask
    # Single-neuron GLM with Ridge.
    model = nmo.glm.GLM(
        regularizer="Ridge", regularizer_strength=0.1, solver_name="LBFGS", solver_kwargs=tight
    ).fit(X, counts[:, 1])
    out["glm_ridge_coef"] = np.asarray(model.coef_)
    out["glm_ridge_intercept"] = np.asarray(model.intercept_)
    # Scores of an unregularised model at tight tolerance, on the training data and on new data.
    model = nmo.glm.PopulationGLM(solver_name="LBFGS", solver_kwargs=tight).fit(X, counts)
    out["mle_coef"] = np.asarray(model.coef_)
    out["mle_intercept"] = np.asarray(model.intercept_)
    out["mle_dof"] = np.asarray(model.dof_resid_)
    out["mle_scale"] = np.asarray(model.scale_)
    np.random.seed(7)
    test_counts = np.random.poisson(size=(100, 4)).astype(np.float64)
    test_X = np.asarray(nmo.basis.HistoryConv(10).compute_features(test_counts))
    out["test_counts"] = test_counts
    out["test_X"] = test_X
    for data, (Xs, ys) in (("train", (X, counts)), ("test", (test_X, test_counts))):
        for score_type in ("log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen"):
            key = f"score_{data}_{score_type}"
            out[key] = np.asarray(model.score(Xs, ys, score_type=score_type))
        out[f"score_{data}_loglik_sum"] = np.asarray(
            model.score(Xs, ys, aggregate_sample_scores=jax.numpy.sum)
        )
    family_fixtures(out)
    np.savez(HERE / "nemos_glm_fixtures.npz", **out)
    print("wrote", HERE / "nemos_glm_fixtures.npz", sorted(out))


def family_fixtures(out: dict) -> None:
    """Single-neuron GLMs of every observation model NeMoS offers, fitted tightly, and scores."""
    rng = np.random.default_rng(2026)
    X = rng.normal(size=(500, 4))
    U = rng.uniform(size=(500, 3))
    w = np.array([0.4, -0.3, 0.2, 0.1])
    eta = 0.2 + X @ w
    gamma_mean = 1.0 / (1.0 + U @ np.array([0.5, 0.3, 0.2]))
    cases = {
        "bernoulli": ("Bernoulli", None, X, (rng.uniform(size=500) < 1 / (1 + np.exp(-eta))) * 1.0),
        "gamma_inverse": ("Gamma", None, U, rng.gamma(2.0, gamma_mean / 2.0)),
        "gamma_exp": ("Gamma", jax.numpy.exp, X, rng.gamma(2.0, np.exp(eta) / 2.0)),
        "negbin": (
            nmo.observation_models.NegativeBinomialObservations(scale=0.5),
            None,
            X,
            rng.poisson(rng.gamma(2.0, np.exp(eta) / 2.0)) * 1.0,
        ),
        "gaussian": ("Gaussian", None, X, eta + 0.5 * rng.normal(size=500)),
        "poisson_softplus": (
            "Poisson",
            jax.nn.softplus,
            X,
            rng.poisson(np.log1p(np.exp(eta))) * 1.0,
        ),
    }
    tight = {"tol": 1e-12, "maxiter": 100000}
    for name, (observation, link, design, y) in cases.items():
        kwargs = {} if link is None else {"inverse_link_function": link}
        model = nmo.glm.GLM(
            observation_model=observation, solver_name="LBFGS", solver_kwargs=tight, **kwargs
        ).fit(design, y)
        out[f"family_{name}_X"] = design
        out[f"family_{name}_y"] = y
        out[f"family_{name}_coef"] = np.asarray(model.coef_)
        out[f"family_{name}_intercept"] = np.asarray(model.intercept_)
        out[f"family_{name}_scale"] = np.asarray(model.scale_)
        for score_type in ("log-likelihood", "pseudo-r2-McFadden", "pseudo-r2-Cohen"):
            out[f"family_{name}_{score_type}"] = np.asarray(
                model.score(design, y, score_type=score_type)
            )


if __name__ == "__main__":
    main()
