"""The package's namespace: what `import popglm` shows, and what it loads only when asked."""

from __future__ import annotations

import subprocess
import sys

import popglm


def test_dir_lists_the_public_names_only():
    names = dir(popglm)
    assert "annotations" not in names
    assert not [name for name in names if name.startswith("_") and name != "__version__"]
    for name in popglm.__all__:
        assert name in names
        assert getattr(popglm, name) is not None
    assert "plotting" in names and "distributed" in names


def test_plotting_and_distributed_are_imported_on_first_access():
    code = (
        "import sys, popglm\n"
        "assert 'popglm.plotting' not in sys.modules and 'popglm.distributed' not in sys.modules\n"
        "assert 'matplotlib' not in sys.modules and 'dask' not in sys.modules\n"
        "assert callable(popglm.plotting.plot_connectivity)\n"
        "assert callable(popglm.distributed.compute_features)\n"
        "assert popglm.plotting is sys.modules['popglm.plotting']\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_attributes_raise_attribute_error():
    try:
        popglm.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("popglm.no_such_name did not raise")
    assert not hasattr(popglm, "annotations")


def test_star_import_needs_no_optional_dependency():
    code = "from popglm import *\nassert 'popglm.distributed' not in __import__('sys').modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
