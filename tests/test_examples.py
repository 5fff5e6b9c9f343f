"""Every notebook in examples/ runs top to bottom in a real kernel, on the embedded cluster."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory, monkeypatch_module):
    """A kernelspec for this interpreter, so the notebooks run where the package is installed."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "jupyter-remote-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jupyter_remote tests",
        "language": "python",
    }))
    monkeypatch_module.setenv("JUPYTER_PATH", str(root))
    return "jupyter-remote-test"


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


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
