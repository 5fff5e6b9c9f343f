"""Named functions: ``function(fn, name="prep").save()`` and ``function(name="prep")``.

A saved function is the function pickled by value here (as every call sends it: notebook
functions and modules next to the notebook travel by value), with its requirements and
resources, stored by a worker in the result store (:mod:`jupyter_remote.worker.saved`) under
its name and a version number. Any later kernel, notebook or machine using the same store
loads it by name, ``prep`` (the latest) or ``prep@1``, and calls it like any
``RemoteFunction``. The function's bytes come to the notebook on load (they are code, small),
never the values it computes.
"""

from __future__ import annotations

import os
import time
from typing import Any

import cloudpickle

from jupyter_remote.core import calls
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.clusters import cluster as resolve_cluster
from jupyter_remote.core.memo import store_spec
from jupyter_remote.exceptions import JupyterRemoteError
from jupyter_remote.worker import saved as worker_saved


class UnknownFunctionError(JupyterRemoteError, KeyError):
    """A saved-function name that is not in the store."""

    def __init__(self, name: str, known: list[str], url: str):
        self.name = name
        self.known = known
        super().__init__(
            f"no function is saved as {name!r} in the store {url}; saved functions: "
            f"{', '.join(known) or '(none)'}. Save one with "
            f"jupyter_remote.function(fn, name={name.partition('@')[0]!r}).save(), or point "
            "jupyter-remote.store.url at the store it was saved in."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def save(function: Any) -> str:
    """Store ``function`` (a ``RemoteFunction``) under its name; ``NAME@VERSION``."""
    data, deps = calls.dumps({"fn": function.fn, "reqs": function.reqs,
                              "resources": function.resources})
    if deps:
        raise TypeError(
            f"{function.name} lives on the cluster (a function a %%remote cell defined): only "
            "a function the notebook holds can be saved. Define it in a notebook cell, then save."
        )
    meta = {
        "label": function.name, "saved": time.time(), "notebook": notebook_name(),
        "reqs": _reqs_text(function.reqs), "size": len(data),
    }
    client = function.cluster.client
    version = client.submit(worker_saved.save, store_spec(), function.name, data, meta,
                            pure=False).result()
    return f"{function.name}@{version}"


def load(name: str, cluster: str | Cluster | None = None) -> dict[str, Any]:
    """What was saved as ``name`` (``prep`` or ``prep@2``): ``fn``, ``reqs``, ``resources``
    and ``name``, read from the store by a worker of ``cluster``."""
    base, _, version = name.partition("@")
    if version and not version.isdigit():
        raise ValueError(f"a saved function is NAME or NAME@VERSION (a number), got {name!r}")
    found = cluster if isinstance(cluster, Cluster) else resolve_cluster(cluster)
    spec = store_spec()
    body, known = found.client.submit(worker_saved.load, spec, base,
                                      int(version) if version else None, pure=False).result()
    if body is None:
        raise UnknownFunctionError(name, known, spec["url"])
    saved: dict[str, Any] = cloudpickle.loads(body)
    return {**saved, "name": base}


def listing(cluster: Any) -> list[dict[str, Any]]:
    """Every saved version, by name then version (for ``%remote functions``)."""
    return cluster.client.submit(worker_saved.versions, store_spec(), pure=False).result()


def notebook_name() -> str:
    """The notebook saving (Jupyter sets JPY_SESSION_NAME for a kernel it starts)."""
    path = os.environ.get("JPY_SESSION_NAME") or ""
    return os.path.basename(path) or "-"


def _reqs_text(reqs: Any) -> str:
    if not reqs:
        return "-"
    return reqs if isinstance(reqs, str) else " ".join(map(str, reqs))
