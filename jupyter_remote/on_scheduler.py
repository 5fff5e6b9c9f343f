"""Functions sent to the scheduler (``Client.run_on_scheduler``), by the notebook and by the
Jupyter server alike.

They run inside the scheduler's process and read its tasks through
:func:`jupyter_remote._scheduler_tasks`; they import nothing else of the package, so
the scheduler needs only ``jupyter_remote`` installed, never user code. Remote calls are
found by their task annotation (``jupyter_remote.core.registry.call_annotation``).
"""

from __future__ import annotations

from typing import Any

from jupyter_remote._compat import cancel_for, never_steal, scheduler_tasks, truncate_events

# A call's unfinished tasks are in these states. Not ``released``: a finished cell's task
# stays there while the tasks that take its names from it hold it (they are its
# dependents, in memory), and a task that is really about to run passes through
# ``released`` only for an instant on its way to ``waiting``.
_QUEUED = {"waiting", "queued", "no-worker"}


def where_running(keys: list[str], dask_scheduler: Any = None) -> list[str]:
    """The workers currently running any of ``keys``."""
    return sorted({t.worker for t in scheduler_tasks(dask_scheduler, keys)
                   if t.worker is not None})


def remote_calls(dask_scheduler: Any = None) -> list[dict[str, Any]]:
    """The remote calls with unfinished tasks: one row per call."""
    calls: dict[str, dict[str, Any]] = {}
    for task in scheduler_tasks(dask_scheduler):
        note = task.annotations.get("jupyter_remote")
        if not isinstance(note, dict) or task.state not in _QUEUED | {"processing"}:
            continue
        row = calls.setdefault(
            note.get("call", "?"),
            {
                "call": note.get("call", "?"),
                "label": note.get("label", ""),
                "kind": note.get("kind", ""),
                "notebook": note.get("notebook"),
                "pid": note.get("pid"),
                "state": "queued",
                "tasks": 0,
                "worker": None,
            },
        )
        row["tasks"] += 1
        if task.state == "processing":
            row["state"] = "running"
            row["worker"] = task.worker
    return sorted(calls.values(), key=lambda r: (r["notebook"] or "", r["label"]))


def call_tasks(call: str, dask_scheduler: Any = None) -> dict[str, Any]:
    """The unfinished task keys of one call, the workers running them, and its label."""
    keys, workers, label = [], set(), None
    for task in scheduler_tasks(dask_scheduler):
        note = task.annotations.get("jupyter_remote")
        if not isinstance(note, dict) or note.get("call") != call:
            continue
        label = note.get("label")
        if task.state in _QUEUED | {"processing"}:
            keys.append(task.key)
            if task.worker is not None:
                workers.add(task.worker)
    return {"keys": keys, "workers": sorted(workers), "label": label}


def cancel_call(call: str, reason: str, dask_scheduler: Any = None) -> dict[str, Any]:
    """Cancel the unfinished tasks of one call for whoever wants them (the kernel's client).

    Returns :func:`call_tasks`' view from before the cancel, so the caller can interrupt the
    workers that were running it.
    """
    found = call_tasks(call, dask_scheduler)
    for task in scheduler_tasks(dask_scheduler, found["keys"]):
        if task.wanted_by:
            cancel_for(dask_scheduler, task.key, task.wanted_by[0], reason)
    return found


def keep_takes_in_place(dask_scheduler: Any = None) -> bool:
    """A cell's ``take`` tasks stay on the worker holding its values: never stolen (moving
    one would copy the value, and a value that cannot be pickled would be lost)."""
    return never_steal("remote-take")


def truncate_topic(topic: str, dask_scheduler: Any = None) -> bool:
    """Forget the events the scheduler keeps for ``topic`` (a client's log topic)."""
    return truncate_events(dask_scheduler, topic)


def hold_present(keys: list[str], client: str, dask_scheduler: Any = None) -> list[str]:
    """Those of ``keys`` whose values are in memory, now wanted by ``client`` too.

    Checked and held in one step here (``jupyter_remote.share``): a value that another
    client releases a moment later stays, because ``client`` wants it from now on; asked in
    two steps, it could be forgotten in between and the notebook's future would never fill.
    ``Scheduler.client_desires_keys`` is public API (distributed 2023.x-2026.8.0).
    """
    present = [str(t.key) for t in scheduler_tasks(dask_scheduler, keys) if t.state == "memory"]
    if present:
        dask_scheduler.client_desires_keys(keys=present, client=client)
    return present
