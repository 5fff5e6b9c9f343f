"""Every notebook in examples/ runs top to bottom in a real kernel, on the embedded cluster.

The kernel is the suite's kernelspec for this interpreter (``kernel_name``, tests/conftest.py),
so the notebooks run where the package is installed whatever ``python3`` means to the user.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.ipynb"))


def test_there_are_examples():
    assert any(p.name == "quickstart.ipynb" for p in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_notebook_runs(path, kernel_name, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, kernel_name=kernel_name, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        (i, o.get("ename"))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    assert not errors
    expected = [c for c in nb.cells if "raises-exception" in c.metadata.get("tags", [])]
    for cell in expected:  # cells meant to show an error really raised one
        assert any(o.output_type == "error" for o in cell.outputs), cell.source
