"""Generate the NeMoS reference fixtures used by the tests (run once, by hand).

    python -m venv /tmp/nemos-venv
    /tmp/nemos-venv/bin/pip install nemos==0.2.8
    /tmp/nemos-venv/bin/python tests/data/make_nemos_fixtures.py

Writes tests/data/nemos_basis_features.npz and tests/data/nemos_howto_fits.npz. NeMoS runs
with float64 enabled (jax_enable_x64), so its outputs are float64 references. The tests read
these files only; NeMoS and JAX are never needed to run them.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)

import nemos as nmo  # noqa: E402
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def basis_fixtures() -> None:
    rng = np.random.default_rng(20261125)
    # Spike-count-like input with bursts, plus a real-valued input, 3 columns in all.
    counts = rng.poisson(0.3, size=(150, 2)).astype(np.float64)
    counts[40:45, 0] += 4
    signal = rng.normal(size=(150, 1))
    inputs = np.concatenate([counts, signal], axis=1)
    arrays: dict[str, np.ndarray] = {"inputs": inputs}
    cases = []
    # window_size=1 is left out: NeMoS 0.2.8 raises for HistoryConv(1) (its evaluate squeezes the
    # one-point grid to a scalar); popglm returns the lag-1 feature.
    for window_size in (2, 3, 7, 10, 40):
        basis = nmo.basis.HistoryConv(window_size=window_size)
        key = f"case{len(cases)}"
        arrays[key + "_features"] = np.asarray(basis.compute_features(inputs))
        arrays[key + "_kernel"] = np.asarray(basis.evaluate_on_grid(window_size)[1])
        cases.append({"key": key, "class": "HistoryConv", "window_size": window_size})
    grid = itertools.product(
        (2, 3, 5, 8),  # n_basis_funcs
        (1, 3, 10, 50),  # window_size
        (1.5, 2.0, 3.0),  # width
        (None, 5.0),  # time_scaling
        (True, False),  # enforce_decay_to_zero
    )
    for n_basis_funcs, window_size, width, time_scaling, enforce in grid:
        kwargs = dict(
            n_basis_funcs=n_basis_funcs,
            window_size=window_size,
            width=width,
            time_scaling=time_scaling,
            enforce_decay_to_zero=enforce,
        )
        basis = nmo.basis.RaisedCosineLogConv(**kwargs)
        key = f"case{len(cases)}"
        arrays[key + "_kernel"] = np.asarray(basis.evaluate_on_grid(window_size)[1])
        # Features on a subset of the grid keep the file small; kernels cover all of it.
        # NeMoS refuses to convolve with a one-sample window, so window_size=1 has kernels only.
        if window_size >= 2 and (width == 2.0 or window_size == 10):
            arrays[key + "_features"] = np.asarray(basis.compute_features(inputs))
        cases.append({"key": key, "class": "RaisedCosineLogConv", **kwargs})
    arrays["cases_json"] = np.array(json.dumps(cases))
    np.savez_compressed(HERE / "nemos_basis_features.npz", **arrays)


def howto_fits() -> None:
    # The how-to's data, exactly as in the spec.
    np.random.seed(42)
    counts = np.random.poisson(size=(100, 4))
    basis = nmo.basis.HistoryConv(window_size=10, label="spike-history")
    X = np.asarray(basis.compute_features(counts))
    X2 = np.asarray(nmo.basis.RaisedCosineLogConv(3, window_size=3).compute_features(counts))
    mask = np.ones((4, 4))
    mask[0, 1] = 0
    mask[1, 0] = 0
    mask[2, 3] = 0
    mask = np.repeat(mask, basis.n_basis_funcs, axis=0)

    arrays: dict[str, np.ndarray] = {"counts": counts, "X": X, "X2": X2, "mask": mask}
    fits = {
        "default": dict(),
        # A tight run of NeMoS's own solver, to compare optima rather than stopping points.
        "tight": dict(solver_name="LBFGS", solver_kwargs={"tol": 1e-12, "maxiter": 20000}),
    }
    for name, kwargs in fits.items():
        model = nmo.glm.PopulationGLM(**kwargs).fit(X, counts)
        arrays[f"{name}_coef"], arrays[f"{name}_intercept"] = map(
            np.asarray, (model.coef_, model.intercept_)
        )
        masked = nmo.glm.PopulationGLM(feature_mask=mask, **kwargs).fit(X, counts)
        arrays[f"{name}_masked_coef"] = np.asarray(masked.coef_)
        arrays[f"{name}_masked_intercept"] = np.asarray(masked.intercept_)
        reduced = nmo.glm.PopulationGLM(**kwargs).fit(X2, counts)
        arrays[f"{name}_reduced_coef"] = np.asarray(reduced.coef_)
        arrays[f"{name}_reduced_intercept"] = np.asarray(reduced.intercept_)
    arrays["nemos_version"] = np.array(nmo.__version__)
    np.savez_compressed(HERE / "nemos_howto_fits.npz", **arrays)


if __name__ == "__main__":
    basis_fixtures()
    howto_fits()
    print("wrote fixtures with nemos", nmo.__version__, "python", sys.version.split()[0])
