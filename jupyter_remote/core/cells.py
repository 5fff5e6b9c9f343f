"""A ``%%remote`` cell, independent of IPython: source + namespace in, refs out.

The magic parses its arguments and calls :func:`run_cell`; everything else happens here.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

from jupyter_remote.core import analysis, calls, runner
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.exceptions import EmptyCellError, UnknownInputError


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
    resources: dict | None = None,
    timeout: float | None = None,
    on_lines=None,
    on_call=None,
    env: dict | None = None,
) -> CellResult:
    """Run ``source`` on one worker of ``cluster`` with inputs from ``namespace``.

    Every name the cell binds (or only ``outputs``) comes back as a :class:`RemoteRef`
    (or, with ``get``, as its value). With ``wait=False`` the refs are returned at once and
    fill in when the cell finishes. ``on_call(call)`` runs once the call is submitted (for
    views); ``on_lines`` receives log lines while waiting. ``env`` (an env spec from
    :func:`jupyter_remote.core.environments.resolve`) runs the cell in that environment.
    """
    filename = filename or f"<{label}>"
    found, inputs = collect_inputs(source, namespace, filename, label)
    names = list(outputs) if outputs else found.outputs
    call = calls.Call(cluster, label, "cell")
    spec = {
        "kind": "cell",
        "source": source,
        "filename": filename,
        "inputs": inputs,
        "outputs": names,
        "required": list(outputs or ()),
        "get": get,
    }
    main = call.submit(spec, names=inputs, resources=resources, env=env)
    takes = {}
    if not get:
        for name in names:
            takes[name] = cluster.client.submit(
                runner.take,
                call.id,
                name,
                f"{name!r} of {label}",
                main,
                key=f"{name}-{call.id}",
                pure=False,
            )
        call.futures.extend(takes.values())  # cancelling the call cancels its refs too
    if on_call is not None:
        on_call(call)
    result = CellResult(call)
    if not wait:
        result.refs = {n: RemoteRef(f, cluster, name=n, call=call) for n, f in takes.items()}
        _fill_in_when_done(call, main, result.refs)
        call.finish_when_done()
        return result

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
    result.display = meta["display"]
    result.worker = meta["worker"]
    if get:
        result.values = meta["values"]
    else:
        for name, future in takes.items():
            info = meta["outputs"].get(name)
            if info is None:  # bound only on some paths, and not on this run
                future.release()
                continue
            result.refs[name] = RemoteRef(future, cluster, name=name, info={**info, "worker": meta["worker"]})
    main.release()
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
