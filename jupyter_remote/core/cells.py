"""A ``%%remote`` cell, independent of IPython: source + namespace in, names to bind out.

The magic parses its arguments, calls :func:`run_cell` and binds ``CellResult.bound``;
everything else happens here: inputs, submission, the refs, functions the cell defines
(callable in later cells); ``--cache`` hands the cell to :mod:`jupyter_remote.core.memo`,
which answers an identical run from the result store, in this kernel or any other.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_remote._compat import when_done
from jupyter_remote.core import analysis, calls, placement, share
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
    workers: list[str] | None = None,
    gpu: str | None = None,
) -> CellResult:
    """Run ``source`` on one worker of ``cluster`` with inputs from ``namespace``.

    Every name the cell binds (or only ``outputs``) comes back as a :class:`RemoteRef`
    (or, with ``get``, as its value); ``bound`` of the result holds what to bind in the
    notebook: functions and classes the cell defines as :class:`RemoteFunction`s that run
    with the cell's requirements (``reqs``, ``requirements_file``). With ``wait=False`` the
    refs are returned at once and fill in when the cell finishes. ``on_call(call)`` runs once
    the call is submitted (for views); ``on_lines`` receives log lines while waiting. ``env``
    (an env spec from :func:`jupyter_remote.core.environments.resolve`) runs the cell in that
    environment. With ``cache``, an identical earlier run stored in the result store (by any kernel) is
    reused instead of running again: ``reused`` of the result then names its call.
    """
    filename = filename or f"<{label}>"
    found, inputs = collect_inputs(source, namespace, filename, label)
    inputs = share.share_large(inputs, cluster)  # big local values cross the network once
    names = list(outputs) if outputs else found.outputs
    call = calls.Call(cluster, label, "cell")
    spec = {"kind": "cell", "source": source, "filename": filename, "inputs": inputs,
            "outputs": names, "required": list(outputs or ()), "get": get}
    main = _submit(call, spec, inputs, label, resources, env, cache, workers, gpu)
    try:  # an interrupt before the wait below begins must cancel the cell too
        # A waiting cell submits its takes once it knows the worker holding the values.
        takes = {} if get or wait else _takes(call, main, names, label)
        if on_call is not None:
            on_call(call)
    except KeyboardInterrupt:
        call.cancel()
        raise
    if not wait:
        result = _running(call, main, takes)
    else:
        result = _finished(call, main, names, label, get, timeout, on_lines)
        main.release()
    result.bound = _bindings(result, get, function_reqs(reqs, requirements_file))
    return result


def _submit(call: calls.Call, spec: dict[str, Any], inputs: dict[str, Any], label: str,
            resources: dict[str, float] | None, env: dict[str, Any] | None, cache: bool,
            workers: list[str] | None, gpu: str | None) -> Any:
    """Submit the cell where ``workers``/``gpu`` allow (or find it in the result store)."""
    with placement.placed(call.cluster, placement.check(workers, gpu), gpu, label,
                          resources) as resources:
        if cache:  # answered from the result store when an identical run was stored
            from jupyter_remote.core import memo

            return memo.submit_cell(call, spec, inputs, label=label, resources=resources,
                                    env=env)
        return call.submit(spec, names=inputs, resources=resources, env=env)


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


def _takes(call: calls.Call, main: Any, names: list[str], label: str,
           worker: str | None = None) -> dict[str, Any]:
    """One small task per bound name, handing its value to a Dask key of its own (on
    ``worker``, the one holding the values, when it is known)."""
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
            workers=[worker] if worker else None,
            allow_other_workers=bool(worker),  # (that worker lost: where the value is again)
        )
    if worker is None:
        call.futures.extend(takes.values())  # cancelling the call cancels its refs too
    return takes


def _running(call: calls.Call, main: Any, takes: dict[str, Any]) -> CellResult:
    """The result of a ``--no-wait`` cell: pending refs that fill in when it ends."""
    result = CellResult(call)
    result.refs = {n: RemoteRef(f, call.cluster, name=n, call=call) for n, f in takes.items()}
    _fill_in_when_done(call, main, result.refs)
    call.finish_when_done()
    return result


def _finished(call: calls.Call, main: Any, names: list[str], label: str, get: bool,
              timeout: float | None,
              on_lines: Callable[[list[LogLine]], None] | None) -> CellResult:
    """Wait for the cell; its refs (or values, with ``get``) and display."""
    try:
        # The cell is done when its description arrives on the log stream; the takes that
        # give each name its own key finish a moment later, on the same worker.
        # With ``get``, the values come with it when they are small.
        [meta] = calls.wait(
            call, [], fetch=[main], result_event=True,
            decode=calls.streamed_value if get else None, timeout=timeout, on_lines=on_lines
        )
    except BaseException:
        call.finish("cancelled" if main.status == "cancelled" else "failed")
        raise
    call.finish("done")
    result = CellResult(call, display=meta["display"], worker=meta["worker"],
                        reused=meta.get("reused"))
    if get:
        result.values = meta["values"]
        return result
    takes = _takes(call, main, [n for n in names if n in meta["outputs"]], label,
                   worker=meta["worker"])
    for name, future in takes.items():
        info = meta["outputs"].get(name)
        if info is None:  # bound only on some paths, and not on this run
            future.release()
            continue
        result.refs[name] = RemoteRef(future, call.cluster, name=name,
                                      info={**info, "worker": meta["worker"]})
    return result


def _fill_in_when_done(call: calls.Call, main, refs: dict[str, RemoteRef]) -> None:
    """For ``--no-wait``: give the refs their type/size/worker once the cell has run (before
    their own keys are ready, so a pending ref's card redraws with them)."""

    def fill_in(meta: dict[str, Any]) -> None:
        for name, ref in refs.items():
            info = meta["outputs"].get(name)
            if info is not None:
                ref.info.update(info, worker=meta["worker"])

    def fetched(future) -> None:
        try:
            meta = future.result()
        except Exception:
            return
        fill_in(meta)

    def done(future) -> None:  # on the client's loop, so nothing here may block
        if future.status != "finished":
            return
        meta = call.log.result  # the cell's description, sent on its stream before it ended
        if isinstance(meta, dict) and "outputs" in meta:
            fill_in(meta)
        else:  # (not arrived: fetched, in a thread of its own)
            threading.Thread(target=fetched, args=(future,), daemon=True).start()

    when_done(main, done)
