"""nmo.io: NeMoS's load_model(filename, mapping_dict) and inspect_npz on popglm's model files."""

from __future__ import annotations

import numpy as np
import pytest

import popglm as nmo


@pytest.fixture()
def saved(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 3)) * 0.3
    counts = rng.poisson(np.exp(0.2 + X @ [0.5, -0.3, 0.0]))[:, None].astype(float)
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=0.01).fit(X, counts)
    path = tmp_path / "model.npz"
    model.save_params(path)
    return model, path


def test_load_model_with_and_without_mapping(saved):
    model, path = saved
    loaded = nmo.io.load_model(path)
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    mapped = nmo.io.load_model(
        path,
        mapping_dict={
            "observation_model": nmo.observation_models.PoissonObservations,
            "regularizer": nmo.regularizer.Ridge(),
            "inverse_link_function": np.exp,
        },
    )
    np.testing.assert_array_equal(mapped.coef_, model.coef_)


def my_link(x):
    return x


def test_mappings_that_cannot_apply_are_refused(saved):
    _, path = saved
    with pytest.raises(ValueError, match=r"mapping_dict\['inverse_link_function'\] is 'my_link'"):
        nmo.io.load_model(path, mapping_dict={"inverse_link_function": my_link})
    with pytest.raises(
        ValueError, match=r"\['regularizer'\] is 'Lasso' but the file holds 'Ridge'"
    ):
        nmo.io.load_model(path, mapping_dict={"regularizer": "Lasso"})
    with pytest.raises(ValueError, match="key 'tol' cannot be mapped"):
        nmo.io.load_model(path, mapping_dict={"tol": 1e-3})


def test_inspect_npz_prints_the_file(saved, capsys):
    model, path = saved
    nmo.io.inspect_npz(path)
    out = capsys.readouterr().out
    assert "Saved model class" in out and "PopulationGLM" in out
    assert f"(installed: {nmo.__version__})" in out
    assert "regularizer" in out and "Ridge" in out and "0.01" in out
    assert "coef_: [[" in out
    # The file's own arrays, as NumPy prints them.
    assert np.array2string(model.intercept_) in out
