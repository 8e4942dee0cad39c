"""Fits on a Dask cluster (popglm.distributed) against the local in-memory fit and statsmodels.

Every cluster is a LocalCluster of two single-threaded worker processes, as on a small CI machine.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import cloudpickle
import dask.array as da
import numpy as np
import pytest
import statsmodels.api as sm
from conftest import simulate_coupled
from distributed import Client, LocalCluster
from sklearn.base import clone

import popglm as nmo
import popglm.distributed
from popglm.regularizer import GroupLasso

# Dask clusters start and stop in every test: outside the default run, in `.ci/run`'s second pass.
pytestmark = pytest.mark.slow

# The helpers below run on the workers, which cannot import this test module: send them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def local_cluster() -> LocalCluster:
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    return simulate_coupled(2000, 6, 6, seed=11)


@pytest.fixture(scope="module")
def history_basis():
    return nmo.basis.RaisedCosineLogConv(3, window_size=6)


def newton_optimum(design, y, intercept, coef, n_steps=4):
    """Plain NumPy Newton on the mean Poisson NLL from a nearby point, to the optimum's precision."""
    theta = np.concatenate([[intercept], coef])
    for _ in range(n_steps):
        rate = np.exp(design @ theta)
        gradient = design.T @ (rate - y) / y.size
        hessian = (design * rate[:, None]).T @ design / y.size
        theta = theta - np.linalg.solve(hessian, gradient)
    return theta


def assert_same_fit(distributed, local, atol=1e-10, rtol=0.0):
    np.testing.assert_allclose(distributed.coef_, local.coef_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(distributed.intercept_, local.intercept_, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(distributed.scale_, local.scale_)
    np.testing.assert_array_equal(distributed.dof_resid_, local.dof_resid_)
    np.testing.assert_array_equal(distributed.converged_, local.converged_)
    assert distributed.fit_info_["n_samples_used"] == local.fit_info_["n_samples_used"]
    assert set(distributed.fit_info_) == set(local.fit_info_)
    assert {k for k in vars(distributed) if k.endswith("_")} == {
        k for k in vars(local) if k.endswith("_")
    }


def assert_same_path(distributed, local):
    """The same Newton iterations; the engine's rounding depends on which neurons share a batch."""
    for key in ("status", "n_iter", "n_hessian"):
        np.testing.assert_array_equal(distributed.fit_info_[key], local.fit_info_[key], err_msg=key)
    info, expected = distributed.fit_info_, local.fit_info_
    np.testing.assert_allclose(info["objective"], expected["objective"], rtol=1e-14)
    np.testing.assert_allclose(info["gradient_norm"], expected["gradient_norm"], rtol=0, atol=1e-15)


# -- receiver-parallel: the local fit, neuron by neuron -----------------------------------------


@pytest.mark.parametrize(
    ("regularizer", "strength", "masked"),
    [(None, None, False), ("Ridge", "per-coefficient", True), ("Lasso", 0.002, False)],
)
def test_receivers_dense_design_match_local_fit(
    client, counts, history_basis, regularizer, strength, masked
):
    X = history_basis.compute_features(counts)  # NaN in the first window_size rows
    n_features, n_neurons = X.shape[1], counts.shape[1]
    rng = np.random.default_rng(3)
    if strength == "per-coefficient":
        strength = rng.uniform(0.001, 0.05, size=(n_features, n_neurons))
    mask = (rng.uniform(size=(n_features, n_neurons)) > 0.3).astype(int) if masked else None

    def model():
        return nmo.glm.PopulationGLM(
            regularizer=regularizer, regularizer_strength=strength, feature_mask=mask
        )

    local = model().fit(X, counts)
    distributed = model().fit(X, counts, client=client)
    assert_same_fit(distributed, local)
    assert_same_path(distributed, local)


def test_receivers_history_features_ship_counts_not_features(client, counts, history_basis):
    X = history_basis.history_features(counts)
    scattered = []
    original_scatter = client.scatter

    def recording_scatter(data, **kwargs):
        scattered.extend(np.shape(value) for value in data)
        return original_scatter(data, **kwargs)

    client.scatter = recording_scatter
    try:
        distributed = popglm.distributed.fit(
            nmo.glm.PopulationGLM(), X, counts, client, neurons_per_task=4
        )
    finally:
        del client.scatter
    # Only the counts and the kernels travel; each worker rebuilds the features from them.
    assert sorted(scattered) == sorted([counts.shape, history_basis.kernel_.shape])
    local = nmo.glm.PopulationGLM().fit(X, counts)
    assert_same_fit(distributed, local)
    assert_same_path(distributed, local)


def test_receivers_missing_counts_uneven_chunks_and_warm_start(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    y = counts.copy()
    y[[50, 51, 700], 4] = np.nan  # dropped for every neuron, as in the local fit
    start = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.5).fit(X, y)
    init = (start.coef_, start.intercept_)
    local = nmo.glm.PopulationGLM().fit(X, y, init_params=init)
    distributed = popglm.distributed.fit(
        nmo.glm.PopulationGLM(), X, y, client, init_params=init, neurons_per_task=4
    )
    assert local.fit_info_["n_samples_used"] == counts.shape[0] - 6 - 3
    assert_same_fit(distributed, local)


def test_receivers_per_neuron_groups_and_other_families(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    n_features, n_neurons = X.shape[1], counts.shape[1]
    # NeMoS's population layout: one group per (presynaptic neuron, receiver) pair.
    groups = np.zeros((n_neurons * n_neurons, n_features, n_neurons))
    for receiver in range(n_neurons):
        for sender in range(n_neurons):
            groups[receiver * n_neurons + sender, 3 * sender : 3 * sender + 3, receiver] = 1
    strengths = np.linspace(0.001, 0.01, groups.shape[0])
    for model in (
        nmo.glm.PopulationGLM(regularizer=GroupLasso(groups), regularizer_strength=strengths),
        nmo.glm.PopulationGLM(observation_model="NegativeBinomial"),
    ):
        local = clone(model).fit(X, counts)
        distributed = clone(model).fit(X, counts, client=client)
        assert_same_fit(distributed, local)


def test_single_neuron_glm(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    local = nmo.glm.GLM(regularizer="Ridge", regularizer_strength=0.01).fit(X, counts[:, 0])
    distributed = nmo.glm.GLM(regularizer="Ridge", regularizer_strength=0.01).fit(
        X, counts[:, 0], client=client
    )
    assert_same_fit(distributed, local)
    assert distributed.coef_.shape == (X.shape[1],)
    assert isinstance(distributed.n_iter_, int)


# -- sample-parallel: dask arrays chunked along samples ------------------------------------------


def test_samples_unregularized_matches_local_fit_and_statsmodels(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    local = nmo.glm.PopulationGLM().fit(X, counts)
    X_chunks = da.from_array(X, chunks=(450, -1))  # 5 sample chunks, the last one short
    y_chunks = da.from_array(counts, chunks=(450, -1))
    distributed = nmo.glm.PopulationGLM().fit(X_chunks, y_chunks, client=client)
    # Neuron 5 is weakly identified (smallest Hessian eigenvalue 1.6e-5): the local engine stops
    # at max |gradient| = 1.8e-12 <= tol, 1.0e-8 from the optimum in its largest coefficient
    # (4.91); hence the relative part of the tolerance. Against a NumPy Newton iteration
    # polished to the optimum, the sample-parallel fit agrees to 1e-10.
    assert_same_fit(distributed, local, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(
        distributed.fit_info_["objective"], local.fit_info_["objective"], rtol=1e-13
    )
    assert distributed.fit_info_["gradient_norm"].max() <= 1e-8
    keep = np.isfinite(X).all(axis=1)
    design = np.column_stack([np.ones(keep.sum()), X[keep]])
    for neuron in range(counts.shape[1]):
        optimum = newton_optimum(
            design, counts[keep, neuron], local.intercept_[neuron], local.coef_[:, neuron]
        )
        np.testing.assert_allclose(distributed.intercept_[neuron], optimum[0], rtol=0, atol=1e-10)
        np.testing.assert_allclose(distributed.coef_[:, neuron], optimum[1:], rtol=0, atol=1e-10)
    # An independent reference for one neuron: statsmodels' IRLS on the rows without NaN.
    reference = sm.GLM(counts[keep, 2], sm.add_constant(X[keep]), family=sm.families.Poisson()).fit(
        tol=1e-13
    )
    np.testing.assert_allclose(distributed.intercept_[2], reference.params[0], atol=1e-7)
    np.testing.assert_allclose(distributed.coef_[:, 2], reference.params[1:], atol=1e-7)


def test_samples_ridge_mask_and_numpy_counts_match_local_fit(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    n_features, n_neurons = X.shape[1], counts.shape[1]
    rng = np.random.default_rng(5)
    mask = (rng.uniform(size=(n_features, n_neurons)) > 0.4).astype(int)
    strength = rng.uniform(0.001, 0.1, size=(n_features, n_neurons))

    def model():
        return nmo.glm.PopulationGLM(
            regularizer="Ridge", regularizer_strength=strength, feature_mask=mask
        )

    local = model().fit(X, counts)
    # Only X is a dask array: the counts are chunked like it. Neurons 0-3, then 4-5, share passes.
    distributed = popglm.distributed.fit(
        model(), da.from_array(X, chunks=(600, -1)), counts, client, neurons_per_pass=4
    )
    assert_same_fit(distributed, local, atol=1e-8)
    assert np.all(distributed.coef_[mask == 0] == 0)


@pytest.mark.parametrize("chunk_rows", [4, 137, 2000])  # shorter than the window, longer, all
def test_compute_features_on_workers_equals_the_basis(client, counts, history_basis, chunk_rows):
    counts = counts[:50] if chunk_rows < 10 else counts  # tiny chunks: a few suffice
    X = popglm.distributed.compute_features(
        history_basis, da.from_array(counts, chunks=(chunk_rows, -1))
    )
    assert X.chunks[0] == da.from_array(counts, chunks=(chunk_rows, -1)).chunks[0]
    expected = history_basis.compute_features(counts)
    np.testing.assert_array_equal(client.compute(X).result(), expected)


def test_samples_from_counts_on_the_workers(client, counts, history_basis):
    y = da.from_array(counts, chunks=(700, -1))
    X = popglm.distributed.compute_features(history_basis, y)
    local = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.02).fit(
        history_basis.history_features(counts), counts
    )
    distributed = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.02).fit(
        X, y, client=client
    )
    assert_same_fit(distributed, local, atol=1e-8)


def test_samples_single_neuron_glm_with_missing_rows(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    y = counts[:, 1].copy()
    y[[100, 900]] = np.nan
    local = nmo.glm.GLM().fit(X, y)
    distributed = nmo.glm.GLM().fit(
        da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500), client=client
    )
    assert_same_fit(distributed, local, atol=1e-8)


def test_samples_flag_a_silent_neuron_as_the_local_fit_does(client, counts, history_basis):
    X = history_basis.compute_features(counts)
    y = counts.copy()
    y[:, 1] = 0
    message = r"maximum-likelihood estimate does not exist for neurons \[1\]"
    with pytest.warns(nmo.ConvergenceWarning, match=message):
        local = nmo.glm.PopulationGLM().fit(X, y)
    with pytest.warns(nmo.ConvergenceWarning, match=message):
        distributed = nmo.glm.PopulationGLM().fit(
            da.from_array(X, chunks=(1000, -1)), y, client=client
        )
    np.testing.assert_array_equal(distributed.fit_info_["status"], local.fit_info_["status"])
    assert distributed.fit_info_["status"][1] == 3
    others = [0, 2, 3, 4, 5]
    np.testing.assert_allclose(
        distributed.coef_[:, others], local.coef_[:, others], rtol=1e-8, atol=1e-8
    )


# -- errors ------------------------------------------------------------------------------------


def test_client_must_be_a_dask_client(counts):
    with pytest.raises(TypeError, match=r"client must be a dask\.distributed\.Client, got str"):
        nmo.glm.PopulationGLM().fit(counts[:, :2], counts, client="tcp://127.0.0.1:8786")


def test_samples_refuse_what_they_do_not_support(client, counts, history_basis):
    X = da.from_array(history_basis.compute_features(counts), chunks=(500, -1))
    y = da.from_array(counts, chunks=(500, -1))
    supported = "supports Poisson observations with the exp link, unregularised or Ridge"
    with pytest.raises(NotImplementedError, match=supported + r"; got regularizer Lasso"):
        nmo.glm.PopulationGLM(regularizer="Lasso", regularizer_strength=0.1).fit(
            X, y, client=client
        )
    with pytest.raises(NotImplementedError, match=supported + r"; got BernoulliObservations"):
        nmo.glm.PopulationGLM(observation_model="Bernoulli").fit(X, y > 0, client=client)
    with pytest.raises(NotImplementedError, match=r"popglm\.distributed\.compute_features"):
        nmo.glm.PopulationGLM().fit(history_basis.history_features(counts), y, client=client)
    with pytest.raises(ValueError, match="neurons_per_task applies to the receiver-parallel"):
        popglm.distributed.fit(nmo.glm.PopulationGLM(), X, y, client, neurons_per_task=2)
    with pytest.raises(ValueError, match="y must contain integer spike counts"):
        nmo.glm.PopulationGLM().fit(X, y + 0.5, client=client)
    with pytest.raises(ValueError, match=r"X and y must have the same number of samples"):
        nmo.glm.PopulationGLM().fit(X, y[:-1], client=client)
    with pytest.raises(ValueError, match=r"feature_mask must have shape \(n_features, n_neurons\)"):
        nmo.glm.PopulationGLM(feature_mask=np.ones((2, 2))).fit(X, y, client=client)


def test_receivers_validate_before_shipping(client, counts):
    with pytest.raises(ValueError, match="neurons_per_pass applies to the sample-parallel fit"):
        popglm.distributed.fit(
            nmo.glm.PopulationGLM(), counts[:, :2], counts, client, neurons_per_pass=2
        )
    with pytest.raises(ValueError, match="neurons_per_task must be an integer >= 1, got 0"):
        popglm.distributed.fit(
            nmo.glm.PopulationGLM(), counts[:, :2], counts, client, neurons_per_task=0
        )
    with pytest.raises(ValueError, match=r"regularizer_strength must be a scalar or broadcastable"):
        nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=np.ones(3)).fit(
            counts[:, :2], counts, client=client
        )


def test_model_parameters_hold_no_client(client, counts):
    model = nmo.glm.PopulationGLM().fit(counts[:, :2], counts, client=client)
    assert "client" not in model.get_params()
    clone(model)  # a fitted model still clones


# -- fault tolerance: a worker process killed mid-fit ---------------------------------------------


def _kill_own_worker_once(marker: str) -> bool:
    """Kill this worker process, unless some process already did (the marker file exists)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    os.kill(os.getpid(), signal.SIGKILL)
    return True  # pragma: no cover - the process is gone


def _arm_worker(marker: str) -> None:
    """On a worker: the first engine run that starts on any worker kills its own process."""
    import popglm._fitting

    original = popglm._fitting.solve

    def solve(*args, **kwargs):
        _kill_own_worker_once(marker)
        return original(*args, **kwargs)

    solve.original = original
    popglm._fitting.solve = solve


def _disarm_worker() -> None:
    import popglm._fitting

    solve = popglm._fitting.solve
    popglm._fitting.solve = getattr(solve, "original", solve)


def _worker_pids(client: Client, n_workers: int = 2) -> set[int]:
    """The process ids of the cluster's workers, once ``n_workers`` of them answer.

    Right after a kill the scheduler may still list the dead worker, or list its replacement
    before it takes calls: ``client.run`` then fails on that worker's closed connection (a loaded
    machine makes the window seconds long). Asked again until every listed worker answers.
    """
    deadline = time.monotonic() + 120
    while True:
        try:
            pids = set(client.run(os.getpid).values())
        except OSError:  # distributed.comm.CommClosedError is one
            pids = set()
        if len(pids) == n_workers:
            return pids
        assert time.monotonic() < deadline, f"{n_workers} workers did not answer within 120 s"
        time.sleep(0.2)


def _wait_for_workers(client: Client, n_workers: int) -> None:
    deadline = time.monotonic() + 120
    while len(client.nthreads()) < n_workers:
        assert time.monotonic() < deadline, "the killed worker was not restarted"
        time.sleep(0.1)


# These two run last, on the module's cluster: its nanny restarts the killed worker.


def test_receivers_survive_a_worker_killed_mid_fit(client, tmp_path, counts, history_basis):
    X = history_basis.history_features(counts)
    local = nmo.glm.PopulationGLM().fit(X, counts)
    marker = str(tmp_path / "killed")
    pids_before = _worker_pids(client)
    client.run(_arm_worker, marker)
    try:
        distributed = popglm.distributed.fit(
            nmo.glm.PopulationGLM(), X, counts, client, neurons_per_task=2
        )
    finally:
        client.run(_disarm_worker)  # on the worker that survived
    assert os.path.exists(marker)  # a fit task started, and its worker died inside it
    _wait_for_workers(client, 2)
    assert len(_worker_pids(client) - pids_before) == 1  # the nanny started a new one
    assert_same_fit(distributed, local)


def _features_of_block(block: np.ndarray, directory: str, kill_at: int) -> np.ndarray:
    """Identity on a block of X; the ``kill_at``-th call on the cluster kills its worker."""
    call = len(os.listdir(directory))
    with open(os.path.join(directory, f"call-{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    if call + 1 >= kill_at:
        _kill_own_worker_once(os.path.join(directory, "..", "killed"))
    return block


def test_samples_survive_a_worker_killed_mid_fit(client, tmp_path, counts, history_basis):
    X = history_basis.compute_features(counts)
    local = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.01).fit(X, counts)
    calls = tmp_path / "calls"
    calls.mkdir()
    # Unpersisted, the blocks of X are recomputed in every Newton pass (4 blocks per pass): the
    # worker dies during the third pass, and Dask reruns its lost work on the other worker.
    X_chunks = da.from_array(X, chunks=(500, -1)).map_blocks(
        _features_of_block, str(calls), 10, dtype=np.float64, meta=np.empty((0, 0))
    )
    _wait_for_workers(client, 2)
    pids_before = _worker_pids(client)
    distributed = popglm.distributed.fit(
        nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.01),
        X_chunks, da.from_array(counts, chunks=(500, -1)), client, persist=False,
    )  # fmt: skip
    assert (tmp_path / "killed").exists()
    _wait_for_workers(client, 2)
    assert len(_worker_pids(client) - pids_before) == 1
    assert len(os.listdir(calls)) > 12  # the fit went on for passes after the kill
    assert_same_fit(distributed, local, atol=1e-8)


def test_receivers_drop_what_separates_as_the_local_fit_does(client):
    # Neuron 1 fires 3 times and neuron 0 is silent for 10 bins after each: neuron 1's features
    # carry a direction of recession for neuron 0 (tests/test_recession.py has the details).
    rng = np.random.default_rng(0)
    counts = np.column_stack([rng.poisson(0.2, 3000), np.zeros(3000), rng.poisson(0.3, 3000)])
    for t in (500, 1500, 2500):
        counts[t, 1] = 1
        counts[t + 1 : t + 11, 0] = 0
    basis = nmo.basis.RaisedCosineLogConv(3, window_size=10)
    X, y = basis.compute_features(counts), counts[:, [0, 2]]
    message = r"does not exist for neurons \[0\]"
    with pytest.warns(nmo.ConvergenceWarning, match=message):
        local = nmo.glm.PopulationGLM().fit(X, y)
    with pytest.warns(nmo.ConvergenceWarning, match=message):
        distributed = popglm.distributed.fit(
            nmo.glm.PopulationGLM(), X, y, client, neurons_per_task=1
        )
    np.testing.assert_array_equal(distributed.fit_info_["dropped_features"][0], [3, 4, 5])
    np.testing.assert_array_equal(distributed.fit_info_["status"], local.fit_info_["status"])
    np.testing.assert_allclose(distributed.coef_, local.coef_, rtol=1e-9, atol=1e-12)
