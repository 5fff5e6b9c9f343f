"""Every notebook in examples/ runs top to bottom in a real kernel, on the embedded cluster.

The kernel is the suite's kernelspec for this interpreter (``kernel_name``, tests/conftest.py),
so the notebooks run where the package is installed whatever ``python3`` means to the user.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.ipynb"))


# What cells must show, not only that they ran: (a line the cell's source contains, which of
# the cells containing it (0 = first), a regex its output must match, one it must not).
SHOWS = {
    "quickstart.ipynb": [
        ('print("made"', 0, r"made \(200000, 8\) on this worker[\s\S]*12800000", None),
        ("%%remote --cache", 0, r"computing the correlation matrix[\s\S]*\(8, 8\)", r"reused"),
        ("%%remote --cache", 1, r"reused the result of call \w+[\s\S]*\(8, 8\)",
         r"computing the correlation matrix"),
        ("sim.map(range(2_000))", 0, r"2000 of 2000 done[\s\S]*2000 trials, mean 0\.50006957", None),
        ('"two"', 0, r"caught TypeError raised remotely", None),
        ('errors="return"', 0, r"\[10\.0, ZeroDivisionError\('division by zero'\), 2\.0\]", None),
    ],
    "store.ipynb": [
        ("slow_square(12)", 0, r"computing 12[\s\S]*144", None),
        ("value = slow_square(12)", 0, r"144 from the store", r"computing"),  # a hit: no run
        ("slow_square(13)", 0, r"computing 13[\s\S]*169", None),
        ("%%remote --cache", 0, r"simulating[\s\S]*\(1000, 50\)", r"reused"),
        ("%%remote --cache", 1, r"reused the result of call \w+[\s\S]*\(1000, 50\)", r"simulating"),
        ("%remote cache", 1, r"3 stored result\(s\)[\s\S]*cell +print\(\"simulating\"\)"
         r"[\s\S]*function +slow_square +13", None),
        ("jupyter_remote.share(table)", 0, r"same key: True", None),
        ('shared={"table": table}', 0, r"\[0\.0, 1000\.0, 2000\.0, 3000\.0, 4000\.0\]", None),
    ],
    "parallel.ipynb": [
        ("same as one call", 0, r"same as one call: True[\s\S]*rows, 5 unequal pieces: True", None),
        ("get=False", 0, r"RemoteRef \(6, 10\)", None),
        ("post=sum", 0, r"sum of squares: 333328333350000[\s\S]*items made remotely: "
         r"\[0, 1, 4, 9, 16, 25, 36, 49, 64, 81\][\s\S]*at most 1 at a time: \[0, 1, 4, 9, 16, 25\]",
         None),
        ("any_failed", 0, r"\[0\.25, ZeroDivisionError\('division by zero'\), 0\.5\] any failed: "
         r"True", None),
        ("target='async'", 0, r"\[0, 10, 20, 30, 40, 50, 60, 70\]", None),
        ("target='processes'", 0, r"steps of 27: 111[\s\S]*ran in child processes, not in "
         r"the workers: True", None),
    ],
}


def shown(cell) -> str:
    """What a reader sees of a cell: streams, text forms of displays and results, errors."""
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts.append(f"{o.ename}: {o.evalue}")
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


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
    code = [c for c in nb.cells if c.cell_type == "code"]
    for snippet, nth, must, must_not in SHOWS.get(path.name, []):
        cell = [c for c in code if snippet in c.source][nth]
        text = shown(cell)
        assert re.search(must, text), f"{snippet!r} #{nth} should show {must!r}; it shows:\n{text}"
        assert not (must_not and re.search(must_not, text)), f"{snippet!r} #{nth} shows {must_not!r}"
