"""Sphinx configuration of popglm's documentation (built in tests/test_docs.py with -W)."""

from __future__ import annotations

import popglm

project = "popglm"
author = "popglm developers"
copyright = "2026, popglm developers"  # noqa: A001 - Sphinx's name
release = popglm.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc sections already give the types

html_theme = "alabaster"
html_title = f"popglm {release}"

# Shapes such as ``(window_size, n_basis_funcs)`` name attributes of several basis classes;
# napoleon turns them into ambiguous cross-references, which are harmless.
suppress_warnings = ["ref.python"]


def _skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated ``set_*_request`` methods (metadata routing)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    """Register the autodoc filter."""
    app.connect("autodoc-skip-member", _skip_sklearn_request_methods)
