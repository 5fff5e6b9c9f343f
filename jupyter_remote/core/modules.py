"""Which local modules travel by value: those imported from files next to the notebook.

cloudpickle ships ``__main__``'s functions and classes by value; a module the notebook
imports from a file in its folder (``import helpers``) is not installed on the workers, so it
must travel by value too. Installed packages travel by reference: the workers have them.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig

import cloudpickle

_registered: set[str] = set()
_scanned = 0


def _installed_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


@functools.lru_cache(maxsize=1)
def _distribution_packages() -> frozenset[str]:
    """Top-level names provided by installed distributions (editable installs included)."""
    from importlib.metadata import packages_distributions

    return frozenset(packages_distributions())


def register_local_modules(root: str | None = None) -> list[str]:
    """Make cloudpickle ship modules imported from files under ``root`` by value.

    ``root`` defaults to the current directory (the notebook's folder in a kernel).
    Installed packages (under the interpreter's prefixes, or installed as a distribution,
    even in editable mode) travel by reference as usual: the workers have them.
    """
    global _scanned
    if root is None and len(sys.modules) == _scanned:
        return sorted(_registered)
    base = os.path.realpath(root or os.getcwd()) + os.sep
    installed = _installed_roots()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top in _registered or top == "__main__" or top not in sys.modules:
            continue
        if top == "jupyter_remote" or top in _distribution_packages():
            continue
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        if path.startswith(base) and not path.startswith(installed) and "site-packages" not in path:
            try:
                cloudpickle.register_pickle_by_value(sys.modules[top])
                _registered.add(top)
            except ValueError:
                pass
    if root is None:
        _scanned = len(sys.modules)
    return sorted(_registered)
