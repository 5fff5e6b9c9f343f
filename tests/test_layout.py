"""The house rules of DESIGN.md that a test can check: dependency direction and types."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "jupyter_remote"
FORBIDDEN_IN_CORE = {"IPython", "ipywidgets", "ipykernel", "jupyter_server", "tornado"}
EDGES = {"ipython", "widgets", "server"}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_core_imports_no_ipython_widgets_or_server_code():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in imports_of(path)
                                               if m.split(".")[0] in FORBIDDEN_IN_CORE)
        for path in (PACKAGE / "core").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_edges_do_not_import_each_other_at_module_level():
    for edge in EDGES:
        for path in (PACKAGE / edge).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in tree.body:  # module level only: inside functions is allowed
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "jupyter_remote" and len(parts) > 1 and parts[1] in EDGES - {edge}:
                        pytest.fail(f"{path.relative_to(PACKAGE)} imports {name} at module level")


def test_mypy_on_core():
    pytest.importorskip("mypy")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", str(PACKAGE / "core"), "--ignore-missing-imports"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_binder_installs_extras_that_exist():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = PACKAGE.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    post_build = (root / "binder" / "postBuild").read_text()
    asked = re.search(r'pip install [^\n]*"\.\[([^\]]+)\]"', post_build)
    assert asked, "binder/postBuild must pip install this repository with its extras"
    assert set(asked.group(1).split(",")) <= set(extras)
    assert (root / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    env = (root / "binder" / "environment.yml").read_text()
    assert "nodejs" in env  # the sidebar is built from source when binder installs the repo
