"""examples/real_recording.py runs its whole workflow (on a small simulated file here)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "real_recording.py"


def test_real_recording_example_runs_and_writes_its_figure(tmp_path, coupled_counts):
    pytest.importorskip("matplotlib")
    if not EXAMPLE.is_file():
        pytest.skip("tests run outside a source checkout")
    data = tmp_path / "counts.npz"
    np.savez(data, counts=coupled_counts.astype(np.uint8))
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(data), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout
    assert "cross-validated Ridge" in printed and "pairs coupled at FDR 5%" in printed
    assert (tmp_path / "real_recording_connectivity.png").is_file()


def test_real_recording_example_without_data_says_so(tmp_path):
    if not EXAMPLE.is_file():
        pytest.skip("tests run outside a source checkout")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "absent.npz")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and "nothing to do" in result.stdout
