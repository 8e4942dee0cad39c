"""Generate the NeMoS reference grid for every basis class (tests/test_basis_nemos_grid.py).

Run with the NeMoS environment, JAX in float64:

    /work/nemos-venv/bin/python tests/data/make_nemos_basis_fixtures.py

Writes tests/data/nemos_basis_grid.npz: for every case a JSON spec (``spec_<i>``: how to build
the basis with the NeMoS/popglm API), the inputs (``x<i>_<j>``), NeMoS's features
(``features_<i>``), NeMoS's ``kernel_`` for convolution bases (``kernel_<i>``) or
``evaluate_on_grid`` values (``grid_<i>``) and ``evaluate`` at the inputs (``evaluate_<i>``),
and the ``split_by_feature`` keys and shapes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import nemos  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).with_name("nemos_basis_grid.npz")
FUNCS = {"sin": np.sin, "cos": np.cos, "square": np.square}


def decode(value):
    """JSON stand-ins: {"array": [...]} is an ndarray, {"tuple": [...]} a tuple."""
    if isinstance(value, dict) and set(value) == {"array"}:
        return np.asarray(value["array"])
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(value["tuple"])
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def build(nmo, spec):
    """Build a basis from a spec: {"cls", "kwargs"} or {"op": "+"/"*", "a", "b"}."""
    if "op" in spec:
        a, b = build(nmo, spec["a"]), build(nmo, spec["b"])
        return a + b if spec["op"] == "+" else a * b
    kwargs = {key: decode(value) for key, value in spec.get("kwargs", {}).items()}
    if "funcs" in kwargs:
        kwargs["funcs"] = [FUNCS[name] for name in kwargs["funcs"]]
    return getattr(nmo.basis, spec["cls"])(**kwargs)


CONV = [
    ("HistoryConv", {}),
    ("RaisedCosineLinearConv", {"n_basis_funcs": 4}),
    ("RaisedCosineLinearConv", {"n_basis_funcs": 3, "width": 3.0}),
    ("RaisedCosineLogConv", {"n_basis_funcs": 5}),
    (
        "RaisedCosineLogConv",
        {"n_basis_funcs": 3, "time_scaling": 10.0, "enforce_decay_to_zero": False},
    ),
    ("MSplineConv", {"n_basis_funcs": 6}),
    ("MSplineConv", {"n_basis_funcs": 4, "order": 2}),
    ("BSplineConv", {"n_basis_funcs": 5}),
    ("BSplineConv", {"n_basis_funcs": 4, "order": 1}),
    ("CyclicBSplineConv", {"n_basis_funcs": 6}),
    ("CyclicBSplineConv", {"n_basis_funcs": 4, "order": 2}),
    ("OrthExponentialConv", {"n_basis_funcs": 3, "decay_rates": [0.5, 2.0, 6.0]}),
]
CONV_KWARGS = [
    {},
    {"shift": False},
    {"predictor_causality": "acausal"},
    {"predictor_causality": "anti-causal"},
    {"predictor_causality": "anti-causal", "shift": False},
]
EVAL = [
    ("RaisedCosineLinearEval", {"n_basis_funcs": 5}),
    ("RaisedCosineLinearEval", {"n_basis_funcs": 4, "width": 2.5, "bounds": [-1.0, 1.0]}),
    ("RaisedCosineLogEval", {"n_basis_funcs": 4}),
    (
        "RaisedCosineLogEval",
        {"n_basis_funcs": 5, "time_scaling": 5.0, "bounds": [-1.0, 1.0], "fill_value": -1.0},
    ),
    ("MSplineEval", {"n_basis_funcs": 6}),
    ("MSplineEval", {"n_basis_funcs": 5, "order": 3, "bounds": [-1.5, 2.0]}),
    ("BSplineEval", {"n_basis_funcs": 5}),
    ("BSplineEval", {"n_basis_funcs": 6, "order": 2, "bounds": [-1.0, 1.0], "fill_value": 0.0}),
    ("CyclicBSplineEval", {"n_basis_funcs": 6}),
    ("CyclicBSplineEval", {"n_basis_funcs": 8, "order": 3, "bounds": [-1.0, 1.0]}),
    ("OrthExponentialEval", {"n_basis_funcs": 3, "decay_rates": [1.0, 2.0, 4.0]}),
    ("OrthExponentialEval", {"n_basis_funcs": 2, "decay_rates": [0.5, 3.0], "bounds": [-2.0, 2.0]}),
    ("IdentityEval", {}),
    ("IdentityEval", {"bounds": [-1.0, 1.0], "fill_value": 7.0}),
    ("Zero", {}),
    ("FourierEval", {"frequencies": 4}),
    (
        "FourierEval",
        {"frequencies": {"array": [2, 3, 5]}, "bounds": [-1.0, 1.0], "frequency_mask": "all"},
    ),
    ("CustomBasis", {"funcs": ["sin", "cos", "square"]}),
]
COMPOSITES = [
    # head-direction tuning plus coupling, the motivating design
    (
        {
            "op": "+",
            "a": {
                "cls": "CyclicBSplineEval",
                "kwargs": {"n_basis_funcs": 6, "bounds": [0.0, 6.283185307179586]},
            },
            "b": {"cls": "RaisedCosineLogConv", "kwargs": {"n_basis_funcs": 3, "window_size": 10}},
        },
        [("angle", None), ("counts", 4)],
    ),
    (
        {
            "op": "*",
            "a": {"cls": "BSplineEval", "kwargs": {"n_basis_funcs": 4}},
            "b": {"cls": "RaisedCosineLinearEval", "kwargs": {"n_basis_funcs": 3}},
        },
        [("cov", None), ("cov2", None)],
    ),
    (
        {
            "op": "*",
            "a": {"cls": "MSplineEval", "kwargs": {"n_basis_funcs": 3, "order": 2}},
            "b": {"cls": "IdentityEval", "kwargs": {}},
        },
        [("cov", 2), ("cov2", 2)],
    ),
    (
        {
            "op": "+",
            "a": {"cls": "RaisedCosineLogConv", "kwargs": {"n_basis_funcs": 3, "window_size": 8}},
            "b": {
                "cls": "RaisedCosineLogConv",
                "kwargs": {
                    "n_basis_funcs": 4,
                    "window_size": 6,
                    "conv_kwargs": {"predictor_causality": "acausal"},
                },
            },
        },
        [("counts", 3), ("counts", 2)],
    ),
    (
        {
            "op": "*",
            "a": {"cls": "HistoryConv", "kwargs": {"window_size": 4}},
            "b": {"cls": "BSplineEval", "kwargs": {"n_basis_funcs": 3, "order": 2}},
        },
        [("counts", 3), ("cov", 3)],
    ),
    (
        {
            "op": "+",
            "a": {
                "op": "+",
                "a": {"cls": "BSplineEval", "kwargs": {"n_basis_funcs": 5, "label": "position"}},
                "b": {"cls": "FourierEval", "kwargs": {"frequencies": 3}},
            },
            "b": {
                "op": "*",
                "a": {"cls": "RaisedCosineLinearEval", "kwargs": {"n_basis_funcs": 3}},
                "b": {"cls": "CyclicBSplineEval", "kwargs": {"n_basis_funcs": 4}},
            },
        },
        [("cov", None), ("cov2", None), ("cov", None), ("angle", None)],
    ),
]


def make_input(rng, kind, columns, n_samples):
    shape = (
        (n_samples,)
        if columns is None
        else (n_samples,) + (columns if isinstance(columns, tuple) else (columns,))
    )
    if kind == "counts":
        return rng.poisson(0.8, size=shape).astype(float)
    if kind == "angle":
        return rng.uniform(0, 2 * np.pi, size=shape)
    if kind == "cov2":
        return rng.normal(size=shape)
    x = rng.uniform(-1.4, 1.4, size=shape)  # partly outside the (-1, 1) bounds
    return x


def main():
    rng = np.random.default_rng(20251125)
    arrays = {}
    n_cases = 0

    def record(spec, inputs, kind):
        nonlocal n_cases
        i = n_cases
        basis = build(nemos, spec)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            features = np.asarray(basis.compute_features(*inputs), dtype=float)
        split = basis.split_by_feature(features, axis=1)
        meta = {
            "spec": spec,
            "kind": kind,
            "n_inputs": len(inputs),
            "warnings": sorted({str(w.message)[:40] for w in caught}),
            "split": {k: list(np.shape(v)) for k, v in split.items()},
            "labels": [b.label for b in basis] if hasattr(basis, "__iter__") else [basis.label],
            "n_output_features": basis.n_output_features,
        }
        arrays[f"spec_{i}"] = np.array(json.dumps(meta))
        for j, x in enumerate(inputs):
            arrays[f"x{i}_{j}"] = x
        arrays[f"features_{i}"] = features
        if kind == "conv":
            arrays[f"kernel_{i}"] = np.asarray(basis.kernel_, dtype=float)
        else:
            if kind == "eval":
                # evaluate at the raw inputs: bounds rescale but never fill (NeMoS's evaluate)
                arrays[f"evaluate_{i}"] = np.asarray(basis.evaluate(*inputs), dtype=float)
            if hasattr(basis, "evaluate_on_grid"):
                n_grid = (9, 7, 5, 4)[: len(inputs)]
                *_, values = basis.evaluate_on_grid(*n_grid)
                arrays[f"grid_{i}"] = np.asarray(values, dtype=float)
        n_cases += 1

    for cls, kwargs in CONV:
        for window in (6, 9):
            for conv_kwargs in CONV_KWARGS:
                for columns in (None, 3) if conv_kwargs else (None, 3, (2, 2)):
                    kw = dict(kwargs, window_size=window)
                    if conv_kwargs:
                        kw["conv_kwargs"] = conv_kwargs
                    spec = {"cls": cls, "kwargs": kw}
                    record(spec, [make_input(rng, "counts", columns, 40)], "conv")
    # short input (fewer samples than the window): all NaN, with NeMoS's warning
    record(
        {"cls": "RaisedCosineLogConv", "kwargs": {"n_basis_funcs": 3, "window_size": 9}},
        [make_input(rng, "counts", 2, 7)],
        "conv",
    )
    # NaN in the input propagates through the window
    x = make_input(rng, "counts", 2, 30)
    x[11, 0] = np.nan
    record({"cls": "BSplineConv", "kwargs": {"n_basis_funcs": 4, "window_size": 5}}, [x], "conv")

    # dense covariates and long windows: popglm's cost rule takes the FFT path
    # (nnz * window > 15 * n_blocks * L * log2(L): 1500 * 300 > 15 * 2048 * 11 and
    # 1500 * 250 > 15 * 2 * 1024 * 10)
    for cls, kwargs in (
        ("RaisedCosineLinearConv", {"n_basis_funcs": 5, "window_size": 300}),
        ("MSplineConv", {"n_basis_funcs": 6, "window_size": 250}),
    ):
        for conv_kwargs in CONV_KWARGS[:3]:
            kw = dict(kwargs, conv_kwargs=conv_kwargs) if conv_kwargs else dict(kwargs)
            record({"cls": cls, "kwargs": kw}, [make_input(rng, "cov2", None, 1500)], "conv")

    for cls, kwargs in EVAL:
        for columns in (None, 3, (2, 2)):
            spec = {"cls": cls, "kwargs": kwargs}
            if cls == "OrthExponentialEval" and columns is not None and "bounds" not in kwargs:
                continue  # NeMoS orthonormalises per column: covered by the 1-D case
            record(spec, [make_input(rng, "cov", columns, 25)], "eval")
    x = make_input(rng, "cov", None, 25)
    x[[3, 17]] = np.nan
    for cls, kwargs in EVAL[:10]:
        record({"cls": cls, "kwargs": kwargs}, [x], "eval")
    record(
        {"cls": "FourierEval", "kwargs": {"frequencies": [3, {"tuple": [1, 3]}], "ndim": 2}},
        [make_input(rng, "cov", None, 20), make_input(rng, "cov2", None, 20)],
        "eval",
    )

    for spec, inputs in COMPOSITES:
        record(spec, [make_input(rng, kind, cols, 30) for kind, cols in inputs], "composite")

    np.savez_compressed(
        OUT, n_cases=np.array(n_cases), nemos_version=np.array(nemos.__version__), **arrays
    )
    print(f"wrote {n_cases} cases to {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
