"""examples/head_direction.py runs and recovers the simulated tuning and coupling."""

from __future__ import annotations

import contextlib
import io
import pathlib
import runpy
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "head_direction.py"


def test_head_direction_example_recovers_tuning_and_coupling(tmp_path):
    argv, stdout = sys.argv, io.StringIO()
    sys.argv = [
        str(EXAMPLE),
        "15000",
        str(tmp_path),
    ]  # half the example's data: quicker, still identifiable
    try:
        with contextlib.redirect_stdout(stdout):
            namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    finally:
        sys.argv = argv
    printed = stdout.getvalue()
    assert "design: (15000, 26)" in printed
    for name in ("fully coupled", "masked"):
        tuning_corr, coupling_corr = namespace["results"][name]
        assert tuning_corr > 0.98, (name, printed)
        assert coupling_corr > 0.95, (name, printed)
    # the mask keeps absent couplings at exactly zero
    masked = namespace["masked"]
    assert (masked.coef_[namespace["mask"] == 0] == 0).all()
    assert (tmp_path / "head_direction_tuning.png").stat().st_size > 1000
