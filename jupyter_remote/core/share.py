"""Data by content hash: ``jupyter_remote.share(value)`` and the automatic sharing of large
inputs.

A shared value lives on the cluster under the Dask key ``remote-share-<digest>``, the digest
of its content (:func:`jupyter_remote.core.digest.value_digest`: numpy and pandas buffers are
hashed where they lie, never pickled for it). Sharing asks the scheduler first, in one step
that also holds the value for this client (:func:`jupyter_remote.on_scheduler.hold_present`):
if an equal value is there already (shared earlier by this notebook or by another client of
the cluster), only the key crossed the network; else the value is scattered once under that
key. Either way the notebook gets a ``RemoteRef`` with the same key, which later calls use as
a dependency (worker to worker, never through the notebook again).

Inputs of cells and calls larger than ``jupyter-remote.share.threshold`` (default 1 MB) go
through :func:`share_large`, so an array used by ten cells crosses the network once: the
notebook holds the refs of the last 16 values it shared this way on each cluster (an
explicit ``share`` is held by the ref it returns, as any ref).
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import Any

from jupyter_remote import config, on_scheduler
from jupyter_remote.core import digest
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.clusters import cluster as resolve_cluster
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.wire.payload import as_future

PREFIX = "remote-share-"


def share(value: Any, cluster: str | Cluster | None = None) -> RemoteRef:
    """Put ``value`` on the cluster once, under a key derived from its content.

    Sharing an equal value again, from this notebook or another one using the cluster, sends
    only the hash and returns a ref with the same key. A ``RemoteRef`` (or a ``Future``) is
    returned as it is: it is on the cluster already.

    Parameters
    ----------
    value
        Any picklable value; numpy arrays and pandas objects are hashed by their buffers.
    cluster
        A cluster name, address or ``Cluster``; None: the default cluster.
    """
    if isinstance(value, RemoteRef):
        return value
    found = cluster if isinstance(cluster, Cluster) else resolve_cluster(cluster)
    if as_future(value) is not None:
        return RemoteRef(as_future(value), found)
    key = PREFIX + digest.value_digest(value)
    client = found.client
    from distributed import Future

    held = client.run_on_scheduler(on_scheduler.hold_present, [key], client.id)
    if held:  # on the cluster already: the scheduler holds it for us now
        # state="memory" as distributed's own Variable and Queue pass a held key's state
        future: Any = Future(key, client, state="memory")  # type: ignore[arg-type]
    else:
        future = client.scatter({key: value}, hash=False)[key]
    return RemoteRef(future, found, name=f"shared {key[len(PREFIX):][:12]}",
                     info=_info(value))


def _info(value: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(value).__qualname__}
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        info["shape"] = list(shape)
        info["dtype"] = str(getattr(value, "dtype", ""))
    from dask.sizeof import sizeof

    info["nbytes"] = int(sizeof(value))
    return info


def threshold() -> int | None:
    """``jupyter-remote.share.threshold`` in bytes; None when automatic sharing is off."""
    configured = config.get("share.threshold", "1MB")
    if configured in (None, "", False):
        return None
    if isinstance(configured, int):
        return configured
    from dask.utils import parse_bytes

    return int(parse_bytes(str(configured)))


def share_large(values: dict[str, Any], cluster: Cluster) -> dict[str, Any]:
    """``values`` with those larger than the threshold replaced by shared refs.

    Sizes come from ``dask.sizeof`` (cheap: it reads ``nbytes`` and lengths, it does not
    pickle); remote values, functions and modules stay as they are.
    """
    limit = threshold()
    if limit is None:
        return values
    from dask.sizeof import sizeof

    out = dict(values)
    for name, value in values.items():
        if as_future(value) is not None or callable(value):
            continue
        try:
            big = sizeof(value) > limit
        except Exception:
            continue
        if big:
            out[name] = _held(share(value, cluster), cluster)
    return out


# The notebook holds the refs of what it shared automatically (the last few per cluster):
# without a holder the cluster would drop the value when the call ends, and the next cell
# using the same array would send it again.
KEEP = 16
_kept: weakref.WeakKeyDictionary[Cluster, collections.OrderedDict[str, RemoteRef]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def release_held(cluster: Cluster | None = None) -> int:
    """Let go of the automatically shared values held for ``cluster`` (None: every cluster);
    how many (``%remote free all``)."""
    with _lock:
        targets = [cluster] if cluster is not None else list(_kept)
        refs = [ref for c in targets for ref in _kept.pop(c, {}).values()]
    for ref in refs:
        ref.release()
    return len(refs)


def _held(ref: RemoteRef, cluster: Cluster) -> RemoteRef:
    with _lock:
        kept = _kept.setdefault(cluster, collections.OrderedDict())
        kept[ref.key] = ref
        kept.move_to_end(ref.key)
        while len(kept) > KEEP:
            kept.popitem(last=False)
    return ref


def with_shared(function: Any, shared: dict[str, Any]) -> Any:
    """A copy of a ``RemoteFunction`` that gets ``shared`` as keyword arguments on every call.

    Each value is shared first (a ``RemoteRef`` stays as it is), so what rides inside each
    batch of a ``map`` is a key: Dask brings the value to each worker process once and hands
    the same object to every batch there.
    """
    import functools

    if not isinstance(shared, dict) or not all(isinstance(k, str) for k in shared):
        raise TypeError(
            f"shared= expects a dict of keyword argument names to values, got {shared!r}; "
            'e.g. f.map(items, shared={"table": big})'
        )
    if not callable(function.fn):
        raise TypeError(
            f"shared= needs a function the notebook holds; {function.name} lives on the "
            "cluster (defined in a %%remote cell): pass the value as an argument instead"
        )
    cluster = function.cluster
    refs = {name: share(value, cluster) for name, value in shared.items()}
    bound = functools.partial(function.fn, **refs)
    return type(function)(bound, function._cluster, function.reqs, name=function.name,
                          resources=function.resources, cache=function.cache)
