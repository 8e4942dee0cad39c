"""Progress reports from the C++ solvers, and thread counts under OpenMP/threadpoolctl limits."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest

import popglm as nmo
import popglm.glm
from popglm._progress import FitProgress
from popglm._threads import available_cores


class RecordingProgress(FitProgress):
    """FitProgress without the one-second delay, recording every report it gets."""

    calls: list = []

    def __init__(self, verbose, description, delay=0.0):
        super().__init__(verbose, description, delay=0.0)

    def __call__(self, done, total, max_gradient):
        RecordingProgress.calls.append((done, total, max_gradient))
        super().__call__(done, total, max_gradient)


@pytest.fixture
def recording(monkeypatch):
    RecordingProgress.calls = []
    monkeypatch.setattr(popglm.glm, "FitProgress", RecordingProgress)
    return RecordingProgress.calls


@pytest.fixture(scope="module")
def slow_inputs():
    """A fit of a few seconds: the solver reports at most every 100 ms."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.1, size=(60_000, 24)).astype(np.float64)
    basis = nmo.basis.RaisedCosineLogConv(6, window_size=40)
    return basis.history_features(counts), counts


@pytest.mark.parametrize("regularizer", ["UnRegularized", "Lasso"])
def test_solvers_report_progress_through_the_callback(recording, slow_inputs, regularizer, capsys):
    X, counts = slow_inputs
    strength = None if regularizer == "UnRegularized" else 1e-4
    model = nmo.glm.PopulationGLM(
        regularizer=regularizer, regularizer_strength=strength, verbose=True, n_threads=1
    ).fit(X, counts)
    assert len(recording) >= 2, "a multi-second fit should report several times"
    done = [call[0] for call in recording]
    assert all(total == counts.shape[1] for _, total, _ in recording)
    assert done == sorted(done) and 0 <= done[0] and done[-1] <= counts.shape[1]
    gradients = np.array([call[2] for call in recording])
    # NaN only before the first gradient is known (a slow first round, e.g. under sanitizers).
    known = np.flatnonzero(~np.isnan(gradients))
    assert known.size >= 2 and np.array_equal(known, np.arange(known[0], gradients.size))
    gradients = gradients[known]
    assert np.isfinite(gradients).all() and (gradients >= 0).all()
    assert gradients[-1] < gradients[0]  # the fit makes progress
    assert model.converged_.all()
    assert "neuron" in capsys.readouterr().err  # the bar (tqdm) or the plain line was drawn


def test_verbose_false_never_calls_back(recording, slow_inputs):
    X, counts = slow_inputs
    model = nmo.glm.PopulationGLM(verbose=False)
    model.fit(X, counts)
    assert recording == []


def test_an_exception_in_the_progress_callback_stops_the_fit(monkeypatch, slow_inputs):
    class Failing(FitProgress):
        def __init__(self, verbose, description):
            super().__init__(True, description, delay=0.0)

        def __call__(self, done, total, max_gradient):
            raise RuntimeError("progress display failed")

    monkeypatch.setattr(popglm.glm, "FitProgress", Failing)
    X, counts = slow_inputs
    model = nmo.glm.PopulationGLM()
    with pytest.raises(RuntimeError, match="progress display failed"):
        model.fit(X, counts)
    assert not hasattr(model, "coef_")


def test_verbose_must_be_a_bool_or_none():
    with pytest.raises(TypeError, match="verbose"):
        nmo.glm.PopulationGLM(verbose="yes")


def test_default_threads_follow_threadpoolctl_limits(coupled_design, coupled_counts):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    model = nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)
    assert model.fit_info_["n_threads"] == min(available_cores(), model.fit_info_["n_threads"])
    assert model.fit_info_["n_threads"] >= 1
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        limited = nmo.glm.PopulationGLM().fit(coupled_design, coupled_counts)
        explicit = nmo.glm.PopulationGLM(n_threads=2).fit(coupled_design, coupled_counts)
    assert limited.fit_info_["n_threads"] == 1
    assert explicit.fit_info_["n_threads"] == 2  # an explicit n_threads is the caller's choice
    np.testing.assert_array_equal(limited.coef_, model.coef_)
    if available_cores() >= 2:
        assert model.fit_info_["n_threads"] >= 2


def test_progress_before_any_gradient_says_pending(monkeypatch, capsys):
    monkeypatch.setattr(popglm._progress, "_make_bar", lambda description, total: None)
    progress = FitProgress(True, "fit", delay=0.0)
    progress(0, 3, float("nan"))  # what the solvers pass before any gradient is known
    err = capsys.readouterr().err
    assert "0/3 neurons done" in err and "pending" in err and "nan" not in err


def test_notebooks_get_a_tqdm_auto_bar_by_default(monkeypatch):
    """verbose=None shows progress in a notebook (ipykernel loaded), through tqdm.auto."""
    tqdm_auto = pytest.importorskip("tqdm.auto")
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert FitProgress(None, "fit").callback is None
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    progress = FitProgress(None, "fit", delay=0.0)
    assert progress.callback is progress
    progress(1, 4, 1e-3)
    assert isinstance(progress._bar, tqdm_auto.tqdm)
    progress.close()
