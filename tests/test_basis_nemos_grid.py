"""Every basis class against NeMoS 0.2.8: features, kernels, grids, splits, labels, warnings.

The reference numbers are NeMoS's, computed in float64 by tests/data/make_nemos_basis_fixtures.py
(run in an environment with nemos==0.2.8) and stored in tests/data/nemos_basis_grid.npz.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import popglm as nmo

DATA = np.load(Path(__file__).parent / "data" / "nemos_basis_grid.npz")
N_CASES = int(DATA["n_cases"])
FUNCS = {"sin": np.sin, "cos": np.cos, "square": np.square}
RTOL, ATOL = 1e-12, 1e-12


def decode(value):
    if isinstance(value, dict) and set(value) == {"array"}:
        return np.asarray(value["array"])
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(value["tuple"])
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def build(spec):
    if "op" in spec:
        a, b = build(spec["a"]), build(spec["b"])
        return a + b if spec["op"] == "+" else a * b
    kwargs = {key: decode(value) for key, value in spec.get("kwargs", {}).items()}
    if "funcs" in kwargs:
        kwargs["funcs"] = [FUNCS[name] for name in kwargs["funcs"]]
    return getattr(nmo.basis, spec["cls"])(**kwargs)


def case_id(i):
    meta = json.loads(str(DATA[f"spec_{i}"]))
    spec = meta["spec"]
    name = spec.get("cls", spec.get("op"))
    shapes = "x".join(str(DATA[f"x{i}_{j}"].ndim) for j in range(meta["n_inputs"]))
    kw = spec.get("kwargs", {}).get("conv_kwargs", {})
    return f"{i}-{name}-{shapes}d-{'-'.join(str(v) for v in kw.values())}"


@pytest.mark.parametrize("i", range(N_CASES), ids=case_id)
def test_matches_nemos(i):
    meta = json.loads(str(DATA[f"spec_{i}"]))
    basis = build(meta["spec"])
    inputs = [DATA[f"x{i}_{j}"] for j in range(meta["n_inputs"])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        features = np.asarray(basis.compute_features(*inputs))
    expected = DATA[f"features_{i}"]
    assert features.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(features), np.isnan(expected))
    np.testing.assert_allclose(features, expected, rtol=RTOL, atol=ATOL)

    # NeMoS's warnings (short trials, even acausal windows) are raised here too.
    ours = " | ".join(str(w.message) for w in caught)
    for message in meta["warnings"]:
        if "shorter than the convolution window" in message or message.startswith("With `acausal"):
            assert message[:20] in ours
    if not meta["warnings"]:
        assert not caught, ours

    assert basis.n_output_features == meta["n_output_features"]
    split = basis.split_by_feature(features, axis=1)
    assert {k: list(v.shape) for k, v in split.items()} == meta["split"]
    assert [b.label for b in basis] == meta["labels"]

    if f"kernel_{i}" in DATA:
        np.testing.assert_allclose(basis.kernel_, DATA[f"kernel_{i}"], rtol=RTOL, atol=ATOL)
    if f"evaluate_{i}" in DATA:
        values = np.asarray(basis.evaluate(*inputs))
        expected = DATA[f"evaluate_{i}"]
        assert values.shape == expected.shape
        np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
        np.testing.assert_allclose(values, expected, rtol=RTOL, atol=ATOL)
    if f"grid_{i}" in DATA:
        n_grid = (9, 7, 5, 4)[: meta["n_inputs"]]
        *_, values = basis.evaluate_on_grid(*n_grid)
        expected = DATA[f"grid_{i}"]
        np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
        np.testing.assert_allclose(values, expected, rtol=RTOL, atol=ATOL)
