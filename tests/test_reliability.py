"""Reliability: Ctrl-C, threads, memory, zero-copy inputs, 64-bit sizes, per-neuron status."""

from __future__ import annotations

import _thread
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from conftest import simulate_coupled

import popglm as nmo


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


# -- Ctrl-C --------------------------------------------------------------------------------------


def _long_fit_inputs(kind: str):
    """Inputs whose fit runs for many seconds on this machine (the test interrupts it at 0.5 s)."""
    rng = np.random.default_rng(11)
    counts = rng.poisson(0.05, size=(200_000, 40)).astype(np.float64)
    basis = nmo.basis.RaisedCosineLogConv(8, window_size=100)
    if kind == "history":
        return nmo.glm.PopulationGLM(), basis.history_features(counts), counts
    if kind == "lasso":
        model = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=1e-4)
        return model, basis.history_features(counts), counts
    counts = counts[:, :25]
    return nmo.glm.PopulationGLM(), basis.compute_features(counts), counts


@pytest.mark.parametrize("kind", ["dense", "history", "lasso"])
def test_keyboard_interrupt_stops_a_long_fit_within_a_second(kind, coupled_design, coupled_counts):
    model, X, counts = _long_fit_inputs(kind)
    fired: list[float] = []

    def interrupt() -> None:
        fired.append(time.perf_counter())
        _thread.interrupt_main()  # what Ctrl-C does: a pending SIGINT for the main thread

    timer = threading.Timer(0.5, interrupt)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, counts)
        caught = time.perf_counter()
    finally:
        timer.cancel()
    assert fired, "the fit ended before the interrupt was sent"
    assert caught - start >= 0.5
    assert caught - fired[0] < 1.0
    assert not hasattr(model, "coef_")  # no half-fitted model is left behind
    model.fit(coupled_design, coupled_counts)  # and the same model object still works
    assert np.isfinite(model.coef_).all()


# -- threads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_threads", [1, 2, 3, 4])
@pytest.mark.parametrize("regularizer", ["UnRegularized", "Ridge", "Lasso"])
def test_results_identical_for_one_to_twice_the_cores(coupled_counts, n_threads, regularizer):
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=12)
    strength = None if regularizer == "UnRegularized" else 1e-3
    kwargs = {"regularizer": regularizer, "regularizer_strength": strength}
    for X in (basis.compute_features(coupled_counts), basis.history_features(coupled_counts)):
        reference = nmo.glm.PopulationGLM(n_threads=1, **kwargs).fit(X, coupled_counts)
        model = nmo.glm.PopulationGLM(n_threads=n_threads, **kwargs).fit(X, coupled_counts)
        np.testing.assert_array_equal(model.coef_, reference.coef_)
        np.testing.assert_array_equal(model.intercept_, reference.intercept_)
        np.testing.assert_array_equal(model.fit_info_["n_iter"], reference.fit_info_["n_iter"])


@pytest.mark.parametrize("regularizer", ["UnRegularized", "Lasso"])
def test_a_neuron_fitted_alone_does_not_depend_on_threads(regularizer):
    # 20,000 rows: float64 Hessians are summed over 4 fixed row chunks, which run on parallel
    # threads when a neuron is fitted alone. A near-duplicate column makes the design too
    # ill-conditioned for float32 or sub-sampled Hessians, so the unpenalised fit uses them too.
    counts = simulate_coupled(20_000, 2, 6, seed=11)
    X = nmo.basis.RaisedCosineLogConv(3, window_size=6).compute_features(counts)
    noise = np.random.default_rng(0).normal(size=X.shape[0])
    X = np.column_stack([X, X[:, 0] + 1e-5 * noise])
    strength = None if regularizer == "UnRegularized" else 1e-4
    fits = [
        nmo.glm.GLM(regularizer=regularizer, regularizer_strength=strength, n_threads=n).fit(
            X, counts[:, 0]
        )
        for n in (1, 2)
    ]
    assert fits[0].fit_info_["n_hessian"].sum() > 0
    np.testing.assert_array_equal(fits[1].coef_, fits[0].coef_)
    np.testing.assert_array_equal(fits[1].intercept_, fits[0].intercept_)


def test_concurrent_fits_of_different_models_match_serial_fits():
    jobs = []
    for seed, regularizer in enumerate(["UnRegularized", "Ridge", "Lasso", "GroupLasso"]):
        counts = simulate_coupled(2000, 4, 6, seed=100 + seed)
        X = nmo.basis.RaisedCosineLogConv(3, window_size=6).compute_features(counts)
        strength = None if regularizer == "UnRegularized" else 2e-3
        jobs.append((regularizer, strength, X, counts))

    def fit(job):
        regularizer, strength, X, counts = job
        model = nmo.glm.PopulationGLM(
            regularizer=regularizer, regularizer_strength=strength, n_threads=2
        )
        return model.fit(X, counts)

    serial = [fit(job) for job in jobs]
    concurrent: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        try:
            for _ in range(3):  # overlap the fits several times
                concurrent[slot] = fit(jobs[slot])
        except BaseException as error:  # surfaced below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for alone, together in zip(serial, concurrent, strict=True):
        np.testing.assert_array_equal(together.coef_, alone.coef_)
        np.testing.assert_array_equal(together.intercept_, alone.intercept_)


def test_fits_release_the_gil(coupled_counts):
    """A Python thread keeps running while a fit computes (the kernels do not hold the GIL)."""
    model, X, counts = _long_fit_inputs("history")
    ticks = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    thread.start()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, counts)
    finally:
        timer.cancel()
        stop.set()
        thread.join()
    # About 100 ticks in that second if the GIL is free; a held GIL would allow a handful.
    assert len(ticks) > 40


# -- memory --------------------------------------------------------------------------------------


def test_no_memory_growth_over_a_thousand_fits(howto_counts):
    X = nmo.basis.HistoryConv(window_size=10).compute_features(howto_counts)
    X_lasso = X[10:]

    def cycle(k: int) -> None:
        model = nmo.glm.PopulationGLM().fit(X, howto_counts)
        model.predict(X)
        if k % 10 == 0:  # the proximal solver too, at a tenth of the rate (it is slower)
            nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=0.01).fit(
                X_lasso, howto_counts[10:]
            )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nmo.ConvergenceWarning)
        for k in range(100):  # warm up allocator pools and caches
            cycle(k)
        before = _rss_bytes()
        for k in range(1000):
            cycle(k)
        after = _rss_bytes()
    # A leak of even one small matrix per fit (90 x 41 doubles = 30 kB) would add 30 MB.
    assert after - before < 4 * 2**20, f"RSS grew by {(after - before) / 2**20:.1f} MiB"


@pytest.mark.parametrize("order", ["F", "C"])
def test_read_only_memory_mapped_design_is_not_copied(tmp_path, order):
    rng = np.random.default_rng(5)
    n_samples, n_features, n_neurons = 200_000, 30, 3
    path = tmp_path / "design.dat"
    writable = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float64, shape=(n_samples, n_features), fortran_order=order == "F"
    )
    writable[:] = rng.normal(0.0, 0.3, size=(n_samples, n_features))
    writable.flush()
    del writable
    X = np.load(path, mmap_mode="r")
    assert not X.flags.writeable and X.flags[f"{order}_CONTIGUOUS"]
    weights = rng.normal(0.0, 0.2, size=(n_features, n_neurons))
    counts = rng.poisson(np.exp(-1.0 + X @ weights)).astype(np.float64)

    tracemalloc.start()
    try:
        model = nmo.glm.PopulationGLM(n_threads=2).fit(X, counts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A copy of X would be 48 MB; what Python may allocate is O(n_samples x n_neurons).
    assert peak < X.nbytes / 4, f"{peak / 2**20:.1f} MiB traced, X is {X.nbytes / 2**20:.1f} MiB"
    in_memory = nmo.glm.PopulationGLM(n_threads=2).fit(np.array(X), counts)
    np.testing.assert_allclose(model.coef_, in_memory.coef_, rtol=0, atol=1e-12)


# -- 64-bit sizes --------------------------------------------------------------------------------


@pytest.mark.huge
def test_design_with_more_than_2_to_the_31_elements(tmp_path):
    """A memory-mapped design of 2.4e9 float64 (19 GB, a sparse file) fits like its collapse.

    Only the last rows of X are non-zero, so every other row has the design [1, 0, ..., 0]: the
    Poisson likelihood of those rows depends on their number and total count only, and the fit
    must equal a NumPy Newton fit on the non-zero rows plus one weighted row standing for them.
    """
    n_features = 9
    n_samples = 2**31 // n_features + 4096  # n_samples * n_features > 2**31
    n_tail = 20_000
    rng = np.random.default_rng(2)
    path = tmp_path / "huge.dat"
    X = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float64, shape=(n_samples, n_features), fortran_order=False
    )
    tail = rng.normal(0.0, 0.5, size=(n_tail, n_features))
    X[-n_tail:] = tail
    X.flush()
    del X
    X = np.load(path, mmap_mode="r")
    assert X.size > 2**31
    weights = rng.normal(0.0, 0.3, size=n_features)
    counts = np.zeros((n_samples, 1))
    counts[:-n_tail, 0] = rng.poisson(0.2, size=n_samples - n_tail)
    counts[-n_tail:, 0] = rng.poisson(np.exp(-1.0 + tail @ weights))
    model = nmo.glm.PopulationGLM().fit(X, counts)
    assert model.converged_.all()

    # Reference: Newton on [the collapsed zero rows (weight n0, mean count), the tail rows].
    n0 = n_samples - n_tail
    design = np.vstack([np.zeros((1, n_features)), tail])
    design = np.column_stack([np.ones(n_tail + 1), design])
    y = np.concatenate([[counts[:n0, 0].mean()], counts[-n_tail:, 0]])
    w = np.concatenate([[float(n0)], np.ones(n_tail)]) / n_samples
    theta = np.zeros(n_features + 1)
    theta[0] = np.log(counts.mean())
    for _ in range(50):
        mu = np.exp(design @ theta)
        gradient = design.T @ (w * (mu - y))
        hessian = design.T @ (design * (w * mu)[:, None])
        theta -= np.linalg.solve(hessian, gradient)
        if np.max(np.abs(gradient)) < 1e-13:
            break
    np.testing.assert_allclose(model.intercept_[0], theta[0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(model.coef_[:, 0], theta[1:], rtol=0, atol=1e-7)


# -- status of every neuron ------------------------------------------------------------------------


def test_fit_info_gives_a_reason_per_neuron(coupled_counts):
    counts = coupled_counts.copy()
    counts[:, 1] = 0.0  # silent: the MLE of its intercept is -inf
    X = nmo.basis.RaisedCosineLogConv(3, window_size=8).compute_features(counts)
    with pytest.warns(nmo.ConvergenceWarning, match=r"neurons \[1\]"):
        model = nmo.glm.PopulationGLM().fit(X, counts)
    info = model.fit_info_
    assert info["reason"].tolist() == [
        "converged",
        "mle_at_infinity",
        "converged",
        "converged",
        "converged",
    ]
    np.testing.assert_array_equal(info["converged"], info["status"] == 0)
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()
    # No feature left and half a spike over the fitted bins (the bounded answer).
    assert np.all(model.coef_[:, 1] == 0.0)
    np.testing.assert_allclose(
        model.intercept_[1], np.log(0.5 / info["n_samples_used"]), rtol=1e-12
    )
    with pytest.warns(nmo.ConvergenceWarning, match=r"neurons \[1\]"):
        stopped = nmo.glm.PopulationGLM(no_mle="stop").fit(X, counts)
    assert stopped.intercept_[1] < np.log(1e-6)  # the rate was driven towards zero

    with pytest.warns(nmo.ConvergenceWarning, match="max_iter=1"):
        capped = nmo.glm.PopulationGLM(max_iter=1).fit(X, coupled_counts)
    assert set(capped.fit_info_["reason"]) == {"max_iter_reached"}
    assert (capped.fit_info_["n_iter"] == 1).all()  # max_iter is honoured
    assert np.isfinite(capped.coef_).all()


def test_max_iter_zero_returns_the_start_and_says_so(coupled_design, coupled_counts):
    start = (np.zeros((coupled_design.shape[1], 5)), np.full(5, -1.0))
    with pytest.warns(nmo.ConvergenceWarning, match="max_iter=0"):
        model = nmo.glm.PopulationGLM(max_iter=0).fit(coupled_design, coupled_counts, start)
    np.testing.assert_array_equal(model.coef_, start[0])
    np.testing.assert_array_equal(model.intercept_, start[1])
    assert (model.fit_info_["n_iter"] == 0).all()


def test_overflowing_start_and_huge_counts_give_the_mle(coupled_design, coupled_counts):
    """A start whose rates overflow exp, and counts of 1e6 per bin, still reach the optimum."""
    counts = coupled_counts * 1e6
    far = (np.full((coupled_design.shape[1], 5), 50.0), np.full(5, 700.0))
    model = nmo.glm.PopulationGLM().fit(coupled_design, counts, far)
    assert model.converged_.all()
    # The MLE is invariant to scaling y except for the intercept, which shifts by log(1e6).
    plain = nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)
    np.testing.assert_allclose(model.coef_, plain.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.intercept_, plain.intercept_ + np.log(1e6), atol=1e-6)


def test_misaligned_float64_inputs_are_copied_before_the_core_reads_them(coupled_counts):
    """NumPy allows float64 buffers at odd addresses (e.g. unpickled from a network frame, as on
    Dask workers); C++ may not read doubles there (UBSan: misaligned load). They are copied."""
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=8)
    X = basis.compute_features(coupled_counts)

    def misaligned(array):
        raw = np.empty(array.nbytes + 1, dtype=np.uint8)
        view = raw[1:].view(np.float64).reshape(array.shape)
        view[...] = array
        assert not view.flags.aligned
        return view

    from popglm._validation import design_for_core, fortran_float64

    assert design_for_core(misaligned(X)).flags.aligned
    assert fortran_float64(misaligned(X)).flags.aligned
    reference = nmo.glm.PopulationGLM().fit(X, coupled_counts)
    model = nmo.glm.PopulationGLM().fit(misaligned(X), misaligned(coupled_counts.astype(float)))
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    features = basis.compute_features(misaligned(coupled_counts.astype(float)))
    np.testing.assert_array_equal(features, X)
    # History features as a Dask worker rebuilds them, from unpickled (possibly odd) buffers.
    from popglm.basis import HistoryFeatures

    history = HistoryFeatures(
        misaligned(np.asfortranarray(coupled_counts, dtype=float)), misaligned(basis.kernel_)
    )
    assert history.inputs.flags.aligned and history.kernels.flags.aligned
    from_history = nmo.glm.PopulationGLM().fit(history, coupled_counts)
    np.testing.assert_allclose(from_history.coef_, reference.coef_, rtol=0, atol=1e-10)


def test_separation_on_single_rows_is_flagged():
    """Found by the thorough hypothesis profile: this was labelled converged (max |gradient|
    1.3e-9 < tol) because a single separated row's rate is only ~n tol when the gradient first
    reaches tol; the engine now re-checks for divergence at the end of polishing."""
    # Neuron 0 spikes once (row 10); features 0 and 2 are non-zero only on rows 16 and 15, where
    # it is silent, so their coefficients diverge to -inf: no finite MLE exists.
    X = np.zeros((17, 3))
    X[16, 0] = 1.0
    X[15, 2] = 1.0
    y = np.zeros((17, 1))
    y[10, 0] = 1.0
    with pytest.warns(nmo.ConvergenceWarning, match="does not exist"):
        model = nmo.glm.PopulationGLM().fit(X, y)
    assert model.fit_info_["reason"][0] == "mle_at_infinity"


@pytest.mark.parametrize("n_threads", [10**5, 10**6, 2**31, 2**40])
def test_huge_thread_counts_are_clamped_to_the_cores(n_threads, coupled_counts):
    from popglm._threads import available_cores

    basis = nmo.basis.RaisedCosineLogConv(3, window_size=8)
    X = basis.history_features(coupled_counts)
    reference = nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=1e-3, n_threads=1)
    reference.fit(X, coupled_counts)
    model = nmo.glm.PopulationGLM(
        regularizer="Lasso", regularizer_strength=1e-3, n_threads=n_threads
    ).fit(X, coupled_counts)
    assert model.fit_info_["n_threads"] == available_cores()
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    model.n_threads = n_threads
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_save_without_npz_loads_back_and_a_missing_folder_is_named(tmp_path, coupled_counts):
    X = nmo.basis.RaisedCosineLogConv(3, window_size=8).compute_features(coupled_counts)
    model = nmo.glm.PopulationGLM().fit(X, coupled_counts)
    model.save_params(tmp_path / "model")  # NumPy writes model.npz, as for NeMoS
    assert (tmp_path / "model.npz").is_file()
    for name in ("model", "model.npz"):
        loaded = nmo.load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.coef_, model.coef_)
    missing = tmp_path / "absent" / "model.npz"
    with pytest.raises(ValueError, match="absent.*does not exist"):
        model.save_params(missing)
    with pytest.raises(ValueError, match="no popglm model file at"):
        nmo.load_model(missing)
    with pytest.raises(ValueError, match="no popglm model file at"):
        nmo.load_model(tmp_path)  # a folder


def test_longdouble_design_and_huge_max_iter_are_taken_as_float64_and_no_limit(coupled_counts):
    X = nmo.basis.RaisedCosineLogConv(3, window_size=8).compute_features(coupled_counts)
    reference = nmo.glm.PopulationGLM().fit(X, coupled_counts)
    model = nmo.glm.PopulationGLM(max_iter=2**40).fit(X.astype(np.longdouble), coupled_counts)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    rate = model.predict(X.astype(np.longdouble))
    assert rate.dtype == np.float64
    inference = model.inference(X.astype(np.longdouble))
    np.testing.assert_array_equal(inference.coef_se, reference.inference(X).coef_se)


def _tampered(tmp_path, source, **changes):
    with np.load(source) as data:
        contents = {key: data[key] for key in data.files}
    contents.update(changes)
    path = tmp_path / "tampered.npz"
    np.savez(path, **contents)
    return path


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"settings": np.array("[1, 2]")}, "settings must be a JSON object"),
        ({"settings": np.array("[" * 100_000 + "]" * 100_000)}, "damaged settings"),
        ({"coef_": np.full((15, 5), 1j)}, "coef_ must hold real finite"),
        ({"coef_": np.full((15, 5), np.nan)}, "coef_ must hold real finite"),
        ({"feature_mask": np.ones((3, 3))}, "feature_mask has shape"),
        ({"scale_": np.ones(7)}, "scale_ must have shape"),
        ({"intercept_": np.zeros(3)}, "intercept_ has 3 entries"),
        ("tol", "tol must be a positive"),
        ("n_threads", "n_threads must be None or an integer"),
    ],
)
def test_load_model_validates_every_field(tmp_path, coupled_counts, change, match):
    import json

    X = nmo.basis.RaisedCosineLogConv(3, window_size=8).compute_features(coupled_counts)
    source = tmp_path / "model.npz"
    nmo.glm.PopulationGLM(feature_mask=np.ones((15, 5))).fit(X, coupled_counts).save_params(source)
    if isinstance(change, str):
        with np.load(source) as data:
            settings = json.loads(str(data["settings"]))
        settings[change] = {"tol": "abc", "n_threads": -3}[change]
        change = {"settings": np.array(json.dumps(settings))}
    with pytest.raises(ValueError, match=match):
        nmo.load_model(_tampered(tmp_path, source, **change))


def test_load_model_reads_only_the_members_a_model_has(tmp_path, coupled_counts, monkeypatch):
    X = nmo.basis.RaisedCosineLogConv(3, window_size=8).compute_features(coupled_counts)
    source = tmp_path / "model.npz"
    model = nmo.glm.PopulationGLM().fit(X, coupled_counts)
    model.save_params(source)
    path = _tampered(tmp_path, source, unused=np.zeros(1000))
    read = []
    original = np.lib.npyio.NpzFile.__getitem__

    def spy(self, key):
        read.append(key)
        return original(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", spy)
    loaded = nmo.load_model(path)
    assert "unused" not in read
    np.testing.assert_array_equal(loaded.coef_, model.coef_)


# -- columns of extreme scale ---------------------------------------------------------------------


def _scaled_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 3))
    y = rng.poisson(np.exp(X @ np.array([0.5, -0.3, 0.2]) - 1.0))[:, None].astype(float)
    return X, y


@pytest.mark.parametrize("scale", [1e-300, 1e-25, 1e-3, 1e6, 1e100, 1e150, 1e200, 1e300])
@pytest.mark.parametrize("regularizer", ["UnRegularized", "Ridge", "Lasso"])
def test_a_column_of_any_scale_gives_the_same_fit(scale, regularizer):
    # Multiplying a column by s divides its coefficient by s (and, for a penalty to describe the
    # same problem, its strength by s for l1 and s**2 for l2). The reference is the fit of the
    # unscaled design with that per-coefficient strength: the predictions must be the same and
    # the fit converged (a 1e-25 column was left unfitted and called converged; 1e200 hit
    # float64's limit or crashed in eigh; 1e100 did not converge).
    X, y = _scaled_problem()
    Xs = X.copy()
    Xs[:, 1] *= scale
    strength = 1e-3
    power = {"UnRegularized": 0, "Ridge": 2, "Lasso": 1}[regularizer]
    kwargs = {} if regularizer == "UnRegularized" else {"regularizer": regularizer}
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        column_strength = strength / np.float64(scale) ** power
    reference_strength = np.full((3, 1), strength)
    reference_strength[1] = column_strength
    mask = np.ones((3, 1))
    if not np.isfinite(column_strength):
        # An infinite strength pins the coefficient at zero: the column left out.
        mask[1], reference_strength[1] = 0, strength
    reference = nmo.glm.PopulationGLM(
        **kwargs,
        **({"regularizer_strength": reference_strength} if power else {}),
        feature_mask=mask,
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = nmo.glm.PopulationGLM(
            **kwargs, **({"regularizer_strength": strength} if power else {})
        ).fit(Xs, y)
    assert model.fit_info_["status"].tolist() == [0]
    np.testing.assert_allclose(model.predict(Xs), reference.predict(X), rtol=1e-6)
    np.testing.assert_allclose(model.coef_[:, 0] * [1, scale, 1], reference.coef_[:, 0], atol=1e-6)


def test_a_rescaled_column_leaves_the_callers_design_alone():
    X, y = _scaled_problem()
    X[:, 1] *= 1e-25
    before = X.copy()
    model = nmo.glm.PopulationGLM().fit(X, y)
    np.testing.assert_array_equal(X, before)
    # The copy is made only for columns outside the band; the fitted model predicts on X itself.
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("scale", [1e-300, 1e-25, 1e6, 1e150, 1e200, 1e300])
def test_standard_errors_do_not_depend_on_a_columns_scale(scale):
    # statsmodels' GLM on the unscaled design is the reference; scaling a column by s divides
    # its standard error by s and leaves the z-values alone (1e150 was off by 4%: the rank
    # cut-off compared eigenvalues across units).
    sm = pytest.importorskip("statsmodels.api")
    X, y = _scaled_problem()
    expected = sm.GLM(y[:, 0], sm.add_constant(X), family=sm.families.Poisson()).fit(tol=1e-12)
    Xs = X.copy()
    Xs[:, 1] *= scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inference = nmo.glm.PopulationGLM().fit(Xs, y).inference(Xs)
    np.testing.assert_allclose(inference.coef_se[:, 0] * [1, scale, 1], expected.bse[1:], rtol=1e-6)
    np.testing.assert_allclose(inference.intercept_se[0], expected.bse[0], rtol=1e-6)
    np.testing.assert_allclose(inference.z_values[:, 0], expected.tvalues[1:], rtol=1e-5)


# -- memory estimated before a large allocation --------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        # Each needs far more than any machine: refused at once, naming what and how much.
        (
            lambda: nmo.basis.RaisedCosineLogConv(4, window_size=50).history_features(
                np.broadcast_to(np.zeros((1, 100)), (10**9, 100))
            ),
            r"copy of xi .*745 GiB",
        ),
        (
            lambda: nmo.basis.RaisedCosineLogConv(4, window_size=50).compute_features(
                np.broadcast_to(np.zeros((1, 100)), (10**9, 100))
            ),
            r"copy of xi .*745 GiB",
        ),
        (
            lambda: nmo.glm.PopulationGLM().fit(
                np.broadcast_to(np.ones((1, 10)), (10**9, 10)),
                np.broadcast_to(np.ones((1, 1)), (10**9, 1)),
            ),
            r"copies of X .* and y .*82 GiB",
        ),
        (lambda: nmo.basis.HistoryConv(10**6).kernel_, r"kernel_ .*14.6 TiB"),
        (
            lambda: nmo.basis.RaisedCosineLogConv(4, window_size=10**9).kernel_,
            r"kernel_ .*59.6 GiB",
        ),
        (
            lambda: nmo.basis.RaisedCosineLogConv(10**9, window_size=100).compute_features(
                np.zeros((200, 1))
            ),
            r"kernel_ .*1.46 TiB",
        ),
        (lambda: nmo.basis.RaisedCosineLogEval(5).evaluate_on_grid(10**12), r"72.8 TiB"),
        (
            lambda: nmo.basis.BSplineEval(10**9).compute_features(np.linspace(0, 1, 10)),
            r"compute_features: 10 points x 1000000000 basis functions .*149 GiB",
        ),
    ],
)
def test_allocations_beyond_the_limit_are_refused_up_front(monkeypatch, call, match):
    # A fixed limit, so that the test means the same on every machine; sizes are bytes worked
    # out by hand (e.g. 10**9 x 100 float64 = 745 GiB; kernels count twice, for temporaries).
    monkeypatch.setenv("POPGLM_MEMORY_LIMIT", "16G")
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert "POPGLM_MEMORY_LIMIT" in str(error.value)


def test_history_features_matrix_is_refused_and_the_limit_can_be_lifted(monkeypatch):
    counts = np.random.default_rng(0).poisson(0.1, size=(5000, 20)).astype(float)
    features = nmo.basis.RaisedCosineLogConv(4, window_size=20).history_features(counts)
    monkeypatch.setenv("POPGLM_MEMORY_LIMIT", "100K")  # the matrix is 5000 x 80 x 8 = 3.1 MiB
    with pytest.raises(ValueError, match=r"feature matrix .*3.05 MiB, more than the 100 KiB"):
        np.asarray(features)
    monkeypatch.setenv("POPGLM_MEMORY_LIMIT", "off")
    assert np.asarray(features).shape == (5000, 80)
    monkeypatch.setenv("POPGLM_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="POPGLM_MEMORY_LIMIT must be a size"):
        np.asarray(features)


def test_the_limit_defaults_to_the_memory_this_process_can_get():
    from popglm import _memory

    available = _memory.available_bytes()
    with open("/proc/meminfo") as handle:
        total = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemTotal"))
    assert available is not None and 0 < available <= total


# -- interpreter exit while a kernel runs in a daemon thread ---------------------------------------

_EXIT_SCRIPT = """
import threading, time
import numpy as np
import popglm as nmo

kind = {kind!r}
rng = np.random.default_rng(0)
counts = rng.poisson(0.05, size=(200_000, 40)).astype(float)
basis = nmo.basis.RaisedCosineLogConv(8, window_size=100)
if kind == "convolve":
    work = lambda: [basis.compute_features(counts) for _ in range(100)]
else:
    X = basis.compute_features(counts[:, :25]) if kind == "dense" else basis.history_features(counts)
    y = counts[:, :25] if kind == "dense" else counts
    model = {{
        "history": nmo.glm.PopulationGLM(),
        "dense": nmo.glm.PopulationGLM(),
        "lasso": nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=1e-4),
        "verbose": nmo.glm.PopulationGLM(verbose=True),
    }}[kind]
    work = lambda: [model.fit(X, y) for _ in range(100)]
threading.Thread(target=work, daemon=True).start()
time.sleep(0.5)
print("exiting", flush=True)
"""


@pytest.mark.parametrize("kind", ["history", "dense", "lasso", "verbose", "convolve"])
def test_python_exits_cleanly_while_a_daemon_thread_fits(kind):
    # Python < 3.14 ends a daemon thread that asks for the GIL during shutdown with
    # pthread_exit; from inside a C++ kernel that aborted the process (SIGABRT, "terminate
    # called without an active exception"). Each run exits with the main thread's status.
    result = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT.format(kind=kind)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("exiting")
    assert "terminate" not in result.stderr and "FATAL" not in result.stderr
