"""The documentation site builds without a single warning (sphinx -W)."""

from __future__ import annotations

import pathlib
import warnings

import pytest

sphinx_cmd = pytest.importorskip("sphinx.cmd.build")
pytest.importorskip("myst_parser")

pytestmark = pytest.mark.slow  # a full Sphinx build

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.skipif(not (DOCS / "conf.py").is_file(), reason="tests run outside a source checkout")
def test_docs_build_without_warnings(tmp_path):
    with warnings.catch_warnings():
        # Sphinx's deprecations of its own internals are Sphinx's business; -W turns every
        # warning about the documentation itself into a failure.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        status = sphinx_cmd.build_main(
            [
                "-W",
                "--keep-going",
                "-q",
                "-b",
                "html",
                "-d",
                str(tmp_path / "doctrees"),
                str(DOCS),
                str(tmp_path / "html"),
            ]  # fmt: skip
        )
    assert status == 0
    assert (tmp_path / "html" / "api.html").stat().st_size > 10_000
