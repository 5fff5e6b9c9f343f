"""Run notebook cells and functions on a Dask cluster; results stay there as references.

Importing this package is cheap: Dask's distributed machinery, IPython and widgets load
only when they are first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "cluster": ("jupyter_remote.core.clusters", "cluster"),
    "Cluster": ("jupyter_remote.core.clusters", "Cluster"),
    "function": ("jupyter_remote.core.functions", "function"),
    "remote": ("jupyter_remote.core.functions", "remote"),
    "RemoteFunction": ("jupyter_remote.core.functions", "RemoteFunction"),
    "RemoteRef": ("jupyter_remote.core.refs", "RemoteRef"),
    "get": ("jupyter_remote.core.refs", "get"),
    "any_failed": ("jupyter_remote.core.maps", "any_failed"),
    "submit": ("jupyter_remote.core.jobs", "submit"),
    "share": ("jupyter_remote.core.share", "share"),
    "get_env": ("jupyter_remote.worker.context", "get_env"),
}

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension", *_LAZY]

if TYPE_CHECKING:
    from jupyter_remote.core.clusters import Cluster, cluster
    from jupyter_remote.core.functions import RemoteFunction, function, remote
    from jupyter_remote.core.jobs import submit
    from jupyter_remote.core.maps import any_failed
    from jupyter_remote.core.refs import RemoteRef, get
    from jupyter_remote.core.share import share
    from jupyter_remote.worker.context import get_env


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'jupyter_remote' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython) -> None:
    """``%load_ext jupyter_remote``: register ``%%remote`` and ``%remote``."""
    from jupyter_remote.ipython.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from jupyter_remote.ipython.magics import unload_ipython_extension as unload

    unload(ipython)
