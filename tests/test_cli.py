"""The command line: demo and fit, their outputs, messages and exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import popglm as nmo
from popglm.cli import main, parse_basis

pytest.importorskip("matplotlib")


def test_demo_fits_a_simulated_network_and_writes_the_figure(tmp_path, capsys):
    code = main(["demo", "--neurons", "6", "--samples", "20000", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "converged: 6/6" in out
    assert "recovery: correlation of true and fitted filters" in out
    for name in ("connectivity", "true_vs_fitted", "filters"):
        path = tmp_path / f"demo_{name}.png"
        assert path.stat().st_size > 1000
        # Each figure is announced with a caption that says what its marks mean.
        (line,) = [line for line in out.splitlines() if line.startswith(f"wrote {path}: ")]
        assert len(line) > len(f"wrote {path}: ") + 40
    assert "significant at FDR 5%" in out and "true filter dashed" in out


def test_demo_filters_figure_draws_the_strongest_true_couplings(tmp_path, monkeypatch):
    """The demo's filter figure: the six strongest true couplings, fitted and true (dashed)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import popglm.cli
    import popglm.plotting

    drawn = {}
    original = popglm.plotting.plot_coupling_filters

    def spy(model, basis, inference=None, **kwargs):
        fig = original(model, basis, inference, **kwargs)
        drawn.update(kwargs, figure=fig)
        return fig

    monkeypatch.setattr(popglm.plotting, "plot_coupling_filters", spy)
    assert main(["demo", "--neurons", "12", "--samples", "20000", "--out", str(tmp_path)]) == 0
    truth = drawn["reference"]
    strength = np.abs(truth.sum(axis=1))
    np.fill_diagonal(strength, -np.inf)
    expected = np.sort(strength, axis=None)[::-1][:6]
    pairs = drawn["pairs"]
    np.testing.assert_array_equal(strength[pairs[:, 0], pairs[:, 1]], expected)
    axes = [ax for ax in drawn["figure"].axes if ax.get_visible()]
    assert len(axes) == 6
    for ax, (s, r) in zip(axes, pairs, strict=True):
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        np.testing.assert_allclose(dashed[0].get_ydata(), truth[s, :, r])


def test_fit_command_saves_the_same_model_as_the_api(tmp_path, coupled_counts, capsys):
    counts_file = tmp_path / "counts.npy"
    np.save(counts_file, coupled_counts.astype(np.int64))
    out_file = tmp_path / "model.npz"
    code = main(["fit", str(counts_file), "--basis", "raised-cosine-log:4:8", "--out",
                 str(out_file), "--figures", str(tmp_path / "figures"), "--bin-size", "0.001"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "spikes/s" in printed and printed.count("converged") == coupled_counts.shape[1]
    loaded = nmo.load_model(out_file)
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=8)
    reference = nmo.glm.PopulationGLM().fit(basis.compute_features(coupled_counts), coupled_counts)
    np.testing.assert_allclose(loaded.coef_, reference.coef_, rtol=0, atol=1e-7)
    assert (tmp_path / "figures" / "fit_connectivity.png").is_file()


def test_fit_with_a_test_fraction_prints_each_neurons_held_out_score(
    tmp_path, coupled_counts, capsys
):
    from scipy.special import gammaln

    counts_file = tmp_path / "counts.npy"
    np.save(counts_file, coupled_counts)
    code = main(["fit", str(counts_file), "--basis", "raised-cosine-log:4:8", "--out",
                 str(tmp_path / "m.npz"), "--test-fraction", "0.25"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "held-out LL/bin" in printed
    # NumPy: the model of the first 75% of bins, scored on the rest with their full histories.
    n_samples = coupled_counts.shape[0]
    train = n_samples - int(round(0.25 * n_samples))
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=8)
    model = nmo.glm.PopulationGLM().fit(
        basis.compute_features(coupled_counts[:train]), coupled_counts[:train]
    )
    X = basis.compute_features(coupled_counts)[train:]
    y = coupled_counts[train:]
    rate = np.exp(X @ model.coef_ + model.intercept_)
    expected = (y * np.log(rate) - rate - gammaln(y + 1)).mean(axis=0)
    rows = [line.split() for line in printed.splitlines()]
    scores = [float(r[-1]) for r in rows if len(r) == 6 and r[0].isdigit()]
    assert len(scores) == coupled_counts.shape[1]
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert main(["fit", str(counts_file), "--test-fraction", "1.5"]) == 2


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_fit_reads_csv_and_npz_with_a_self_only_mask(tmp_path, coupled_counts, suffix):
    path = tmp_path / f"counts{suffix}"
    if suffix == ".csv":
        np.savetxt(path, coupled_counts, delimiter=",", fmt="%d")
    else:
        np.savez(path, counts=coupled_counts)
    out_file = tmp_path / "model.npz"
    code = main(
        ["fit", str(path), "--basis", "history:5", "--mask", "self", "--out", str(out_file)]
    )
    assert code == 0
    coef = nmo.load_model(out_file).coef_.reshape(5, 5, 5)  # (sender, lag, receiver)
    off_diagonal = ~np.eye(5, dtype=bool)
    assert (coef.transpose(0, 2, 1)[off_diagonal] == 0).all()
    assert (coef.transpose(0, 2, 1)[~off_diagonal] != 0).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["fit", "missing.npy"], "missing.npy: no such file"),
        (["fit", "COUNTS", "--basis", "cosine:3"], "is not a basis spec"),
        (["fit", "COUNTS", "--basis", "raised-cosine-log:x:10"], "must be integers"),
        (["fit", "COUNTS", "--basis", "history:0"], "window_size"),
        (["fit", "COUNTS", "--basis", "history:5000"], "more samples than the window"),
        (["fit", "COUNTS", "--mask", "nomask.npy"], "no such file"),
        (["fit", "NEGATIVE"], "non-negative integers"),
        (["fit", "EMPTY"], "could not read spike counts"),
        (["fit", "TRUNCATED"], "could not read spike counts"),
        (["fit", "COUNTS", "--mask", "EMPTY"], "could not read"),
        (["fit", "COUNTS", "--mask", "NPZ"], "holding one array"),
        (["fit", "COUNTS", "--mask", "NANMASK"], "must hold finite numbers"),
        (["fit", "COUNTS", "--basis", "raised-cosine-log:1000000000:10"], "at most one per bin"),
        (["fit", "COUNTS", "--bin-size", "-0.01"], "--bin-size must be a positive"),
        (["fit", "COUNTS", "--bin-size", "nan"], "--bin-size must be a positive"),
        (["fit", "COUNTS", "--out", "."], "--out must name a file"),
        (["fit", "COUNTS", "--test-fraction", "nan"], "--test-fraction must be in"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    tmp_path, capsys, coupled_counts, arguments, message
):
    np.save(tmp_path / "counts.npy", coupled_counts)
    np.save(tmp_path / "negative.npy", -coupled_counts)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "counts.npy").read_bytes()[:100])
    np.savez(tmp_path / "mask.npz", mask=np.ones((5, 5)))
    np.save(tmp_path / "nan.npy", np.full((5, 5), np.nan))
    substitutions = {
        "COUNTS": str(tmp_path / "counts.npy"),
        "NEGATIVE": str(tmp_path / "negative.npy"),
        "EMPTY": str(tmp_path / "empty.npy"),
        "TRUNCATED": str(tmp_path / "truncated.npy"),
        "NPZ": str(tmp_path / "mask.npz"),
        "NANMASK": str(tmp_path / "nan.npy"),
    }
    arguments = [substitutions.get(a, a) for a in arguments]
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


def test_a_fit_that_does_not_converge_exits_1(tmp_path, capsys):
    counts = np.zeros((500, 2), dtype=np.int64)
    counts[::7, 0] = 1  # neuron 1 is silent: its MLE does not exist
    np.save(tmp_path / "counts.npy", counts)
    code = main(["fit", str(tmp_path / "counts.npy"), "--basis", "history:3", "--out",
                 str(tmp_path / "model.npz")])  # fmt: skip
    assert code == 1
    assert "mle_at_infinity" in capsys.readouterr().out


def test_python_dash_m_and_usage_errors_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "popglm", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("popglm ")
    result = subprocess.run([sys.executable, "-m", "popglm", "fit"], capture_output=True, text=True)
    assert result.returncode == 2 and "counts" in result.stderr


def test_parse_basis_builds_the_named_basis():
    basis = parse_basis("raised-cosine-log:5:30")
    assert isinstance(basis, nmo.basis.RaisedCosineLogConv)
    assert (basis.n_basis_funcs, basis.window_size) == (5, 30)
    assert parse_basis("history:7").window_size == 7
