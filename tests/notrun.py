"""No test vanishes quietly: what did not run is listed at the end, and fails the run under CI.

Two ways a test stops counting while the run stays green: it is skipped (a missing browser, a
missing extra), or its module is never collected (a conftest's ``collect_ignore_glob`` after
a failed import, a module-level skip). This plugin records both. Locally, the terminal
summary lists them under a loud header; with ``CI`` set to ``true`` (or ``1``), the run also
exits non-zero with that list, so a CI run is green only when every test in the selection
ran. Modules the command line excluded itself (``--ignore``, or paths not asked for) are not
counted; tests deselected by ``-k``/``-m`` neither, since their module was collected.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

_skipped: list[tuple[str, str]] = []  # (nodeid, reason)
_collected: set[Path] = set()
_skipped_modules: list[tuple[str, str]] = []


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_collectreport(report) -> None:
    path = Path(str(report.fspath)).resolve() if report.fspath else None
    if path is None or path.suffix != ".py" or report.nodeid.count("::"):
        return
    if report.passed:
        _collected.add(path)
    elif report.skipped:
        _skipped_modules.append((report.nodeid, _reason(report)))
        _collected.add(path)  # listed as skipped, not as missing


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report)))


def _test_files(config) -> set[Path]:
    """The test modules the command line asked for (directories walked), minus ignores."""
    patterns = config.getini("python_files")
    ignored = [Path(p).resolve() for p in (config.getoption("ignore") or [])]
    ignored_globs = config.getoption("ignore_glob") or []
    wanted: set[Path] = set()
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path.is_dir():
            files = [f for f in path.rglob("*.py")
                     if any(fnmatch.fnmatch(f.name, pat) for pat in patterns)]  # fmt: skip
        elif path.is_file():
            files = [path]
        else:
            continue
        for f in files:
            if any(part.startswith(".") or part in ("node_modules", "__pycache__")
                   for part in f.relative_to(path if path.is_dir() else f.parent).parts):
                continue  # fmt: skip
            if any(f == i or i in f.parents for i in ignored):
                continue
            if any(fnmatch.fnmatch(str(f), g) for g in ignored_globs):
                continue
            wanted.add(f)
    return wanted


def not_run(config) -> list[tuple[str, str]]:
    """(what, why) for every skipped test and every module that was not collected."""
    rootdir = Path(str(config.rootpath))
    missing = sorted(_test_files(config) - _collected)
    rows = [
        (str(m.relative_to(rootdir)) if m.is_relative_to(rootdir) else str(m),
         "module not collected (a conftest's collect_ignore_glob? see the warnings above)")
        for m in missing
    ]  # fmt: skip
    rows += [(nodeid, f"module skipped: {why}") for nodeid, why in _skipped_modules]
    rows += [(nodeid, f"skipped: {why}") for nodeid, why in _skipped]
    return rows


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return  # interrupted, usage error, no tests: pytest's own status says enough
    if under_ci() and not_run(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    rows = not_run(config)
    if not rows:
        return
    verdict = "this FAILS the run (CI=true)" if under_ci() else "the run would fail under CI"
    terminalreporter.section(f"NOT RUN: {len(rows)} -- {verdict}", sep="!", red=True, bold=True)
    for what, why in rows:
        terminalreporter.line(f"NOT RUN {what}: {why}", red=True)
