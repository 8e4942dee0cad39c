"""Figures: what each plotting function draws, checked against NumPy on the fitted model."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import popglm as nmo  # noqa: E402
from popglm.inference import benjamini_hochberg  # noqa: E402
from popglm.plotting import (  # noqa: E402
    plot_basis,
    plot_connectivity,
    plot_coupling_filters,
    plot_feature_matrix,
)


@pytest.fixture(scope="module")
def fitted(coupled_counts):
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=8)
    X = basis.compute_features(coupled_counts)
    model = nmo.glm.PopulationGLM().fit(X, coupled_counts)
    return basis, X, model


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def numpy_filters(model, basis):
    n_basis = basis.n_basis_funcs
    blocks = model.coef_.reshape(-1, n_basis, model.coef_.shape[1])  # (sender, basis, receiver)
    return np.einsum("lb,sbr->slr", basis.kernel_, blocks)


def test_coupling_filter_grid_draws_every_pair_with_bands(fitted):
    basis, X, model = fitted
    inference = model.inference(X)
    fig = plot_coupling_filters(model, basis, inference, bin_size=0.01)
    n = model.coef_.shape[1]
    assert len(fig.axes) == n * n
    expected = numpy_filters(model, basis)
    _, lower, upper = inference.coupling_filters(basis)
    for s in range(n):
        for r in range(n):
            ax = fig.axes[s * n + r]
            line = ax.lines[-1]
            np.testing.assert_allclose(line.get_xdata(), 0.01 * np.arange(1, 9))
            np.testing.assert_allclose(line.get_ydata(), expected[s, :, r], atol=1e-12)
            band = ax.collections[0].get_paths()[0].vertices[:, 1]
            assert band.min() == pytest.approx(lower[s, :, r].min())
            assert band.max() == pytest.approx(upper[s, :, r].max())


def test_coupling_filters_without_inference_have_no_bands(fitted):
    basis, _, model = fitted
    fig = plot_coupling_filters(model, basis, neuron_names=list("abcde"))
    assert all(len(ax.collections) == 0 for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "from a"


def test_connectivity_map_shows_filter_sums_and_marks_significant_pairs(fitted):
    basis, X, model = fitted
    _, p_values = model.inference(X).coupling_test(basis.n_basis_funcs)
    found = benjamini_hochberg(p_values)
    fig = plot_connectivity(model, basis, found)
    image = fig.axes[0].images[0]
    np.testing.assert_allclose(image.get_array(), numpy_filters(model, basis).sum(axis=1))
    marked = fig.axes[0].collections[0].get_offsets()
    senders, receivers = np.nonzero(found)
    assert len(marked) == len(senders) > 0
    np.testing.assert_array_equal(np.asarray(marked), np.column_stack([receivers, senders]))
    low, high = image.get_clim()
    sums = numpy_filters(model, basis).sum(axis=1)
    off_diagonal = np.abs(sums[~np.eye(sums.shape[0], dtype=bool)])
    assert low == -high == -np.percentile(off_diagonal, 99)


def test_connectivity_rejects_a_model_without_basis_and_bad_shapes(fitted):
    _, _, model = fitted
    with pytest.raises(ValueError, match="basis"):
        plot_connectivity(model)
    with pytest.raises(ValueError, match="significant must have shape"):
        plot_connectivity(np.zeros((3, 3)), significant=np.zeros((2, 3), dtype=bool))


def test_feature_matrix_view_shows_the_first_rows(fitted, coupled_counts):
    basis, X, _ = fitted
    fig = plot_feature_matrix(X, coupled_counts, n_samples=50, basis=basis)
    counts_ax, features_ax = fig.axes
    np.testing.assert_array_equal(counts_ax.images[0].get_array(), coupled_counts[:50])
    np.testing.assert_array_equal(features_ax.images[0].get_array().filled(np.nan), X[:50])
    separators = [line.get_xdata()[0] for line in features_ax.lines]
    assert separators == [3.5, 7.5, 11.5, 15.5]
    with pytest.raises(ValueError, match="counts must have n_samples"):
        plot_feature_matrix(X, coupled_counts[:-1])


def test_basis_kernels_are_the_basis_columns():
    basis = nmo.basis.RaisedCosineLogConv(5, window_size=40)
    fig = plot_basis(basis)
    lines = fig.axes[0].lines
    assert len(lines) == 5
    for k, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_ydata(), basis.kernel_[:, k])


def test_coupling_filters_of_chosen_pairs_with_a_reference(fitted):
    basis, X, model = fitted
    inference = model.inference(X)
    pairs = np.array([[0, 1], [3, 3], [4, 2], [1, 0], [2, 4]])
    reference = numpy_filters(model, basis) * 0.5
    fig = plot_coupling_filters(model, basis, inference, pairs=pairs, reference=reference)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 8 and len(visible) == 5  # rows of four, the spare axes hidden
    expected = numpy_filters(model, basis)
    for ax, (s, r) in zip(visible, pairs, strict=True):
        np.testing.assert_allclose(ax.lines[-1].get_ydata(), expected[s, :, r], atol=1e-12)
        (dashed,) = [line for line in ax.lines if line.get_linestyle() == "--"]
        np.testing.assert_allclose(dashed.get_ydata(), reference[s, :, r])
        assert ax.get_title() == f"{s} \u2192 {r}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairs": [[0, 5]]}, "pairs must hold integer"),
        ({"pairs": [[0.0, 1.0]]}, "pairs must hold integer"),
        ({"pairs": [0, 1]}, "pairs must have shape"),
        ({"reference": np.zeros((2, 8, 5))}, "reference must have shape"),
    ],
)
def test_coupling_filter_arguments_are_checked(fitted, kwargs, message):
    basis, _, model = fitted
    with pytest.raises(ValueError, match=message):
        plot_coupling_filters(model, basis, **kwargs)


def test_connectivity_colour_scale_can_be_shared():
    fig = plot_connectivity(np.array([[-0.2, 0.1], [0.0, 0.3]]), vmax=2.0)
    assert fig.axes[0].images[0].get_clim() == (-2.0, 2.0)
    with pytest.raises(ValueError, match="vmax must be"):
        plot_connectivity(np.eye(2), vmax=0.0)


def test_connectivity_of_170_neurons_stays_readable():
    rng = np.random.default_rng(0)
    n = 170
    matrix = rng.normal(scale=0.1, size=(n, n))
    matrix[3, 7], matrix[50, 2] = 40.0, -35.0  # two outliers must not wash out the rest
    np.fill_diagonal(matrix, -5.0)
    fig = plot_connectivity(matrix, significant=np.abs(matrix) > 0.25, diagonal=False)
    width, height = fig.get_size_inches()
    assert width <= 11 and height <= 10
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    assert np.ma.getmaskarray(image)[np.arange(n), np.arange(n)].all()  # diagonal left blank
    off_diagonal = np.abs(matrix[~np.eye(n, dtype=bool)])
    assert ax.images[0].get_clim()[1] == pytest.approx(np.percentile(off_diagonal, 99))
    assert fig.axes[1].get_label() == "<colorbar>" or len(fig.axes) == 2
    assert len(ax.get_xticklabels()) <= 30 and len(ax.get_yticklabels()) <= 30
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["significant"]
    marked = np.asarray(ax.collections[0].get_offsets())
    expected = np.abs(matrix) > 0.25
    np.fill_diagonal(expected, False)  # not drawn, not marked
    assert len(marked) == expected.sum() and not np.any(marked[:, 0] == marked[:, 1])
    # Subsets and an order keep each pair's value and name.
    order = rng.permutation(n)
    fig = plot_connectivity(matrix, order=order, senders=np.arange(5), receivers=[0, 1, 2])
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(shown, matrix[np.ix_(order[:5], order[:3])])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [str(k) for k in order[:5]]
    with pytest.raises(ValueError, match="order must be a permutation"):
        plot_connectivity(matrix, order=np.zeros(n, dtype=int))
    with pytest.raises(ValueError, match="senders must hold"):
        plot_connectivity(matrix, senders=[n])


def test_coupling_filters_of_a_large_population_draw_the_strongest_pairs():
    from types import SimpleNamespace

    basis = nmo.basis.RaisedCosineLogConv(3, window_size=6)
    rng = np.random.default_rng(1)
    n = 40
    model = SimpleNamespace(coef_=rng.normal(size=(3 * n, n)))
    fig = plot_coupling_filters(model, basis)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 36
    peak = np.abs(numpy_filters(model, basis)).max(axis=1)
    strongest = np.argsort(-peak, axis=None, kind="stable")[:36]
    senders, receivers = np.unravel_index(strongest, peak.shape)
    titles = [ax.get_title() for ax in visible]
    assert titles == [f"{s} \u2192 {r}" for s, r in zip(senders, receivers, strict=True)]
    fig = plot_coupling_filters(model, basis, senders=[0, 1], receivers=[2, 3, 4])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 6
