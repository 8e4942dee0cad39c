"""The private C++ layer, called directly: argument checks and the no-hidden-copy contract."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from popglm import _core
from popglm._native import LEVELS, runnable_levels, use_level


def test_convolve_requires_fortran_float64():
    x = np.ones((10, 2))  # C-ordered: the binding must refuse rather than copy silently
    kernels = np.asfortranarray(np.eye(3))
    out = np.empty((10, 6), order="F")
    with pytest.raises(TypeError):
        _core.convolve_history(x, kernels, out, 1)
    with pytest.raises(TypeError):
        _core.convolve_history(np.asfortranarray(x, dtype=np.float32), kernels, out, 1)
    with pytest.raises(TypeError):  # the output must be written in place, not into a copy
        _core.convolve_history(np.asfortranarray(x), kernels, np.empty((10, 6)), 1)


def test_convolve_checks_output_shape():
    x = np.asfortranarray(np.ones((10, 2)))
    kernels = np.asfortranarray(np.eye(3))
    with pytest.raises(ValueError, match="out must have shape"):
        _core.convolve_history(x, kernels, np.empty((10, 5), order="F"), 1)


def test_convolve_writes_in_place():
    x = np.asfortranarray(np.arange(8.0)[:, None])
    kernels = np.asfortranarray([[1.0], [10.0]])
    out = np.zeros((8, 1), order="F")
    _core.convolve_history(x, kernels, out, 2)
    assert np.isnan(out[:2]).all()
    # out[t] = x[t-1] + 10 x[t-2]
    np.testing.assert_array_equal(out[2:, 0], np.arange(1.0, 7.0) + 10 * np.arange(0.0, 6.0))


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_scan_design(order, n_threads):
    rng = np.random.default_rng(3)
    matrix = np.array(rng.normal(size=(9000, 3)) * [1e-30, 1.0, 1e200], order=order)
    matrix[5, 2] = np.nan
    matrix[8999, 0] = -np.inf
    matrix[7000, 1] = -1e300  # a finite entry of a row that stays valid
    out = np.empty(9000, dtype=np.uint8)
    max_abs = np.empty(3)
    _core.scan_design(matrix, out, max_abs, n_threads)
    assert out.sum() == 8998 and out[5] == 0 and out[8999] == 0
    finite = np.where(np.isfinite(matrix), np.abs(matrix), 0.0)
    np.testing.assert_array_equal(max_abs, finite.max(axis=0))


def fit_args(n_samples=50, n_features=3, n_neurons=2):
    rng = np.random.default_rng(0)
    design = np.asfortranarray(rng.normal(size=(n_samples, n_features)))
    counts = np.asfortranarray(rng.poisson(1.0, size=(n_samples, n_neurons)).astype(float))
    mask = np.ones((n_features, n_neurons), dtype=np.uint8, order="F")
    rows = np.arange(n_samples, dtype=np.int64)
    coef = np.zeros((n_features, n_neurons), order="F")
    intercept = np.zeros(n_neurons)
    status = np.empty(n_neurons, dtype=np.int32)
    n_iter = np.empty(n_neurons, dtype=np.int32)
    return [
        design,
        counts,
        mask,
        np.zeros((0, 0), order="F"),
        rows,
        coef,
        intercept,
        status,
        n_iter,
        np.empty(n_neurons),
        np.empty(n_neurons),
        np.empty(n_neurons, dtype=np.int32),
    ]


def fit_population(args, tol, max_iter, n_threads):
    """Run _core.fit_population on fit_args()'s list, writing its record into the list's
    status, n_iter, gradient_norm, objective and n_hessian arrays."""
    design, counts, mask, ridge, rows, coef, intercept = args[:7]
    options = _core.FitOptions(tol=tol, max_iter=max_iter, n_threads=n_threads)
    penalty = {"l2": ridge} if ridge.size else None
    record = _core.fit_population(design, counts, rows, mask, coef, intercept, options, penalty)
    for position, key in enumerate(("status", "n_iter", "gradient_norm", "objective", "n_hessian")):
        args[7 + position][:] = record[key]


def test_fit_rejects_out_of_range_rows():
    args = fit_args()
    args[4] = np.array([0, 1, 50], dtype=np.int64)
    with pytest.raises(ValueError, match="row index out of range"):
        fit_population(args, 1e-8, 100, 1)


def test_fit_rejects_wrong_mask_shape():
    args = fit_args()
    args[2] = np.ones((2, 2), dtype=np.uint8, order="F")
    with pytest.raises(ValueError, match="mask must have shape"):
        fit_population(args, 1e-8, 100, 1)


def test_fit_reports_status_codes():
    args = fit_args()
    fit_population(args, 1e-8, 100, 1)
    status, n_iter, gradient_norm = args[7], args[8], args[9]
    assert status.tolist() == [int(_core.FitStatus.converged)] * 2
    assert (n_iter > 0).all() and (gradient_norm <= 1e-8).all()


@pytest.mark.parametrize("level", ["x86-64-v3", "x86-64-v4"])
def test_isa_builds_agree(level):
    """The baseline kernels (any CPU), x86-64-v3's (AVX2/FMA) and x86-64-v4's (AVX-512) fit alike
    up to rounding."""
    if level not in runnable_levels():
        pytest.skip(f"this CPU cannot run the {level} kernels")
    results = []
    for build in ("baseline", level):
        with use_level(build):
            assert _core.active_isa() == build
            args = fit_args(n_samples=400, n_features=6, n_neurons=3)
            fit_population(args, 1e-8, 100, 2)
        results.append((args[5], args[6]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-9, atol=1e-12)


def test_x86_64_builds_exist_and_this_cpu_runs_one():
    """On x86-64 both kernel modules are built (a build that silently dropped them would pass
    every other test on the baseline kernels)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86-64-v3/v4 kernel modules are built on x86-64 only")
    for suffix in ("v3", "v4"):
        assert importlib.util.find_spec(f"popglm._kernels_{suffix}") is not None
    expected = ["baseline"]
    expected += ["x86-64-v3"] if _core.cpu_supports_x86_64_v3() else []
    expected += ["x86-64-v4"] if _core.cpu_supports_x86_64_v4() else []
    assert runnable_levels() == expected


def test_package_uses_the_fastest_supported_build():
    code = "from popglm._native import core; print(core.active_isa())"
    env = {key: value for key, value in os.environ.items() if key != "POPGLM_ISA"}
    chosen = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert chosen == runnable_levels()[-1]


@pytest.mark.parametrize("cap", ["baseline", "x86-64-v3", "x86-64-v4"])
def test_popglm_isa_caps_the_build(cap):
    code = "from popglm._native import core; print(core.active_isa())"
    env = {**os.environ, "POPGLM_ISA": cap}
    chosen = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    allowed = [level for level in runnable_levels() if LEVELS.index(level) <= LEVELS.index(cap)]
    assert chosen == allowed[-1]


def test_popglm_isa_rejects_unknown_levels():
    env = {**os.environ, "POPGLM_ISA": "avx9000"}
    result = subprocess.run(
        [sys.executable, "-c", "import popglm"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "POPGLM_ISA must be one of" in result.stderr


_SPIN_PROBE = (
    "import os; seen = os.environ.get('GOMP_SPINCOUNT'); import popglm; "
    "print(seen, os.environ.get('GOMP_SPINCOUNT'))"
)


def _without_openmp_settings():
    drop = {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "POPGLM_SPIN_COUNT"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def test_the_spin_count_for_popglms_runtime_leaves_the_environment_as_it_was():
    # popglm loads its OpenMP runtime with GOMP_SPINCOUNT set, then removes it again.
    result = subprocess.run(
        [sys.executable, "-c", _SPIN_PROBE], env=_without_openmp_settings(),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["None", "None"]


@pytest.mark.parametrize("name", ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"])
def test_a_users_own_openmp_wait_setting_is_kept(name):
    env = {**_without_openmp_settings(), name: "passive" if name == "OMP_WAIT_POLICY" else "7"}
    code = f"import os, popglm; print(os.environ['{name}'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == env[name]


@pytest.mark.parametrize("value", ["-1", "many", "1e4"])
def test_popglm_spin_count_must_be_a_count(value):
    env = {**_without_openmp_settings(), "POPGLM_SPIN_COUNT": value}
    result = subprocess.run(
        [sys.executable, "-c", "import popglm"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "POPGLM_SPIN_COUNT must be a non-negative integer" in (
        result.stderr
    )


def test_use_kernels_refuses_other_capsules():
    with pytest.raises(TypeError, match="kernel module"):
        _core.use_kernels(object())
    import ctypes

    capsule = ctypes.pythonapi.PyCapsule_New
    capsule.restype, capsule.argtypes = (
        ctypes.py_object,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p],
    )
    with pytest.raises(TypeError, match="kernel module"):
        _core.use_kernels(capsule(ctypes.addressof(ctypes.c_int(0)), b"other.name", None))


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("single_precision", [False, True])
def test_weighted_gram_matches_numpy(order, single_precision):
    rng = np.random.default_rng(3)
    X = np.asarray(rng.normal(size=(5000, 7)), order=order)
    rows = np.sort(rng.choice(5000, size=3000, replace=False)).astype(np.int64)
    weights = rng.uniform(0.0, 2.0, size=rows.size)
    A = np.column_stack([np.ones(rows.size), X[rows]])
    expected = (A * weights[:, None]).T @ A
    gram = _core.weighted_gram(X, rows, weights, single_precision)
    np.testing.assert_allclose(gram, gram.T, rtol=0, atol=0)  # exactly symmetric
    if single_precision:
        # Float32 products err relative to the scale of the terms summed, not to an entry that
        # cancels: by Cauchy-Schwarz that scale is at most sqrt(G_ii G_jj). Observed ~1e-8.
        scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
        assert np.all(np.abs(gram - expected) <= 1e-6 * scale)
    else:
        np.testing.assert_allclose(gram, expected, rtol=1e-12)


def test_weighted_gram_rejects_bad_rows():
    X = np.ones((10, 2))
    with pytest.raises(ValueError, match="out of range"):
        _core.weighted_gram(X, np.array([0, 10], dtype=np.int64), np.ones(2), False)
    with pytest.raises(ValueError, match="differ in length"):
        _core.weighted_gram(X, np.array([0, 1], dtype=np.int64), np.ones(3), False)


# Row counts around the register tiles (2-24 rows) and blocks (256-1024 rows), feature and
# column counts below, at and past the tiles (up to 8 columns) so every edge path runs.
@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("n_rows", [1, 7, 25, 263, 2100])
@pytest.mark.parametrize("n_features, m", [(1, 1), (3, 5), (17, 9), (40, 21)])
def test_thin_products_match_numpy_on_every_build(order, n_rows, n_features, m):
    rng = np.random.default_rng(n_rows * 100 + n_features + m)
    X = np.asarray(rng.normal(size=(n_rows + 11, n_features)), order=order)
    coefs = np.asfortranarray(rng.normal(size=(n_features, m)))
    offsets = rng.normal(size=m)
    residual = np.asfortranarray(rng.normal(size=(n_rows, m)))
    for contiguous in (True, False):
        rows = (
            np.arange(5, 5 + n_rows)
            if contiguous
            else np.sort(rng.choice(n_rows + 11, n_rows, replace=False))
        )
        rows = rows.astype(np.int64)
        A = np.column_stack([np.ones(n_rows), X[rows]])
        for level in runnable_levels():
            with use_level(level):
                out = np.empty((n_rows, m), order="F")
                _core.design_multiply(X, rows, coefs, offsets, out, 2)
                gradient = _core.design_transpose_multiply(X, rows, residual, 2)
            np.testing.assert_allclose(
                out, X[rows] @ coefs + offsets, rtol=1e-12, atol=1e-12, err_msg=level
            )
            np.testing.assert_allclose(
                gradient, A.T @ residual / n_rows, rtol=1e-12, atol=1e-12, err_msg=level
            )


def test_design_transpose_multiply_rejects_bad_rows():
    X = np.ones((10, 2))
    with pytest.raises(ValueError, match="out of range"):
        _core.design_transpose_multiply(
            X, np.array([0, 10], dtype=np.int64), np.ones((2, 1), order="F"), 1
        )
    with pytest.raises(ValueError, match="differ in length"):
        _core.design_transpose_multiply(
            X, np.array([0, 1], dtype=np.int64), np.ones((3, 1), order="F"), 1
        )


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("contiguous", [True, False])
def test_design_multiply_matches_numpy(order, contiguous):
    rng = np.random.default_rng(4)
    X = np.asarray(rng.normal(size=(9000, 30)), order=order)
    rows = np.arange(50, 8950) if contiguous else np.sort(rng.choice(9000, 7000, replace=False))
    rows = rows.astype(np.int64)
    coefs = np.asfortranarray(rng.normal(size=(30, 6)))
    offsets = rng.normal(size=6)
    out = np.empty((rows.size, 6), order="F")
    _core.design_multiply(X, rows, coefs, offsets, out, 2)
    np.testing.assert_allclose(out, X[rows] @ coefs + offsets, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(sys.platform != "linux", reason="the export list is a GNU ld version script")
def test_extension_modules_export_their_initialiser_only():
    """Template instances compiled for different instruction sets (Eigen's, the standard
    library's) must never bind across _core and the kernel modules: each exports PyInit_* alone."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("binutils' nm is not installed")
    package = pathlib.Path(_core.__file__).parent
    modules = sorted(package.glob("_core.*.so")) + sorted(package.glob("_kernels_*.so"))
    assert modules
    for module in modules:
        listed = subprocess.run(
            [nm, "-D", "--defined-only", str(module)], capture_output=True, text=True, check=True
        ).stdout.split()
        symbols = listed[2::3]  # address, type, name
        assert symbols == [f"PyInit_{module.name.split('.')[0]}"], (module.name, symbols[:5])


def _kernel_build_outputs(scenario: str) -> list[np.ndarray]:
    """What one scenario computes with the kernels in use: each scenario reaches different
    kernels (small-panel and Eigen Cholesky, sub-sampled float32 Hessians, history rows by
    scatter and by gather, proximal Newton, convolutions, the simulation)."""
    import popglm as nmo

    rng = np.random.default_rng(11)
    if scenario.startswith("dense"):
        # q = n_features + 1 = 7, 64 (the last small-panel factor), 71 (Eigen's blocked LLT).
        n_features = int(scenario.split("-")[1])
        X = rng.normal(scale=0.3 / np.sqrt(n_features), size=(12_000, n_features))
        y = rng.poisson(np.exp(-1.0 + X @ rng.normal(size=(n_features, 2)))).astype(float)
        model = nmo.glm.PopulationGLM().fit(X, y)
        assert model.converged_.all() and (model.fit_info_["n_hessian"] > 0).all()
        return [model.coef_, model.intercept_]
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=12)
    counts = rng.poisson(0.3, size=(6_000, 5)).astype(float)
    if scenario == "history":
        model = nmo.glm.PopulationGLM().fit(basis.history_features(counts), counts)
        return [model.coef_, model.intercept_]
    if scenario == "lasso":
        model = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=1e-3)
        model.fit(basis.compute_features(counts), counts)
        return [model.coef_, model.intercept_]
    if scenario == "features":
        return [
            basis.compute_features(counts),
            basis.compute_features(np.ascontiguousarray(counts)),
        ]
    assert scenario == "simulation"
    coupling = rng.normal(scale=0.1, size=(5, 5, 4))  # (receiver, sender, basis)
    spikes, rates = nmo.simulation.simulate_recurrent(
        coupling,
        np.zeros((5, 1)),
        np.full(5, -1.5),
        3,
        np.zeros((2_000, 5, 1)),
        basis.kernel_,
        np.zeros((12, 5)),
    )
    return [np.asarray(spikes, dtype=float), rates]


@pytest.mark.parametrize(
    "scenario", ["dense-6", "dense-63", "dense-70", "history", "lasso", "features", "simulation"]
)
def test_every_kernel_build_computes_alike(scenario):
    """Each runnable kernel build gives the baseline build's answer up to rounding."""
    levels = runnable_levels()
    results = {}
    for level in levels:
        with use_level(level):
            results[level] = _kernel_build_outputs(scenario)
    for level in levels[1:]:
        for reference, value in zip(results["baseline"], results[level], strict=True):
            np.testing.assert_allclose(value, reference, rtol=1e-9, atol=1e-12, err_msg=level)
