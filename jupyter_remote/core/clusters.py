"""Cluster names -> :class:`Cluster`: the embedded local cluster, addresses, config entries.

A name resolves, in order, to: a cluster already known in this process (``local``, one
connected with ``connect``), an address (``tcp://``, ``tls://``, ``ucx://``, ``inproc://``),
an entry of dask config ``jupyter-remote.clusters.NAME`` (``address:`` or ``factory:`` plus
``kwargs:``). Nothing connects or starts until ``Cluster.client`` is first used.

What a cluster tells about itself (``status``, ``info``, ``dashboard_link``) answers at once
from what is known, never by waiting on a scheduler: a dead cluster shows as
``unreachable since HH:MM:SS`` (the moment the notebook first saw its connection gone),
and ``info`` asks a live scheduler for its workers with a bound of ``INFO_TIMEOUT``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import dask.config

from jupyter_remote import config, on_scheduler
from jupyter_remote._compat import zero_interval
from jupyter_remote.core import embedded as local_cluster
from jupyter_remote.core import registry, versions
from jupyter_remote.core.cleanup import ShutdownMixin
from jupyter_remote.exceptions import ClusterConnectError, UnknownClusterError

logger = logging.getLogger(__name__)

LOCAL = "local"
_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")
INFO_TIMEOUT = 1.0  # seconds `info` may wait on a live scheduler for its worker listing

_lock = threading.RLock()
_clusters: dict[str, Cluster] = {}
_default: str | None = None


def is_address(name: str) -> bool:
    return name.startswith(_SCHEMES)


class Cluster(ShutdownMixin):
    """A Dask cluster known by name; connects (or starts) on first use.

    Parameters
    ----------
    name
        The name users type (``%%remote NAME``).
    address
        Scheduler address of an existing cluster.
    factory, kwargs
        An import path of a cluster class (``distributed.LocalCluster``,
        ``dask_jobqueue.SLURMCluster``) and its keyword arguments, started on first use.
    embedded
        The embedded local cluster: started once per kernel, tuned for interactive
        latency, closed when the kernel exits.
    security
        A ``distributed.Security`` for a ``tls://`` address (None: Dask's own
        ``distributed.comm.tls.*`` config).
    """

    def __init__(
        self,
        name: str,
        *,
        address: str | None = None,
        factory: str | None = None,
        kwargs: dict | None = None,
        embedded: bool = False,
        source: str = "address",
        security: Any = None,
    ):
        self.name = name
        self.security = security
        self.address = address
        self.factory = factory
        self.kwargs = dict(kwargs or {})
        self.embedded = embedded
        self.source = source
        self.interactive = False
        self.error: str | None = None
        self.unreachable_since: float | None = None  # when its connection was seen gone
        self._dashboard: str | None = None
        self._client = None
        self._cluster: Any = None  # the deployment object we started, if any
        self._router = None
        self._lock = threading.Lock()

    # -- connection --------------------------------------------------------------------
    @property
    def client(self):
        """The ``distributed.Client`` of this cluster, connecting or starting it if needed;
        a reconnecting one is waited for within ``connect-timeout`` in all (no second connect)."""
        if self._client is not None and self._client.status == "running":
            return self._client
        with self._lock:
            timeout = dask.utils.parse_timedelta(config.get("connect-timeout"))
            deadline = time.monotonic() + timeout
            if self._client is not None and self._client.status == "connecting":
                self._await_reconnect(deadline, timeout)
            if self._client is None or self._client.status != "running":
                self._client = self._connect(max(0.5, deadline - time.monotonic()))
        return self._client

    def _await_reconnect(self, deadline: float, timeout: float) -> None:  # or raise
        since = time.strftime("%H:%M:%S", time.localtime(self.mark_unreachable()))
        while self._client is not None and self._client.status == "connecting":
            if time.monotonic() >= deadline:
                raise ClusterConnectError(
                    f"cluster {self.name!r} ({self.address}) is unreachable since {since}: its "
                    f"scheduler did not answer within the connect timeout ({timeout:g} s). Check "
                    "that it runs and is reachable, or raise jupyter-remote.connect-timeout.")
            time.sleep(0.05)

    connected = property(lambda self: self._client is not None and self._client.status == "running")

    def _connect(self, timeout: float):
        from distributed import Client

        start = time.monotonic()
        try:
            if self.embedded:
                self._cluster = local_cluster.start(at_exit=close_all)
                self.interactive = bool(config.get("local.interactive"))
                target: Any = self._cluster
            elif self.factory:
                self._cluster = import_factory(self.factory)(**self.kwargs)
                target = self._cluster
            else:
                target = self.address
            client = Client(target, timeout=timeout, set_as_default=False, security=self.security)
            if self.embedded:
                startup = dask.utils.parse_timedelta(config.get("local.startup-timeout"))
                client.wait_for_workers(len(self._cluster.worker_spec), timeout=startup)
        except ClusterConnectError:
            raise
        except KeyboardInterrupt:
            self._abandon_start()
            raise
        except (OSError, TimeoutError) as exc:
            self.error = str(exc)
            raise ClusterConnectError(
                f"could not connect to cluster {self.name!r} at {self.address or self.factory} "
                f"within the connect timeout ({timeout:g} s, after "
                f"{time.monotonic() - start:.1f} s): {exc}. Check that the scheduler is running "
                "and reachable from this machine, or raise jupyter-remote.connect-timeout."
            ) from None
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise ClusterConnectError(
                f"could not start cluster {self.name!r} ({self.factory or 'embedded'}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.error = None
        self.unreachable_since = None
        self.address = client.scheduler.address
        try:  # kept: asking a reconnecting client for it later would wait on the scheduler
            self._dashboard = client.dashboard_link
        except Exception:
            self._dashboard = None
        registry.announce(self)  # registry hook: the sidebar lists this kernel's cluster
        versions.check(client, self.name)  # warns once if pickles cannot cross safely
        _register_plugin(client)
        if self.interactive:
            zero_interval(client.scheduler_comm)
        return client

    def _abandon_start(self) -> None:
        """An interrupted start leaves nothing running behind (the next use starts afresh)."""
        started, self._cluster = self._cluster, None
        if started is not None:
            try:
                started.close()
            except Exception:
                logger.debug("closing a half-started cluster failed", exc_info=True)

    @property
    def router(self):
        """The log router of this cluster's client (subscribed on first use)."""
        from jupyter_remote.core.logs import LogRouter

        client = self.client
        with self._lock:
            if self._router is None or self._router.client is not client:
                self._router = LogRouter(client)
            return self._router

    # -- information -------------------------------------------------------------------
    def mark_unreachable(self) -> float:  # the first sighting of a lost scheduler wins
        if self.unreachable_since is None:
            self.unreachable_since = time.time()
        return self.unreachable_since

    @property
    def status(self) -> str:
        """``running``, ``not connected``, ``error`` or ``unreachable since HH:MM:SS`` (a
        client not running has lost its scheduler: it is ``connecting`` again, or closed)."""
        if self._client is None:
            return "error" if self.error else "not connected"
        if self._client.status == "running":
            self.unreachable_since = None
            return "running"
        since = time.strftime("%H:%M:%S", time.localtime(self.mark_unreachable()))
        return f"unreachable since {since}"

    @property
    def dashboard_link(self) -> str | None:
        return self._dashboard if self._client is not None else None

    def info(self) -> dict[str, Any]:
        """Name, address, status, workers, threads and memory (without connecting)."""
        out: dict[str, Any] = {
            "name": self.name,
            "address": self.address,
            "status": self.status,
            "source": self.source,
            "dashboard": self.dashboard_link,
        }
        if self.embedded and self._cluster is not None:
            out["log"] = local_cluster.log_path()
        if self.connected and self._client is not None:
            client = self._client
            with contextlib.suppress(Exception):  # slow or just lost: the status tells
                identity = client.sync(client.scheduler.identity, n_workers=-1,
                                       callback_timeout=INFO_TIMEOUT)
                out.update(worker_totals(identity.get("workers", {})))
        return out

    def total_threads(self) -> int:
        return sum(self.client.nthreads().values()) or 1

    def close(self) -> None:
        registry.withdraw(self)  # registry hook
        with self._lock:
            if self._router is not None:
                self._router.close()
                self._router = None
            if self._client is not None:  # the embedded cluster's workers: closed, not killed
                local_cluster.close_workers(self._client, self._cluster if self.embedded else None)
                self._client.close()
                self._client = None
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None

    def __repr__(self) -> str:
        return f"<Cluster {self.name!r} {self.address or self.factory or ''} ({self.status})>"


def worker_totals(workers: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """``workers``, ``threads`` and ``memory`` of a scheduler's worker listing
    (``scheduler_info()["workers"]`` or ``identity()["workers"]``)."""
    return {
        "workers": len(workers),
        "threads": sum(int(w.get("nthreads", 0) or 0) for w in workers.values()),
        "memory": sum(int(w.get("memory_limit", 0) or 0) for w in workers.values()),
    }


def _register_plugin(client: Any) -> None:
    """The worker plugin on every worker, now and later (capture, cleanup), and no stealing
    of a cell's takes: once per connect, idempotent."""
    from jupyter_remote.worker.plugin import NAME, RemotePlugin

    client.register_plugin(RemotePlugin(), name=NAME)
    client.run_on_scheduler(on_scheduler.keep_takes_in_place)


def import_factory(path: str) -> Any:
    """The cluster class (or function) named by an import path such as
    ``dask_jobqueue.SLURMCluster``."""
    module, _, attr = path.rpartition(".")
    if not module:
        raise ClusterConnectError(f"factory {path!r} is not an import path like 'pkg.Class'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ClusterConnectError(
            f"cluster factory {path!r} cannot be imported ({exc}); install the package that "
            "provides it in the notebook's environment"
        ) from None


# -- names ---------------------------------------------------------------------------------
def known_names() -> list[str]:
    with _lock:
        names = dict.fromkeys([LOCAL, *_clusters])
        own = {registry.kernel_name(c) for c in _clusters.values()}  # listed by their title
    names.update(dict.fromkeys(config.get("clusters") or {}))
    names.update(dict.fromkeys(n for n in registry.names() if n not in own))  # registry hook
    return list(names)


def _from_config(name: str) -> Cluster | None:
    entry = (config.get("clusters") or {}).get(name)
    if entry is None:
        return None
    if not isinstance(entry, dict) or not ("address" in entry or "factory" in entry):
        raise ClusterConnectError(
            f"dask config jupyter-remote.clusters.{name} must hold `address:` or `factory:` "
            f"(plus `kwargs:`); got {entry!r}"
        )
    return Cluster(
        name,
        address=entry.get("address"),
        factory=entry.get("factory"),
        kwargs=entry.get("kwargs"),
        source="config",
    )


def cluster(name_or_address: str | None = None) -> Cluster:
    """The :class:`Cluster` for a name or address; ``None`` means the default cluster.

    Raises :class:`UnknownClusterError` for a name that is not known.
    """
    name = name_or_address or default_name()
    with _lock:
        found = _clusters.get(name)
        if found is not None and registry.superseded(found):  # registry hook: shut down/replaced
            _clusters.pop(name)
            found.close()
            found = None
        if found is not None:
            return found
        for mine in _clusters.values():  # this kernel's own cluster, by its registry key
            if registry.kernel_name(mine) == name:
                return mine
        if name == LOCAL:
            found = Cluster(LOCAL, embedded=True, source="embedded")
        elif is_address(name):
            found = Cluster(name, address=name, source="address")
        else:
            found = _from_config(name)
        if found is None and (entry := registry.lookup(name)) is not None:  # registry hook
            found = Cluster(name, address=entry["address"], source=entry.get("source", "registry"))
        if found is None:
            raise UnknownClusterError(name, known_names())
        _clusters[name] = found
        return found


def connect(address: str, name: str | None = None, security: Any = None) -> Cluster:
    """Register ``address`` under ``name`` (default: the address) and connect to it, with
    ``security`` (a ``distributed.Security``) for ``tls://``."""
    if not is_address(address):
        raise ClusterConnectError(
            f"{address!r} is not a scheduler address; expected something like tcp://host:8786"
        )
    name = name or address
    found = Cluster(name, address=address, source="connected", security=security)
    _ = found.client  # fail now, with the connect error, rather than at first use
    with _lock:
        old = _clusters.get(name)
        _clusters[name] = found
    if old is not None and old is not found:
        old.close()
    return found


def use(name: str) -> Cluster:
    """Make ``name`` the default cluster of this process (checked, not connected)."""
    global _default
    found = cluster(name)
    _default = found.name
    return found


def default_name() -> str:
    return _default or config.get("default-cluster") or LOCAL


def all_clusters() -> list[Cluster]:
    """Every cluster known here: those in use and those defined in config."""
    out = []
    for name in known_names():
        with contextlib.suppress(Exception):
            out.append(cluster(name))
    return out


@atexit.register
def close_all() -> None:
    """Close every client, and every cluster this process started."""
    with _lock:
        items = list(_clusters.values())
        _clusters.clear()
    for item in items:
        try:
            item.close()
        except Exception:
            logger.debug("closing %s failed", item, exc_info=True)
