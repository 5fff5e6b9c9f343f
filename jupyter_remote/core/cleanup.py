"""Cleaning up without restarting the kernel: free remote values, shut down clusters.

- :func:`free` drops refs from a notebook namespace and releases them on the cluster now
  (the scheduler forgets a value as soon as nobody else holds it: another ref, a published
  name, a running call that uses it), so memory comes back at once instead of whenever the
  garbage collector gets to the notebook's objects (``%remote free all`` also lets go of
  the large inputs the notebook shared automatically: :func:`.share.release_held`).
- :func:`shutdown` follows who owns a cluster: the embedded cluster and a config factory
  cluster this kernel started are closed (a later ``%%remote`` starts a fresh one); a
  cluster this kernel only connected to is disconnected from (it keeps running for its
  other users); a cluster the sidebar (the Jupyter server) or another kernel owns is refused,
  naming the owner and where to shut it down instead.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_remote.core import registry
from jupyter_remote.exceptions import JupyterRemoteError
from jupyter_remote.wire.payload import as_future


class NotOwnerError(JupyterRemoteError, PermissionError):
    """Shutting down a cluster this kernel does not own."""


def free(namespace: dict[str, Any], names: list[str]) -> list[str]:
    """Release the refs bound to ``names`` (``["all"]``: every ref) and delete the names.

    Returns the names freed; a name that is not bound, or not bound to a remote value,
    raises ``KeyError``/``TypeError`` naming it, before anything is freed.
    """
    if names == ["all"]:
        names = [n for n, v in namespace.items() if not n.startswith("_") and _remote(v)]
    for name in names:
        if name not in namespace:
            raise KeyError(f"{name!r} is not bound in the notebook; `%remote refs` lists the refs")
        if not _remote(namespace[name]):
            raise TypeError(
                f"{name!r} is a {type(namespace[name]).__name__}, not a remote value: nothing "
                "to free on the cluster (`del` it to drop it here)"
            )
    for name in names:
        future = as_future(namespace.pop(name))
        if future is not None:
            future.release()
    return names


def _remote(value: Any) -> bool:
    return type(value).__name__ in ("RemoteRef", "RemoteFunction") and as_future(value) is not None


class ShutdownMixin:
    """What gives :class:`~jupyter_remote.core.clusters.Cluster` its ``shutdown()`` (kept
    here, with the ownership rules it follows)."""

    def shutdown(self) -> str:
        """Close this cluster if this kernel started it, else disconnect from it; a cluster
        the sidebar or another kernel owns is refused, naming the owner."""
        return shutdown(self)


def shutdown(cluster: Any) -> str:
    """Close ``cluster`` if this kernel started it, disconnect if it only connected;
    raise :class:`NotOwnerError` for the sidebar's and other kernels' clusters. Returns what
    happened, for the user."""
    source = getattr(cluster, "source", None)
    if source == "server":
        raise NotOwnerError(
            f"cluster {cluster.name!r} belongs to the Remote clusters sidebar (the Jupyter "
            "server started it), not to this notebook: shut it down there (Shut down… on its "
            f"card), or stop using it with `%remote use` of another cluster."
        )
    if source == "kernel":
        entry = registry.get(cluster.name) or {}
        owner = entry.get("notebook") or "a notebook"
        raise NotOwnerError(
            f"cluster {cluster.name!r} belongs to another kernel ({os.path.basename(owner)}, "
            f"process {entry.get('pid', '?')}), not to this one: shut it down from that "
            "notebook (`%remote shutdown`), or let it close with its kernel."
        )
    started = cluster.embedded or bool(getattr(cluster, "factory", None))
    cluster.close()
    if started:
        return (f"shut down cluster {cluster.name!r}: its workers and every value on them are "
                "gone; the next remote call starts a fresh one")
    return (f"disconnected from cluster {cluster.name!r} (it keeps running for its other "
            "users); the next remote call connects again")
