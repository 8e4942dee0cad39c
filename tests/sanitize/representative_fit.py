"""A representative popglm session, small enough for valgrind: every C++ kernel runs once.

Used by `.ci/memcheck` (valgrind memcheck) and `.ci/sanitizers` (ASan + UBSan); see tests/README.md.
"""

from __future__ import annotations

import numpy as np

import popglm as nmo
from popglm.simulation import simulate_recurrent

rng = np.random.default_rng(0)
n_neurons, window = 4, 12
basis = nmo.basis.RaisedCosineLogConv(3, window_size=window)
coupling = rng.normal(0.0, 0.1, size=(n_neurons, n_neurons, 3))
coupling[np.arange(n_neurons), np.arange(n_neurons)] = -1.0
intercept = np.full(n_neurons, -2.0)
spikes, _ = simulate_recurrent(
    coupling_coef=coupling,
    feedforward_coef=np.zeros((n_neurons, 1)),
    intercepts=intercept,
    random_key=np.random.default_rng(1),
    feedforward_input=np.zeros((600, n_neurons, 1)),
    coupling_basis_matrix=basis.kernel_,
    init_y=np.zeros((window, n_neurons)),
)
counts = np.asarray(spikes, dtype=np.float64)

X = basis.compute_features(counts)
dense = nmo.glm.PopulationGLM(n_threads=2).fit(X, counts)
lazy = nmo.glm.PopulationGLM(n_threads=2).fit(basis.history_features(counts), counts)
ridge = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.01).fit(X, counts)
lasso = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=0.002).fit(X, counts)
bernoulli = nmo.glm.PopulationGLM(observation_model="Bernoulli").fit(X, np.minimum(counts, 1))
rate = dense.predict(X)
inference = dense.inference(X)
assert np.allclose(dense.coef_, lazy.coef_, atol=1e-8)
assert np.isfinite(rate[window:]).all() and np.isfinite(inference.coef_se).all()
assert np.isfinite(lasso.coef_).all() and np.isfinite(bernoulli.coef_).all()
print("representative fit: ok", dense.fit_info_["reason"].tolist())
