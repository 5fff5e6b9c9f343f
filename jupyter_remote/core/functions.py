"""``RemoteFunction``: call / remote / map / starmap / enqueue a function on a cluster.

The function travels by value when it was defined in the notebook (or in a module next to
it), or as a dependency when it already lives on the cluster (defined in a ``%%remote``
cell). On a worker, a ``RemoteFunction`` is just its function: calling it there runs it
in place.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jupyter_remote.core import calls, maps, placement, views
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.clusters import cluster as resolve_cluster
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.wire import payload
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
        workers: list[str] | str | None = None,
        gpu: str | None = None,
    ):
        if not callable(fn) and not isinstance(fn, RemoteRef):
            raise TypeError(
                f"jupyter_remote.function expects a function (or a RemoteRef of one), "
                f"got {type(fn).__name__}"
            )
        from jupyter_remote.core import gitreqs

        gitreqs.check_repo_reqs(reqs, fn)  # repo:PATH needs a function from git
        self.fn = fn
        self._cluster = cluster
        self.reqs = reqs
        self.resources = dict(resources or {})
        self.cache = cache
        self.workers = placement.check(workers, gpu)  # where calls may run (core/placement.py)
        self.gpu = gpu
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
            workers=self.workers, gpu=self.gpu,
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

    @contextlib.contextmanager
    def _placed(self, label: str) -> Iterator[RemoteFunction]:
        """While inside, calls run only where ``workers``/``gpu`` allow; yields the function
        with the resources to ask for (``gpu`` may add ``GPU: 1``), and with code from git
        pinned to the commit its ref names now."""
        here = self._pinned()
        if not self.workers and not self.gpu:
            yield here
            return
        with placement.placed(self.cluster, self.workers, self.gpu, label,
                              self.resources) as resources:
            placed = here._copy()
            placed.resources = dict(resources or {})
            yield placed

    def _copy(self) -> RemoteFunction:
        copied = RemoteFunction.__new__(RemoteFunction)  # (copy.copy would follow
        copied.__dict__.update(self.__dict__)  # __reduce__: a function on a worker)
        return copied

    def _pinned(self) -> RemoteFunction:
        """This function, its code from git pinned to the commit its ref names now."""
        from jupyter_remote.core import sources

        fn = sources.pinned(self.fn)
        if fn is self.fn:
            return self
        copied = self._copy()
        copied.fn = fn
        return copied

    def _call(self, args: tuple, kwargs: dict, stream: bool = False) -> tuple[calls.Call, Any]:
        with self._placed(self._label()) as placed:
            return placed._submit_call(args, kwargs, stream)

    def _submit_call(self, args: tuple, kwargs: dict,
                     stream: bool = False) -> tuple[calls.Call, Any]:
        call = calls.Call(self.cluster, self._label(), "call")
        env = self._env()
        from jupyter_remote.core.share import share_large  # big arguments cross once

        args = tuple(share_large({str(i): a for i, a in enumerate(args)}, call.cluster).values())
        kwargs = share_large(kwargs, call.cluster)
        if self.cache:  # answered from the result store when an identical call was stored
            from jupyter_remote.core import memo

            future = memo.submit_call(call, self.fn, args, kwargs, label=str(self.name),
                                      names=_arg_names(args, kwargs),
                                      resources=self.resources, env=env)
            return call, future
        # stream: a small value comes back on the call's stream (see calls.wait)
        spec = {"kind": "call", "fn": self.fn, "args": args, "kwargs": kwargs, "stream": stream}
        future = call.submit(spec, names=_arg_names(args, kwargs), resources=self.resources, env=env)
        return call, future

    def _env(self) -> dict | None:
        """The env spec of ``reqs``, read now: an edited wheel gets a new environment."""
        if not self.reqs:
            return None
        from jupyter_remote.core import environments, gitreqs

        return environments.resolve(self.reqs, repo=gitreqs.repo_of(self.fn))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run remotely and return the value; the remote output prints here meanwhile."""
        view = views.function_view()
        views.announce(view, self.cluster)
        call, future = self._call(args, kwargs, stream=True)
        view.start(call)
        try:
            [value] = calls.wait(call, [], fetch=[future], result_event=True,
                                 decode=calls.streamed_value, on_lines=view.on_lines)
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
            batch_size: int | None = None, shared: dict | None = None,
            max_parallel: int | None = None, target: str | None = None,
            post: Callable | None = None, init: Callable | None = None,
            get: bool = True) -> Any:
        """Call the function on each item (like ``map``) and return the results in order.

        Items are grouped into batches, so many small items cost few Dask tasks; a
        generator is read as batches are sent. With ``errors="return"``, a failed item
        yields its exception in its place; with ``"raise"``, the first failure is raised
        with its item's index and the rest of the map is cancelled. ``shared={"table": big}``
        gives every call ``table=big``, sent to each worker process once, never in a batch.

        ``max_parallel=N``: at most N items run at the same time. ``target``: how the items
        of one batch run on a worker: one after another (None), on a thread pool
        (``"threads"``, for I/O), as coroutines on one event loop (``"async"``, for
        ``async def`` functions) or in a pool of the worker's python processes, one per
        worker thread (``"processes"``, for pure-Python work on multi-threaded workers).
        ``post=g``: ``g(results)`` runs on the cluster and its value comes back instead of
        the results. ``init=h``: the items are ``h()``, made on the cluster.
        ``get=False``: a ``RemoteRef`` to the results (or to ``post``'s value).
        """
        if self.cache:  # each item answered from the result store, or run and stored
            from jupyter_remote.core import memo

            maps.check_errors(errors)
            plain = post is None and init is None and target is None and max_parallel is None
            return memo.map_calls(self._sharing(shared), zip(*iterables), errors=errors,
                                  plain=plain and get)
        items, star = (None, False) if init is not None and not iterables else maps.items_of(iterables)
        with self._placed(self._label("map")) as placed:
            return maps.run(placed._sharing(shared), items, star=star,
                            view=views.function_view(),
                            options=maps.Options(errors, timeout, batch_size, max_parallel,
                                                 target, post, get, init))

    def starmap(self, iterable: Iterable, errors: str = "raise", timeout: float | None = None,
                batch_size: int | None = None, shared: dict | None = None,
                max_parallel: int | None = None, target: str | None = None,
                post: Callable | None = None, get: bool = True) -> Any:
        """Like :meth:`map`, with each item an argument tuple."""
        if self.cache:  # each item answered from the result store, or run and stored
            from jupyter_remote.core import memo

            maps.check_errors(errors)
            plain = post is None and target is None and max_parallel is None
            return memo.map_calls(self._sharing(shared), iterable, errors=errors,
                                  plain=plain and get)
        with self._placed(self._label("map")) as placed:
            return maps.run(placed._sharing(shared), iterable, star=True,
                            view=views.function_view(),
                            options=maps.Options(errors, timeout, batch_size, max_parallel,
                                                 target, post, get))

    def split(self, x: Any, axis: int = -1, parts: int | None = None, *, get: bool = True,
              max_parallel: int | None = None, timeout: float | None = None) -> Any:
        """Run the function on ``parts`` contiguous pieces of ``x`` along ``axis`` and paste
        the results back in order, so that ``f.split(x) == f(x)`` for a function that works
        column by column (``axis=-1``) or row by row (``axis=0``).

        ``x``: a numpy array, a pandas DataFrame (rows for axis 0, columns for axis 1) or
        Series, a list, or a ``RemoteRef`` of one (then the pieces are cut on the cluster and
        nothing passes through the notebook). ``parts`` defaults to the cluster's worker
        threads; pieces differ in length by one at most. ``get=False``: a ``RemoteRef`` to
        the pasted result (pasted on the cluster too).
        """
        from jupyter_remote.core import forms

        with self._placed(self._label("split")) as placed:
            return forms.split(placed, x, axis=axis, parts=parts, get=get,
                               max_parallel=max_parallel, timeout=timeout,
                               view=views.function_view())

    def _sharing(self, shared: dict | None) -> RemoteFunction:
        if not shared:
            return self
        from jupyter_remote.core.share import with_shared

        return with_shared(self, shared)

    def save(self) -> str:
        """Store this function (by value, with its requirements and resources) in the result
        store under its name; ``jupyter_remote.function(name=...)`` loads it in any kernel
        using that store. Saving again makes a new version. Returns ``NAME@VERSION``."""
        from jupyter_remote.core import saved

        return saved.save(self)

    def enqueue(self, *args: Any, **kwargs: Any) -> RemoteRef:
        """Queue a call: calls through ``enqueue`` of functions with the same ``name`` run one
        at a time, in submission order, across every notebook using the cluster."""
        from distributed import Lock, Variable

        cluster = self.cluster
        client = cluster.client
        qname = f"jupyter-remote-queue-{self.name}"
        call = calls.Call(cluster, self._label("queued call"), "queued")
        here = self._pinned()
        spec = {"kind": "call", "fn": here.fn, "args": args, "kwargs": kwargs}
        with Lock(f"{qname}-lock", scheduler_rpc=client.scheduler, loop=client.loop):
            variable = Variable(qname, client=client)
            try:
                previous = variable.get(timeout=0)
            except TimeoutError:
                previous = None
            stage = call.submit(spec, names=_arg_names(args, kwargs), resources=self.resources,
                                fn=runner.run_queued, extra=[previous], env=here._env())
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
    fn: Callable | RemoteRef | str | None = None,
    cluster: str | Cluster | None = None,
    reqs: list[str] | str | None = None,
    *,
    name: str | None = None,
    resources: dict | None = None,
    cache: bool = False,
    workers: list[str] | str | None = None,
    gpu: str | None = None,
) -> RemoteFunction:
    """Bind ``fn`` to a cluster: calling the result runs ``fn`` remotely.

    Parameters
    ----------
    fn
        A function or class (defined in the notebook, in a module next to it, or installed),
        a ``RemoteRef`` of a function that already lives on the cluster, or a string naming
        where its code is: ``"git+URL@REF#path/in/repo.py:func"`` (or the web form
        ``"https://github.com/OWNER/REPO/blob/REF/path.py:func"``: cloned on the worker once
        per host and commit), ``"package.module:func"`` or ``"./file.py:func"``.
    cluster
        A cluster name or address, or a ``Cluster``; ``None`` means the default cluster.
    reqs
        pip requirements (``"pkg==1.2"``, ``"git+URL@REF"``: pinned to the commit the ref
        names at each call), paths of local wheels or project folders: each call runs in an
        environment with them on top of the workers' own packages, built once per host and
        cached by content (see the README, "Requirements that travel with the code"). For a
        function from git, ``"repo:requirements.txt"`` names a requirements file inside its
        repository.
    name
        Name used in logs, for ``enqueue``'s queue and by ``.save()`` (default: the
        function's qualname). Without ``fn``: load the function saved under ``name``
        (``"prep"``, the latest, or ``"prep@2"``) from the result store.
    resources
        Dask worker resources each call needs, e.g. ``{"GPU": 1}``.
    workers
        Run only on these workers (addresses, host names or worker names, like Dask's
        ``workers=``); a name that matches no worker fails at once, listing the workers.
    gpu
        ``"require"``: only on workers offering the ``GPU`` resource (fails at once if none
        does); ``"prefer"``: on GPU workers when the cluster has any, else on the others.
    """
    if isinstance(fn, str):  # where the code is: git, a module, a file (core/sources.py)
        from jupyter_remote.core import sources

        fn = sources.parse(fn)
    if fn is None:
        if name is None:
            raise TypeError("jupyter_remote.function needs a function, or name= of a saved one")
        from jupyter_remote.core import saved

        found = saved.load(name, cluster)
        return RemoteFunction(found["fn"], cluster, found["reqs"] if reqs is None else reqs,
                              name=found["name"], cache=cache, workers=workers, gpu=gpu,
                              resources=found["resources"] if resources is None else resources)
    return RemoteFunction(fn, cluster, reqs, name=name, resources=resources, cache=cache,
                          workers=workers, gpu=gpu)


def remote(
    fn: Callable | None = None,
    *,
    cluster: str | Cluster | None = None,
    reqs: list[str] | str | None = None,
    name: str | None = None,
    resources: dict | None = None,
    cache: bool = False,
    workers: list[str] | str | None = None,
    gpu: str | None = None,
):
    """Decorator form of :func:`function`: ``@remote`` or ``@remote(cluster="gpu")``."""
    if isinstance(fn, str):  # @remote("gpu")
        cluster, fn = fn, None

    def wrap(f: Callable) -> RemoteFunction:
        return RemoteFunction(f, cluster, reqs, name=name, resources=resources, cache=cache,
                              workers=workers, gpu=gpu)

    return wrap(fn) if fn is not None else wrap


__all__ = ["RemoteFunction", "function", "remote"]
