"""A ``%%remote`` cell, independent of IPython: source + namespace in, names to bind out.

The magic parses its arguments, calls :func:`run_cell` and binds ``CellResult.bound``;
everything else happens here: inputs, submission, the refs, functions the cell defines
(callable in later cells) and the ``--cache`` of identical runs (:class:`CellCache`).
"""

from __future__ import annotations

import builtins
import collections
import hashlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_remote import config
from jupyter_remote.core import analysis, calls
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.exceptions import EmptyCellError, UnknownInputError
from jupyter_remote.wire.events import LogLine


@dataclass
class CellResult:
    """What a remote cell produced.

    ``refs`` (or, with ``get``, ``values``) maps each bound name to its value's ref;
    ``display`` is the trailing expression's mime bundle, computed on the worker.
    """

    call: calls.Call
    refs: dict[str, RemoteRef] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    display: dict[str, str] | None = None
    worker: str | None = None
    reused: str | None = None  # with cache=True: the id of the earlier call whose result this is
    bound: dict[str, Any] = field(default_factory=dict)  # what to bind in the notebook


class RemoteDisplay:
    """Shows a mime bundle computed remotely, as if the value were here."""

    def __init__(self, bundle: dict[str, str]):
        self.bundle = bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        return dict(self.bundle)

    def __repr__(self) -> str:
        return self.bundle.get("text/plain", "")


def collect_inputs(
    source: str, namespace: dict[str, Any], filename: str, label: str
) -> tuple[analysis.CellAnalysis, dict[str, Any]]:
    """Analyse the cell and take its inputs from ``namespace``; fail on unknown names."""
    if not source.strip():
        raise EmptyCellError(
            f"{label} is empty: put the code to run remotely below the %%remote line"
        )
    found = analysis.analyze(source, filename)
    inputs: dict[str, Any] = {}
    missing: list[str] = []
    for name in found.inputs:
        if name in namespace:
            inputs[name] = namespace[name]
        elif not hasattr(builtins, name):
            missing.append(name)
    if missing and not found.star_import:
        raise UnknownInputError(missing, where=label)
    return found, inputs


def run_cell(
    source: str,
    namespace: dict[str, Any],
    cluster: Cluster,
    *,
    label: str = "remote cell",
    filename: str | None = None,
    outputs: list[str] | None = None,
    get: bool = False,
    wait: bool = True,
    resources: dict[str, float] | None = None,
    timeout: float | None = None,
    on_lines: Callable[[list[LogLine]], None] | None = None,
    on_call: Callable[[calls.Call], None] | None = None,
    env: dict[str, Any] | None = None,
    cache: bool = False,
    reqs: list[str] | None = None,
    requirements_file: str | None = None,
) -> CellResult:
    """Run ``source`` on one worker of ``cluster`` with inputs from ``namespace``.

    Every name the cell binds (or only ``outputs``) comes back as a :class:`RemoteRef`
    (or, with ``get``, as its value); ``bound`` of the result holds what to bind in the
    notebook: functions and classes the cell defines as :class:`RemoteFunction`s that run
    with the cell's requirements (``reqs``, ``requirements_file``). With ``wait=False`` the
    refs are returned at once and fill in when the cell finishes. ``on_call(call)`` runs once
    the call is submitted (for views); ``on_lines`` receives log lines while waiting. ``env``
    (an env spec from :func:`jupyter_remote.core.environments.resolve`) runs the cell in that
    environment. With ``cache``, an identical earlier run (see :class:`CellCache`) is reused
    instead of running again: ``reused`` of the result then names its call.
    """
    filename = filename or f"<{label}>"
    found, inputs = collect_inputs(source, namespace, filename, label)
    names = list(outputs) if outputs else found.outputs
    call = calls.Call(cluster, label, "cell")
    spec = {"kind": "cell", "source": source, "filename": filename, "inputs": inputs,
            "outputs": names, "required": list(outputs or ()), "get": get}
    key = CellCache.key(spec, inputs, env, resources) if cache else None
    reused = _reuse(CellCache.of(cluster).lookup(key), call, get, on_call) if key else None
    if reused is not None:
        reused.bound = _bindings(reused, get, function_reqs(reqs, requirements_file))
        return reused
    main = call.submit(spec, names=inputs, resources=resources, env=env)
    try:  # an interrupt before the wait below begins must cancel the cell too
        takes = {} if get else _takes(call, main, names, label)
        if on_call is not None:
            on_call(call)
    except KeyboardInterrupt:
        call.cancel()
        raise
    if not wait:
        result = _running(call, main, takes, key)
    else:
        result = _finished(call, main, takes, get, timeout, on_lines)
        if key is not None:
            CellCache.of(cluster).store(key, call, main, {n: r._future for n, r in result.refs.items()})
        main.release()
    result.bound = _bindings(result, get, function_reqs(reqs, requirements_file))
    return result


def function_reqs(reqs: list[str] | None, requirements_file: str | None) -> list[str] | None:
    """The requirements of a cell as ``reqs=`` of the functions it defines (which then run in
    the environment they were defined in)."""
    import os

    out = list(reqs or [])
    if requirements_file:
        out.append(f"-r {os.path.abspath(requirements_file)}")
    return out or None


def _bindings(result: CellResult, get: bool, reqs: list[str] | None) -> dict[str, Any]:
    """What the cell binds in the notebook: values (``get``), else refs, functions and
    classes callable (``f(x)`` in a later cell runs remotely)."""
    if get:
        return dict(result.values)
    from jupyter_remote.core.functions import RemoteFunction

    return {name: RemoteFunction(ref, ref.cluster, reqs, name=name)
            if ref.info.get("callable") else ref for name, ref in result.refs.items()}


def _takes(call: calls.Call, main: Any, names: list[str], label: str) -> dict[str, Any]:
    """One small task per bound name, handing its value to a Dask key of its own."""
    from jupyter_remote.worker import runner

    takes = {}
    for name in names:
        takes[name] = call.cluster.client.submit(
            runner.take,
            call.id,
            name,
            f"{name!r} of {label}",
            main,
            # one task prefix for every take: Dask learns at once that takes are
            # quick, so its work stealing leaves them on the worker holding the value
            key=f"remote-take-{call.id}-{name}",
            pure=False,
        )
    call.futures.extend(takes.values())  # cancelling the call cancels its refs too
    return takes


def _running(call: calls.Call, main: Any, takes: dict[str, Any], key: str | None) -> CellResult:
    """The result of a ``--no-wait`` cell: pending refs that fill in when it ends."""
    cluster = call.cluster
    result = CellResult(call)
    result.refs = {n: RemoteRef(f, cluster, name=n, call=call) for n, f in takes.items()}
    _fill_in_when_done(call, main, result.refs)
    call.finish_when_done()
    if key is not None:
        main.add_done_callback(
            lambda f: CellCache.of(cluster).store(key, call, f, takes)
            if f.status == "finished" else None
        )
    return result


def _finished(call: calls.Call, main: Any, takes: dict[str, Any], get: bool,
              timeout: float | None,
              on_lines: Callable[[list[LogLine]], None] | None) -> CellResult:
    """Wait for the cell; its refs (or values, with ``get``) and display."""
    try:
        # The cell is done when its description arrives on the log stream; the takes that
        # give each name its own key finish a moment later, on the same worker.
        [meta] = calls.wait(
            call, [], fetch=[main], result_event=not get, timeout=timeout, on_lines=on_lines
        )
    except BaseException:
        call.finish("cancelled" if main.status == "cancelled" else "failed")
        for f in takes.values():
            f.release()
        raise
    call.finish("done")
    result = CellResult(call, display=meta["display"], worker=meta["worker"])
    if get:
        result.values = meta["values"]
        return result
    for name, future in takes.items():
        info = meta["outputs"].get(name)
        if info is None:  # bound only on some paths, and not on this run
            future.release()
            continue
        result.refs[name] = RemoteRef(future, call.cluster, name=name,
                                      info={**info, "worker": meta["worker"]})
    return result


@dataclass
class _Run:
    """A finished cell kept for reuse: its description and references of its own to the
    futures behind it (the user's refs may be deleted or cancelled independently)."""

    call: str
    label: str
    main: Any
    takes: dict[str, Any]
    stored: float = field(default_factory=time.time)

    def alive(self) -> bool:
        return all(f.status not in ("error", "cancelled", "lost")
                   for f in (self.main, *self.takes.values()))

    def release(self) -> None:
        for future in (self.main, *self.takes.values()):
            future.release()


class CellCache:
    """Cells run with ``cache=True`` on one cluster, by what they would send.

    Two runs are identical when their source, the values of their inputs (refs by key),
    their outputs, ``get``, requirements and resources are. A run is reused while every
    value it produced is still on the cluster; the oldest runs are dropped beyond
    ``jupyter-remote.cache.size``. The cache lives in this process (a notebook's kernel).
    """

    _lock = threading.Lock()
    _of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # cluster -> its cache

    def __init__(self) -> None:
        self._runs: collections.OrderedDict[str, _Run] = collections.OrderedDict()

    @classmethod
    def of(cls, cluster: Cluster) -> CellCache:
        with cls._lock:
            found = cls._of.get(cluster)
            if found is None:
                found = cls._of[cluster] = cls()
            return found

    @staticmethod
    def key(spec: dict, inputs: dict, env: dict | None, resources: dict | None) -> str:
        # the file name holds the execution count, which changes on every run
        same = {k: v for k, v in spec.items() if k != "filename"}
        digest = calls.content_key(same, inputs)
        extra = f"{env['hash'] if env else ''}|{sorted((resources or {}).items())}"
        return f"{digest}-{hashlib.sha256(extra.encode()).hexdigest()[:12]}"

    def lookup(self, key: str) -> _Run | None:
        with self._lock:
            run = self._runs.get(key)
            if run is None:
                return None
            if not run.alive():  # lost with a worker, cancelled, or the cluster restarted
                del self._runs[key]
                run.release()
                return None
            self._runs.move_to_end(key)
            return run

    def store(self, key: str, call: calls.Call, main, takes: dict) -> None:
        from distributed import Future

        def own(future):  # a reference of our own, released independently of the user's
            return Future(future.key, future.client)

        run = _Run(call.id, call.label, own(main), {n: own(f) for n, f in takes.items()})
        size = int(config.get("cache.size", 32))
        with self._lock:
            previous = self._runs.pop(key, None)
            self._runs[key] = run
            dropped = [previous] if previous is not None else []
            while len(self._runs) > max(0, size):
                dropped.append(self._runs.popitem(last=False)[1])
        for old in dropped:
            old.release()

    def clear(self) -> int:
        """Forget every run (their values stay while other refs hold them); how many."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            run.release()
        return len(runs)

    def runs(self) -> list[_Run]:
        """The runs kept, oldest first."""
        with self._lock:
            return list(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)


def _reuse(run: _Run | None, call: calls.Call, get: bool, on_call) -> CellResult | None:
    """The result of ``run`` again, as the result of ``call`` (which never runs); None if
    there is no such run, or its description cannot be read any more (then the cell runs)."""
    from distributed import Future

    if run is None:
        return None
    try:
        meta = run.main.result(timeout=30)  # the cell's description: small, on the cluster
    except Exception:  # lost since the lookup: run the cell instead
        return None
    cluster = call.cluster
    if on_call is not None:
        on_call(call)
    result = CellResult(call, reused=run.call, display=meta["display"], worker=meta["worker"])
    call.log.worker = meta["worker"]
    call.finish("done")
    if get:
        result.values = meta["values"]
    else:
        for name, future in run.takes.items():
            info = meta["outputs"].get(name)
            if info is not None:  # (names not bound on that run were never kept)
                result.refs[name] = RemoteRef(Future(future.key, future.client), cluster,
                                              name=name, info={**info, "worker": meta["worker"]})
    return result


def _fill_in_when_done(call: calls.Call, main, refs: dict[str, RemoteRef]) -> None:
    """For ``--no-wait``: give the refs their type/size/worker once the cell has run."""

    def done(future) -> None:
        if future.status != "finished":
            return
        try:
            meta = future.result()
        except Exception:
            return
        for name, ref in refs.items():
            info = meta["outputs"].get(name)
            if info is not None:
                ref.info.update(info, worker=meta["worker"])

    main.add_done_callback(done)
