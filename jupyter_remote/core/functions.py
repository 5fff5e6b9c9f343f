"""``RemoteFunction``: call / remote / map / starmap / enqueue a function on a cluster.

The function travels by value when it was defined in the notebook (or in a module next to
it), or as a dependency when it already lives on the cluster (defined in a ``%%remote``
cell). On a worker, a ``RemoteFunction`` is just its function: calling it there runs it
in place.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

from jupyter_remote import config
from jupyter_remote.core import calls, views
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.clusters import cluster as resolve_cluster
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.exceptions import RemoteTaskError
from jupyter_remote.wire import payload
from jupyter_remote.wire.failures import unpack_exception
from jupyter_remote.worker import runner

_ERRORS = ("raise", "return")


class RemoteFunction:
    """A function bound to a cluster; see :func:`function`."""

    def __init__(
        self,
        fn: Callable | RemoteRef,
        cluster: str | Cluster | None = None,
        reqs: list[str] | str | None = None,
        *,
        name: str | None = None,
        resources: dict | None = None,
        cache: bool = False,
    ):
        if not callable(fn) and not isinstance(fn, RemoteRef):
            raise TypeError(
                f"jupyter_remote.function expects a function (or a RemoteRef of one), "
                f"got {type(fn).__name__}"
            )
        self.fn = fn
        self._cluster = cluster
        self.reqs = reqs
        self.resources = dict(resources or {})
        self.cache = cache
        self._cached: dict[str, Any] = {}  # key -> future, with cache=True
        if name is None:
            name = getattr(fn, "name", None) if isinstance(fn, RemoteRef) else None
            name = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function")
        self.name = name
        if callable(fn):
            functools.update_wrapper(self, fn, updated=())

    # -- binding -----------------------------------------------------------------------
    @property
    def cluster(self) -> Cluster:
        if isinstance(self._cluster, Cluster):
            return self._cluster
        if self._cluster is None and isinstance(self.fn, RemoteRef) and self.fn.cluster:
            return self.fn.cluster
        return resolve_cluster(self._cluster)

    def to(self, cluster: str | Cluster, reqs: list[str] | str | None = None) -> RemoteFunction:
        """A copy of this function bound to another cluster (and requirements)."""
        return RemoteFunction(
            self.fn, cluster, reqs if reqs is not None else self.reqs,
            name=self.name, resources=self.resources, cache=self.cache,
        )

    def __jupyter_remote_future__(self):
        return self.fn._future if isinstance(self.fn, RemoteRef) else None

    def __reduce__(self):
        # On a worker a RemoteFunction is its function.
        if isinstance(self.fn, RemoteRef):
            return self.fn.__reduce__()
        return (payload.identity, (self.fn,))

    def __repr__(self) -> str:
        where = self._cluster.name if isinstance(self._cluster, Cluster) else (self._cluster or "default cluster")
        return f"<RemoteFunction {self.name} on {where}>"

    # -- calls -------------------------------------------------------------------------
    def _label(self, what: str = "call") -> str:
        return f"{self.name}() {what}" if what != "call" else f"{self.name}()"

    def _call(self, args: tuple, kwargs: dict) -> tuple[calls.Call, Any]:
        call = calls.Call(self.cluster, self._label(), "call")
        spec = {"kind": "call", "fn": self.fn, "args": args, "kwargs": kwargs}
        env = self._env()
        key = self._cache_key(spec) if self.cache else None
        if key is not None and env is not None:
            key += f"-{env['hash']}"
        future = call.submit(
            spec, names=_arg_names(args, kwargs), resources=self.resources, key=key, env=env
        )
        if key is not None:
            # Holding one future keeps the result on the cluster: an identical call later
            # gets the same key, which Dask answers from memory without running it again.
            from distributed import Future

            self._cached[key] = Future(future.key, future.client)  # a reference of our own
            while len(self._cached) > self.cache_size:
                self._cached.pop(next(iter(self._cached))).release()
        return call, future

    def _env(self) -> dict | None:
        """The env spec of ``reqs``, read now: an edited wheel gets a new environment."""
        if not self.reqs:
            return None
        from jupyter_remote.core import environments

        return environments.resolve(self.reqs)

    cache_size = 128  # results a cached function keeps alive on the cluster

    def _cache_key(self, spec: dict) -> str:
        return f"remote-cached-{self.name}-{calls.content_key(spec)}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run remotely and return the value; the remote output prints here meanwhile."""
        call, future = self._call(args, kwargs)
        view = views.function_view()
        view.start(call)
        try:
            [value] = calls.wait(call, [], fetch=[future], on_lines=view.on_lines)
        except BaseException:
            call.finish("failed")
            view.finish(call)
            raise
        finally:
            future.release()
        call.finish("done")
        view.finish(call)
        return value

    def remote(self, *args: Any, **kwargs: Any) -> RemoteRef:
        """Start the call and return a :class:`RemoteRef` to its result at once."""
        call, future = self._call(args, kwargs)
        call.finish_when_done()
        return RemoteRef(future, self.cluster, name=f"{self.name}(...)", call=call)

    def map(self, *iterables: Iterable, errors: str = "raise", timeout: float | None = None,
            batch_size: int | None = None) -> list:
        """Call the function on each item (like ``map``) and return the results in order.

        Items are grouped into batches, so many small items cost few Dask tasks. With
        ``errors="return"``, a failed item yields its exception in its place.
        """
        return self.starmap(zip(*iterables), errors=errors, timeout=timeout, batch_size=batch_size)

    def starmap(self, iterable: Iterable, errors: str = "raise", timeout: float | None = None,
                batch_size: int | None = None) -> list:
        """Like :meth:`map`, with each item an argument tuple."""
        if errors not in _ERRORS:
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        items: list[tuple[int, tuple, dict]] = [(i, tuple(args), {}) for i, args in enumerate(iterable)]
        if not items:
            return []
        size = batch_size or self._batch_size(len(items))
        call = calls.Call(self.cluster, self._label("map"), "map")
        call.log.total = len(items)
        futures = []
        env = self._env()
        for b, start in enumerate(range(0, len(items), size)):
            chunk = items[start : start + size]
            futures.append(
                call.submit(
                    {"kind": "batch", "fn": self.fn, "items": chunk, "batch": b},
                    resources=self.resources, env=env,
                )
            )
        view = views.function_view()
        view.start(call)
        try:
            batches = calls.wait(
                call, [], fetch=futures, timeout=timeout, on_lines=view.on_lines
            )
        except BaseException:
            call.finish("failed")
            view.finish(call)
            raise
        finally:
            for f in futures:
                f.release()
        call.finish("done")
        view.finish(call)
        results: list = []
        for batch in batches:
            for ok, value in batch:
                if ok:
                    results.append(value)
                else:
                    exc = unpack_exception(RemoteTaskError(value), f"{self.name}() item {len(results)}")
                    if errors == "raise":
                        exc.add_note(
                            f"item {len(results)} of {len(items)} failed; pass errors='return' "
                            "to get the other results with the exceptions in place"
                        )
                        raise exc
                    results.append(exc)
        return results

    def _batch_size(self, n: int) -> int:
        configured = config.get("map.batch-size", "auto")
        if configured not in (None, "auto"):
            return max(1, int(configured))
        tasks = self.cluster.total_threads() * int(config.get("map.tasks-per-thread", 4))
        return max(1, math.ceil(n / max(1, tasks)))

    def enqueue(self, *args: Any, **kwargs: Any) -> RemoteRef:
        """Queue a call: calls through ``enqueue`` of functions with the same ``name`` run one
        at a time, in submission order, across every notebook using the cluster."""
        from distributed import Lock, Variable

        cluster = self.cluster
        client = cluster.client
        qname = f"jupyter-remote-queue-{self.name}"
        call = calls.Call(cluster, self._label("queued call"), "queued")
        spec = {"kind": "call", "fn": self.fn, "args": args, "kwargs": kwargs}
        with Lock(f"{qname}-lock", scheduler_rpc=client.scheduler, loop=client.loop):
            variable = Variable(qname, client=client)
            try:
                previous = variable.get(timeout=0)
            except TimeoutError:
                previous = None
            stage = call.submit(spec, names=_arg_names(args, kwargs), resources=self.resources,
                                fn=runner.run_queued, extra=[previous], env=self._env())
            variable.set(stage)
        future = client.submit(runner.unwrap, stage, key=f"remote-queued-{call.id}-value", pure=False)
        call.futures.append(future)
        call.finish_when_done()
        return RemoteRef(future, cluster, name=f"{self.name}(...)", call=call)


def _arg_names(args: tuple, kwargs: dict) -> dict[str, Any]:
    names = {f"argument {i}": a for i, a in enumerate(args)}
    names.update({f"argument {k}=": v for k, v in kwargs.items()})
    return names


def function(
    fn: Callable | RemoteRef,
    cluster: str | Cluster | None = None,
    reqs: list[str] | str | None = None,
    *,
    name: str | None = None,
    resources: dict | None = None,
    cache: bool = False,
) -> RemoteFunction:
    """Bind ``fn`` to a cluster: calling the result runs ``fn`` remotely.

    Parameters
    ----------
    fn
        A function or class (defined in the notebook, in a module next to it, or installed),
        or a ``RemoteRef`` of a function that already lives on the cluster.
    cluster
        A cluster name or address, or a ``Cluster``; ``None`` means the default cluster.
    reqs
        pip requirements (``"pkg==1.2"``), paths of local wheels or project folders: each
        call runs in an environment with them on top of the workers' own packages, built
        once per host and cached by content (see ``docs/requirements.md``).
    name
        Name used in logs and for ``enqueue``'s queue (default: the function's qualname).
    resources
        Dask worker resources each call needs, e.g. ``{"GPU": 1}``.
    """
    return RemoteFunction(fn, cluster, reqs, name=name, resources=resources, cache=cache)


def remote(
    fn: Callable | None = None,
    *,
    cluster: str | Cluster | None = None,
    reqs: list[str] | str | None = None,
    name: str | None = None,
    resources: dict | None = None,
    cache: bool = False,
):
    """Decorator form of :func:`function`: ``@remote`` or ``@remote(cluster="gpu")``."""
    if isinstance(fn, str):  # @remote("gpu")
        cluster, fn = fn, None

    def wrap(f: Callable) -> RemoteFunction:
        return RemoteFunction(f, cluster, reqs, name=name, resources=resources, cache=cache)

    return wrap(fn) if fn is not None else wrap


__all__ = ["RemoteFunction", "function", "remote"]
