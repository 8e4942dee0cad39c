"""The basis family beyond the NeMoS grid: the C++ kernel, composition, scikit-learn, masks, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.interpolate import BSpline

import popglm as nmo
from popglm import _core
from popglm.basis import _conv


def direct_convolution(x, kernels, offset):
    """NumPy reference: out[t, i*K + k] = sum_m kernels[m, k] x[t + offset - m, i], NaN off the data."""
    n, n_inputs = x.shape
    window, n_k = kernels.shape
    out = np.full((n, n_inputs * n_k), np.nan)
    for t in range(n):
        lo, hi = t + offset - window + 1, t + offset
        if lo < 0 or hi > n - 1:
            continue
        segment = x[lo : hi + 1][::-1]  # segment[m] = x[t + offset - m]
        for i in range(n_inputs):
            out[t, i * n_k : (i + 1) * n_k] = segment[:, i] @ kernels
    return out


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("window", [1, 4, 7])
@pytest.mark.parametrize("offset", [-1, 0, 3, 6, 7])
def test_convolve_aligned_matches_direct_convolution(n_threads, window, offset):
    rng = np.random.default_rng(window * 10 + offset)
    x = np.asfortranarray(rng.poisson(0.7, size=(40, 3)).astype(float))
    x[5, 1] = 2.5  # not only integers
    kernels = np.asfortranarray(rng.normal(size=(window, 2)))
    out = np.empty((40, 6), order="F")
    _core.convolve_aligned(x, kernels, offset, out, n_threads)
    np.testing.assert_allclose(out, direct_convolution(x, kernels, offset), rtol=1e-13, atol=1e-14)


def test_convolve_aligned_refuses_hidden_copies_and_bad_shapes():
    x = np.ones((10, 2))  # C order: read in place (test_c_ordered_counts_are_read_in_place)
    kernels = np.asfortranarray(np.ones((3, 2)))
    out = np.empty((10, 4), order="F")
    for needs_a_copy in (np.ones((10, 4))[:, ::2], x.astype(np.int64), x.astype(np.float32)):
        with pytest.raises(TypeError):
            _core.convolve_aligned(needs_a_copy, kernels, 0, out, 1)
    with pytest.raises(ValueError, match="out must have shape"):
        _core.convolve_aligned(np.asfortranarray(x), kernels, 0, np.empty((10, 3), order="F"), 1)


@pytest.mark.parametrize(
    ("conv_kwargs", "offset"),
    [
        ({}, -1),
        ({"shift": False}, 0),
        ({"predictor_causality": "anti-causal"}, 5),
        ({"predictor_causality": "anti-causal", "shift": False}, 4),
        ({"predictor_causality": "acausal"}, 2),
    ],
)
def test_conv_kwargs_alignment(conv_kwargs, offset):
    # Closed form of NeMoS's pad-and-shift: window 5, acausal centres (5 - 1) // 2 = 2 lags.
    x = np.random.default_rng(3).normal(size=(30, 2))
    basis = nmo.basis.RaisedCosineLinearConv(3, window_size=5, conv_kwargs=conv_kwargs)
    expected = direct_convolution(x, basis.kernel_, offset)
    np.testing.assert_allclose(basis.compute_features(x), expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize(
    ("conv_kwargs", "offset"),
    [({}, -1), ({"shift": False}, 0), ({"predictor_causality": "anti-causal"}, 12)],
)
def test_c_ordered_counts_are_read_in_place(conv_kwargs, offset):
    # C-ordered counts (the usual layout) are convolved row by row without a transposed copy,
    # by blocks of output rows on both cores (30,000 rows x 24 features are three blocks);
    # Fortran-ordered counts column by column. Same features, bit for bit, and the direct sum.
    rng = np.random.default_rng(11)
    counts = rng.poisson(0.05, size=(30_000, 6)).astype(float)
    counts[[100, 15_000], [2, 4]] = np.nan
    basis = nmo.basis.RaisedCosineLogConv(4, window_size=12, conv_kwargs=conv_kwargs)
    from_rows = basis.compute_features(np.ascontiguousarray(counts))
    from_columns = basis.compute_features(np.asfortranarray(counts))
    np.testing.assert_array_equal(from_rows, from_columns)
    head = counts[:400]
    np.testing.assert_allclose(
        basis.compute_features(np.ascontiguousarray(head)),
        direct_convolution(head, basis.kernel_, offset),
        rtol=1e-13,
        atol=1e-14,
    )
    # Dense inputs with a long window take the FFT path, which reads columns in either order.
    dense = rng.normal(size=(3_000, 3))
    long_basis = nmo.basis.RaisedCosineLinearConv(5, window_size=300, conv_kwargs=conv_kwargs)
    np.testing.assert_array_equal(
        long_basis.compute_features(np.ascontiguousarray(dense)),
        long_basis.compute_features(np.asfortranarray(dense)),
    )


def test_bspline_matches_scipy():
    # The B-spline elements on NeMoS's knots, from scipy.interpolate.BSpline.
    n_basis, order = 7, 4
    x = np.linspace(0.0, 1.0, 101)
    eps = np.finfo(float).eps
    knots = np.concatenate(
        [
            np.zeros(order - 1),
            np.linspace(0, 1 + eps, n_basis - order + 2),
            np.full(order - 1, 1 + eps),
        ]
    )
    expected = np.column_stack(
        [BSpline(knots, np.eye(n_basis)[i], order - 1)(x) for i in range(n_basis)]
    )
    values = nmo.basis.BSplineEval(n_basis, order=order).compute_features(x)
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-14)


def test_cyclic_bspline_is_periodic_and_a_partition_of_unity():
    basis = nmo.basis.CyclicBSplineEval(8, bounds=(0, 2 * np.pi))
    x = np.linspace(0, 2 * np.pi, 401)
    values = basis.compute_features(x)
    np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(values[0], values[-1], atol=1e-12)


def test_mspline_integrates_to_one():
    x, values = nmo.basis.MSplineEval(6, order=3, bounds=(-2.0, 3.0)).evaluate_on_grid(20001)
    np.testing.assert_allclose(trapezoid(values, x, axis=0), 1.0, rtol=1e-6)


# -- composition ------------------------------------------------------------------------------
def test_additive_features_are_the_components_side_by_side():
    rng = np.random.default_rng(0)
    angle, counts = rng.uniform(0, 2 * np.pi, 50), rng.poisson(1.0, size=(50, 3))
    tuning = nmo.basis.CyclicBSplineEval(5, bounds=(0, 2 * np.pi), label="hd")
    coupling = nmo.basis.RaisedCosineLogConv(3, window_size=8, label="coupling")
    basis = tuning + coupling
    X = basis.compute_features(angle, counts)
    np.testing.assert_array_equal(X[:, :5], tuning.compute_features(angle))
    np.testing.assert_array_equal(X[:, 5:], coupling.compute_features(counts), strict=False)
    split = basis.split_by_feature(X, axis=1)
    assert list(split) == ["hd", "coupling"]
    assert split["coupling"].shape == (50, 3, 3)
    assert basis.n_output_features == 14 and len(basis) == 2
    assert basis["coupling"].window_size == 8


def test_multiplicative_features_are_rowwise_kronecker_products():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=20), rng.uniform(size=20)
    a, b = nmo.basis.BSplineEval(4), nmo.basis.RaisedCosineLinearEval(3)
    fa, fb = a.compute_features(x), b.compute_features(y)
    expected = np.stack([np.kron(fa[t], fb[t]) for t in range(20)])
    np.testing.assert_allclose((a * b).compute_features(x, y), expected, rtol=0, atol=0)


def test_default_labels_are_numbered_and_user_labels_unique():
    basis = nmo.basis.BSplineEval(5) + nmo.basis.BSplineEval(4) + nmo.basis.MSplineEval(4)
    assert [b.label for b in basis] == ["BSplineEval", "BSplineEval_1", "MSplineEval"]
    with pytest.raises(ValueError, match="label 'x'"):
        nmo.basis.BSplineEval(5, label="x") + nmo.basis.MSplineEval(4, label="x")
    three = nmo.basis.HistoryConv(3) * 3
    assert three.label == "((HistoryConv + HistoryConv_1) + HistoryConv_2)"
    assert (nmo.basis.BSplineEval(3, order=2) ** 2).n_basis_funcs == 9


def test_evaluate_on_grid_of_a_product_is_the_tensor_product():
    a, b = nmo.basis.BSplineEval(3, order=2), nmo.basis.RaisedCosineLinearEval(2)
    X, Y, values = (a * b).evaluate_on_grid(5, 4)
    assert X.shape == Y.shape == (5, 4) and values.shape == (5, 4, 6)
    _, va = a.evaluate_on_grid(5)
    _, vb = b.evaluate_on_grid(4)
    np.testing.assert_allclose(values, np.einsum("ik,jl->ijkl", va, vb).reshape(5, 4, 6))


def test_set_input_shape_of_composites():
    basis = nmo.basis.BSplineEval(5) + nmo.basis.HistoryConv(4)
    assert basis.n_output_features is None
    assert basis.set_input_shape(1, 3).n_output_features == 5 + 12
    assert basis.set_input_shape((), (2, 3)).n_output_features == 5 + 24
    assert basis.input_shape == [(), (2, 3)]
    with pytest.raises(ValueError, match="expects 2 inputs, but 1"):
        basis.set_input_shape(3)
    with pytest.raises(ValueError, match="root basis"):
        basis.basis1.set_input_shape(2)


def test_set_params_revalidates_and_keeps_shapes():
    basis = nmo.basis.BSplineEval(5).set_input_shape(2)
    basis.set_params(n_basis_funcs=7)
    assert basis.n_basis_funcs == 7 and basis.n_output_features == 14
    with pytest.raises(ValueError, match="n_basis_funcs must be >= order"):
        basis.set_params(n_basis_funcs=2)
    composite = nmo.basis.BSplineEval(5) + nmo.basis.HistoryConv(3)
    composite.set_params(basis2__window_size=6)
    assert composite.basis2.window_size == 6 and composite.n_basis_funcs == 11


# -- scikit-learn -----------------------------------------------------------------------------
def test_transformer_in_a_pipeline_and_grid_search():
    from sklearn.base import clone
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(200, 1))
    y = np.sin(3 * x[:, 0]) + 0.05 * rng.normal(size=200)
    trans = nmo.basis.BSplineEval(5).set_input_shape(1).to_transformer()
    np.testing.assert_array_equal(
        trans.fit_transform(x), nmo.basis.BSplineEval(5).compute_features(x[:, 0])
    )
    pipe = Pipeline([("basis", trans), ("fit", Ridge(alpha=1e-6))])
    search = GridSearchCV(pipe, {"basis__n_basis_funcs": [4, 8]}, cv=2).fit(x, y)
    assert search.best_params_ == {"basis__n_basis_funcs": 8}
    cloned = clone(trans)
    assert cloned.basis is not trans.basis and cloned.n_basis_funcs == 5


def test_transformer_splits_columns_by_input_shape():
    basis = nmo.basis.BSplineEval(4) + nmo.basis.HistoryConv(2)
    trans = basis.set_input_shape(1, 3).to_transformer()
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.uniform(size=30), rng.poisson(1.0, size=(30, 3))])
    expected = basis.compute_features(X[:, 0], X[:, 1:])
    np.testing.assert_array_equal(trans.transform(X), expected)
    with pytest.raises(ValueError, match="X must have 4 columns"):
        trans.transform(X[:, :3])
    with pytest.raises(ValueError, match="2-dimensional"):
        trans.transform(X[:, 0])


# -- coupling masks ---------------------------------------------------------------------------
def test_coupling_feature_mask_on_a_coupling_basis_and_a_composite():
    conn = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1]])
    coupling = nmo.basis.RaisedCosineLogConv(2, window_size=6, label="coupling")
    mask = nmo.basis.coupling_feature_mask(conn, coupling.set_input_shape(3))
    # rows sender i, basis k; column receiver j: on iff conn[i, j]
    expected = np.repeat(conn, 2, axis=0)
    np.testing.assert_array_equal(mask, expected)

    basis = (nmo.basis.CyclicBSplineEval(4, label="hd") + coupling).set_input_shape(1, 3)
    mask = nmo.basis.coupling_feature_mask(conn, basis)
    assert mask.shape == (10, 3)
    np.testing.assert_array_equal(mask[:4], 1)
    np.testing.assert_array_equal(mask[4:], expected)


def test_coupling_feature_mask_errors():
    conn = np.eye(3)
    basis = nmo.basis.RaisedCosineLogConv(2, window_size=6)
    with pytest.raises(ValueError, match="input shapes are unknown"):
        nmo.basis.coupling_feature_mask(conn, basis)
    with pytest.raises(ValueError, match=r"shape \(n_neurons, n_neurons\)"):
        nmo.basis.coupling_feature_mask(np.ones((3, 2)), basis.set_input_shape(3))
    two = (nmo.basis.HistoryConv(2) + nmo.basis.HistoryConv(3)).set_input_shape(3, 3)
    with pytest.raises(ValueError, match="pass coupling_label"):
        nmo.basis.coupling_feature_mask(conn, two)
    mask = nmo.basis.coupling_feature_mask(conn, two, coupling_label="HistoryConv_1")
    np.testing.assert_array_equal(mask[:6], 1)
    np.testing.assert_array_equal(mask[6:], np.repeat(np.eye(3, dtype=int), 3, axis=0))
    with pytest.raises(ValueError, match="not an additive component"):
        nmo.basis.coupling_feature_mask(conn, two, coupling_label="nope")


def test_masked_fit_switches_off_the_absent_couplings():
    rng = np.random.default_rng(4)
    counts = rng.poisson(0.5, size=(600, 3)).astype(float)
    conn = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    basis = nmo.basis.RaisedCosineLogConv(2, window_size=5)
    X = basis.compute_features(counts)
    mask = nmo.basis.coupling_feature_mask(conn, basis)
    model = nmo.glm.PopulationGLM(feature_mask=mask).fit(X, counts)
    np.testing.assert_array_equal(model.coef_[mask == 0], 0.0)


# -- bad input --------------------------------------------------------------------------------
def test_wrong_number_of_inputs_to_a_composite():
    basis = nmo.basis.BSplineEval(5) + nmo.basis.HistoryConv(3)
    with pytest.raises(ValueError, match="requires 2 input"):
        basis.compute_features(np.ones(10))
    with pytest.raises(TypeError, match="requires 2 input"):  # NeMoS raises TypeError
        basis.compute_features(np.ones(10), np.ones(10), np.ones(10))
    with pytest.raises(ValueError, match="Sample size mismatch"):
        basis.compute_features(np.ones(10), np.ones(11))
    with pytest.raises(ValueError, match="requires 2 sample count"):
        basis.evaluate_on_grid(10)


def test_wrong_shapes_after_set_input_shape():
    basis = nmo.basis.BSplineEval(5).set_input_shape(3)
    with pytest.raises(ValueError, match="expected number of features is 15"):
        basis.split_by_feature(np.ones((4, 10)))
    product = nmo.basis.BSplineEval(4) * nmo.basis.MSplineEval(4)
    with pytest.raises(ValueError, match="same shape"):
        product.set_input_shape(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        product.compute_features(np.ones((10, 2)), np.ones((10, 3)))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: nmo.basis.BSplineEval(5, bounds=(1, 1)), "bounds must have lower < upper"),
        (lambda: nmo.basis.MSplineEval(5, bounds=(2.0, -1.0)), "bounds must have lower < upper"),
        (lambda: nmo.basis.BSplineEval(5, bounds=(1, 2, 3)), "bounds"),
        (lambda: nmo.basis.BSplineEval(3, order=4), "n_basis_funcs must be >= order"),
        (
            lambda: nmo.basis.MSplineConv(2, window_size=5, order=3),
            "n_basis_funcs must be >= order",
        ),
        (lambda: nmo.basis.CyclicBSplineConv(5, window_size=5, order=1), "order must be >= 2"),
        (lambda: nmo.basis.BSplineConv(5, window_size=5, order=2.5), "order must be an integer"),
        (lambda: nmo.basis.RaisedCosineLinearEval(1), "n_basis_funcs must be >= 2"),
        (lambda: nmo.basis.RaisedCosineLinearConv(3, window_size=5, width=0.8), "width"),
        (lambda: nmo.basis.OrthExponentialEval(2, decay_rates=[1.0, 1.0]), "decay_rates"),
        (lambda: nmo.basis.OrthExponentialConv(3, 5, decay_rates=[1.0, 2.0]), "decay_rates"),
        (lambda: nmo.basis.OrthExponentialConv(3, 2, decay_rates=[1, 2, 3]), "window_size"),
        (lambda: nmo.basis.HistoryConv(3, conv_kwargs={"axis": 1}), "axis"),
        (lambda: nmo.basis.HistoryConv(3, conv_kwargs={"foo": 1}), "Unrecognized"),
        (
            lambda: nmo.basis.HistoryConv(3, conv_kwargs={"predictor_causality": "future"}),
            "predictor_causality",
        ),
        (
            lambda: nmo.basis.HistoryConv(
                3, conv_kwargs={"predictor_causality": "acausal", "shift": True}
            ),
            "cannot shift an acausal",
        ),
        (lambda: nmo.basis.FourierEval(-1), "frequencies must be >= 0"),
        (lambda: nmo.basis.FourierEval(3, frequency_mask=np.ones(4)), "frequency_mask"),
    ],
)
def test_bad_parameters(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_even_acausal_window_warns_as_nemos():
    basis = nmo.basis.HistoryConv(4, conv_kwargs={"predictor_causality": "acausal"})
    with pytest.warns(UserWarning, match="window_size should probably be odd"):
        basis.compute_features(np.ones(10))


def test_zero_basis_has_no_bounds_and_no_columns():
    zero = nmo.basis.Zero()
    with pytest.raises(AttributeError, match="bounds"):
        zero.bounds = (0, 1)
    composite = zero + nmo.basis.IdentityEval()
    assert composite.compute_features(np.ones(4), np.arange(4.0)).shape == (4, 1)


def test_deepcopy_and_repr():
    basis = nmo.basis.BSplineEval(5, label="pos") + nmo.basis.HistoryConv(3)
    clone = copy.deepcopy(basis)
    assert repr(clone) == repr(basis)
    assert repr(nmo.basis.HistoryConv(3, conv_kwargs={"shift": False})) == (
        "HistoryConv(window_size=3, conv_kwargs={'shift': False})"
    )
    assert _conv.HistoryConv is nmo.basis.HistoryConv


# -- Category (NeMoS > 0.2.8; reference: a NumPy one-hot encoding) -----------------------------
def test_category_is_a_one_hot_encoding():
    labels = np.array([2, 0, 1, 7, 2])
    expected = (labels[:, None] == np.arange(3)).astype(float)  # 7 is out of category: zeros
    np.testing.assert_array_equal(nmo.basis.Category(3).compute_features(labels), expected)
    words = np.array(["b", "a", "c", "b"])
    basis = nmo.basis.Category(["c", "a", "b"])
    np.testing.assert_array_equal(basis.categories, ["a", "b", "c"])
    np.testing.assert_array_equal(
        basis.compute_features(words), (words[:, None] == np.array(["a", "b", "c"])).astype(float)
    )
    grid, values = basis.evaluate_on_grid(3)
    np.testing.assert_array_equal(values, np.eye(3))


def test_category_in_composites_and_errors():
    basis = nmo.basis.Category(["x", "y"]) * nmo.basis.BSplineEval(3, order=2)
    labels, position = np.array(["x", "y", "y"]), np.array([0.0, 0.5, 1.0])
    onehot = (labels[:, None] == np.array(["x", "y"])).astype(float)
    spline = nmo.basis.BSplineEval(3, order=2).compute_features(position)
    expected = np.einsum("ti,tk->tik", onehot, spline).reshape(3, 6)
    np.testing.assert_allclose(basis.compute_features(labels, position), expected)
    with pytest.raises(ValueError, match=r"Unrecognized label\(s\) \[5\]"):
        nmo.basis.Category(3, out_of_category=False).compute_features(np.array([0, 5]))
    with pytest.raises(ValueError, match="Duplicate category labels"):
        nmo.basis.Category([1, 1, 2])
    with pytest.raises(ValueError, match="expected 3, got 4"):
        nmo.basis.Category(3).evaluate_on_grid(4)


def test_sklearn_clone_of_a_basis_keeps_shapes_and_labels():
    from sklearn.base import clone

    basis = nmo.basis.RaisedCosineLogConv(3, 10, label="c", conv_kwargs={"shift": False})
    basis.set_input_shape(4)
    cloned = clone(basis)
    assert cloned is not basis and cloned.label == "c" and cloned.n_output_features == 12
    assert cloned.conv_kwargs == {"shift": False}


# -- long windows on dense inputs take the FFT path of convolve_aligned ------------------------
@pytest.mark.parametrize("offset", [-1, 0, 999, 1999, 2000])
def test_fft_path_matches_direct_convolution(offset):
    # Dense input, window 2000: the cost rule takes the FFT (FFT length 8192, one block:
    # 5000 * 2000 non-zero multiply-adds > 80 * 8192 * log2(8192)).
    rng = np.random.default_rng(offset + 10)
    x = np.asfortranarray(rng.normal(size=(5000, 2)))
    kernels = np.asfortranarray(nmo.basis.MSplineConv(5, window_size=2000).kernel_)
    expected = np.column_stack([_numpy_direct(x[:, i], kernels, offset) for i in range(x.shape[1])])
    outs = []
    for n_threads in (1, 2):
        out = np.empty((5000, 10), order="F")
        _core.convolve_aligned(x, kernels, offset, out, n_threads)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])  # no dependence on threads
    np.testing.assert_array_equal(np.isnan(outs[0]), np.isnan(expected))
    scale = np.nanmax(np.abs(expected))
    np.testing.assert_allclose(outs[0], expected, rtol=1e-12, atol=1e-12 * scale)


def _numpy_direct(x, kernels, offset):
    """out[t, k] = sum_m kernels[m, k] x[t + offset - m], NaN where the window leaves x.

    ``np.convolve`` sums directly (no FFT): the reference for the core's two paths.
    """
    n, window = x.size, kernels.shape[0]
    t = np.arange(n)
    valid = (t + offset - window + 1 >= 0) & (t + offset <= n - 1)
    out = np.full((n, kernels.shape[1]), np.nan)
    for k in range(kernels.shape[1]):
        full = np.convolve(x, kernels[:, k])  # full[j] = sum_m kernels[m, k] x[j - m]
        out[valid, k] = full[t[valid] + offset]
    return out


@pytest.mark.parametrize("huge", [1e12, 1e200])
def test_one_huge_value_does_not_spread_rounding_beyond_its_window(huge):
    # An input the cost rule would send to the FFT (20000 dense samples, window 2000), with one
    # huge count: the FFT's rounding (~eps * huge) would reach every output of the blocks around
    # it (2.8e-4 absolute for 1e12; 1e184 for 1e200). Every output must stay within 1e-12 of
    # the direct sum relative to its own scale: ||k||_1 times the largest |x| its window reads.
    rng = np.random.default_rng(5)
    window = 2000
    x = rng.poisson(3.0, size=20000).astype(float)
    x[10000] = huge
    kernels = np.asfortranarray(nmo.basis.RaisedCosineLogConv(6, window_size=window).kernel_)
    out = np.empty((x.size, 6), order="F")
    _core.convolve_aligned(np.asfortranarray(x[:, None]), kernels, -1, out, 2)
    expected = _numpy_direct(x, kernels, -1)
    padded = np.concatenate([np.full(window, np.nan), np.abs(x)])
    reach = np.lib.stride_tricks.sliding_window_view(padded, window)[: x.size]
    local = np.nanmax(np.where(np.isnan(reach), -np.inf, reach), axis=1)  # max |x| in t's window
    scale = local[:, None] * np.abs(kernels).sum(axis=0)[None, :]
    valid = ~np.isnan(expected)
    assert np.all(np.abs(out - expected)[valid] <= 1e-12 * scale[valid])


def test_non_finite_dense_input_spreads_nan_only_where_it_reaches():
    x = np.random.default_rng(11).normal(size=(300, 1))
    x[150, 0] = np.nan
    kernels = np.asfortranarray(nmo.basis.RaisedCosineLinearConv(4, window_size=40).kernel_)
    out = np.empty((300, 4), order="F")
    _core.convolve_aligned(np.asfortranarray(x), kernels, -1, out, 1)
    expected = direct_convolution(x, kernels, -1)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_a_convolution_basis_takes_one_input():
    with pytest.raises(ValueError, match="requires 1 input"):
        nmo.basis.HistoryConv(3).compute_features(np.ones(10), np.ones(10))


def test_product_of_two_complex_bases_is_refused_as_in_nemos():
    with pytest.raises(ValueError, match="two complex bases"):
        nmo.basis.FourierEval(3) * nmo.basis.FourierEval(2)
    with pytest.raises(ValueError, match="two complex bases"):
        (nmo.basis.FourierEval(3) * nmo.basis.BSplineEval(4)) * nmo.basis.CustomBasis(
            [np.sin], is_complex=True
        )
    assert (nmo.basis.FourierEval(3) * nmo.basis.BSplineEval(4)).n_basis_funcs == 16
