"""The specification: every cell of NeMoS's coupling how-to runs on popglm, with NeMoS's outputs."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import runpy
import sys

import numpy as np
import pytest
from conftest import SHARED

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "coupling_howto.py"
SPEC = SHARED / "spec" / "coupling_howto.md"


def run_example(tmp_path: pathlib.Path) -> tuple[dict, str]:
    stdout = io.StringIO()
    argv = sys.argv
    sys.argv = [str(EXAMPLE), str(tmp_path)]
    try:
        with contextlib.redirect_stdout(stdout):
            namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    finally:
        sys.argv = argv
    return namespace, stdout.getvalue()


def test_example_prints_the_howto_shapes(tmp_path):
    namespace, printed = run_example(tmp_path)
    assert printed.count("Shape of the feature matrix:  (100, 40)") == 1
    assert printed.count("Shape of the feature matrix:  (100, 12)") == 1
    assert "(4, 10, 4)" in printed
    assert re.search(r"Coupling 2 -> 3:  \[0\. 0\. 0\. 0\. 0\. 0\. 0\. 0\. 0\. 0\.\]", printed)
    assert (tmp_path / "coupling_howto_features.png").stat().st_size > 0
    assert (tmp_path / "coupling_howto_basis_features.png").stat().st_size > 0
    model = namespace["model_with_mask"]
    split = namespace["split_coef"]
    assert split.shape == (4, 10, 4)
    # The removed couplings 0 <-> 1 and 2 -> 3 are exactly zero; 3 -> 2 is kept (non-zero).
    for sender, receiver in [(0, 1), (1, 0), (2, 3)]:
        assert np.all(split[sender, :, receiver] == 0.0)
    assert np.all(split[3, :, 2] != 0.0)
    assert model.coef_.shape == (40, 4)
    assert namespace["model_reduced"].coef_.shape == (12, 4)
    assert namespace["coeff_ij"].shape == (10,)


def spec_cells() -> list[str]:
    text = SPEC.read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.skipif(not SPEC.exists(), reason="the shared spec folder is not beside this checkout")
def test_every_spec_cell_runs_with_popglm(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    cells = spec_cells()
    assert len(cells) >= 8
    namespace: dict = {}
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        for cell in cells:
            assert "import nemos as nmo" not in cell or cell.count("nemos") == 1
            exec(
                compile(
                    cell.replace("import nemos as nmo", "import popglm as nmo"), "<spec>", "exec"
                ),
                namespace,
            )
    plt.close("all")
    assert namespace["nmo"].__name__ == "popglm"
    printed = stdout.getvalue()
    assert "Shape of the feature matrix:  (100, 40)" in printed
    assert "Shape of the feature matrix:  (100, 12)" in printed
    assert namespace["model"].coef_.shape == (40, 4)
    assert namespace["split_coef"].shape == (4, 10, 4)
    assert np.all(namespace["split_coef"][2, :, 3] == 0.0)
