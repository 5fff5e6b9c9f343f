"""The house rules of DESIGN.md that a test can check: dependency direction and types."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_remote._compat import parse

PACKAGE = Path(__file__).parent.parent / "jupyter_remote"
FORBIDDEN_IN_CORE = {"IPython", "ipywidgets", "ipykernel", "jupyter_server", "tornado"}
EDGES = {"ipython", "widgets", "server"}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    tree = parse(path.read_text(), filename=str(path))
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
            tree = parse(path.read_text())
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


def test_mypy_strict_on_wire_and_worker():
    pytest.importorskip("mypy")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(PACKAGE / "wire"), str(PACKAGE / "worker"),
         "--ignore-missing-imports"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (anywhere in it)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != "jupyter_remote":
                    found.add(target)
        graph[name] = found
    return graph


def test_no_import_circles():
    graph = _package_imports()
    circles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, circles


def test_each_side_imports_only_what_it_may():
    """``wire`` imports neither side; ``worker`` never imports the notebook side; nothing
    imports the edges but the edges (and the package's lazy entry points)."""
    graph = _package_imports()
    notebook = ("jupyter_remote.core", "jupyter_remote.ipython", "jupyter_remote.widgets",
                "jupyter_remote.server")
    for module, targets in graph.items():
        if module.startswith("jupyter_remote.wire"):
            assert not {t for t in targets if t.startswith((*notebook, "jupyter_remote.worker"))}, module
        if module.startswith(("jupyter_remote.worker", "jupyter_remote.on_scheduler",
                              "jupyter_remote.preload")):
            assert not {t for t in targets if t.startswith(notebook)}, module
    for path in [*(PACKAGE / "worker").rglob("*.py"), *(PACKAGE / "wire").rglob("*.py")]:
        third = {m.split(".")[0] for m in imports_of(path)}
        assert not third & FORBIDDEN_IN_CORE, path


PRIVATE_HOOK = re.compile(
    r"\._broker\b|\b_run_on_scheduler\b|(?:comm|stream|send)\w*\.interval\s*=|\._adaptive\b"
    r"|_reply_subshell_for"
    r"|_create_subshell|\bplugin_add\b|PyThreadState_SetAsyncExc|stimulus_cancel"
)


def test_private_third_party_hooks_live_in_compat_only():
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(set(PRIVATE_HOOK.findall(p.read_text())))
        for p in PACKAGE.rglob("*.py")
        if p.name != "_compat.py" and "labextension" not in p.parts
    }
    assert not {k: v for k, v in offenders.items() if v}


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
