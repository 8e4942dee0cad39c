"""Every Python example in the README and docs/ runs as written.

The ```python blocks of one file run in order as one session (later blocks use the names earlier
ones define), in a fresh interpreter whose working directory is a temporary folder. A block whose
first line is `# not run in the tests: <why>` (e.g. one that needs a SLURM cluster) is only
compiled. docs/howto.md continues the coupling how-to script it includes.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOT_RUN = "# not run in the tests:"
# The files whose examples start a Dask cluster: they take several seconds.
SLOW = {"docs/dask.md", "README.md"}


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.MULTILINE | re.DOTALL)


def documents() -> list[str]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [str(f.relative_to(ROOT)) for f in files if f.is_file() and python_blocks(f)]


def test_the_readme_and_docs_have_examples():
    if not (ROOT / "docs").is_dir():
        pytest.skip("tests run outside a source checkout")
    assert "README.md" in documents() and "docs/dask.md" in documents()


@pytest.mark.parametrize(
    "document",
    [pytest.param(d, marks=pytest.mark.slow) if d in SLOW else d for d in documents()],
)
def test_examples_run(document, tmp_path):
    blocks = python_blocks(ROOT / document)
    script = []
    if document == "docs/howto.md":
        script.append((ROOT / "examples" / "coupling_howto.py").read_text())
        script.append("import matplotlib\nmatplotlib.use('Agg')\n")
    for block in blocks:
        compile(block, document, "exec")  # every block is valid Python, run or not
        if not block.startswith(NOT_RUN):
            script.append(block)
    assert script, f"{document}: every example is marked not run"
    path = tmp_path / "examples.py"
    path.write_text("\n".join(script))
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # Run as an interactive session would (`python -c`): Dask's worker processes then do not
    # re-import the examples as a main module, as they would a script without a main guard.
    runner = f"import runpy, sys; sys.argv = [{str(path)!r}, {str(tmp_path)!r}]; " + (
        f"runpy.run_path({str(path)!r}, run_name='examples')"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, f"{document}:\n{result.stderr[-3000:]}"
