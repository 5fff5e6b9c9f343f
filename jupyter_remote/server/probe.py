"""Functions the manager runs on a scheduler (``Client.run_on_scheduler``).

Imported by the scheduler, so they import nothing beyond the standard library. Remote calls
are found by their task annotation (``jupyter_remote.core.registry.call_annotation``).
"""

from __future__ import annotations

from typing import Any

_QUEUED = {"released", "waiting", "queued", "no-worker"}


def remote_calls(dask_scheduler: Any = None) -> list[dict]:
    """The remote calls with unfinished tasks: one row per call."""
    calls: dict[str, dict] = {}
    for ts in list(dask_scheduler.tasks.values()):
        note = (ts.annotations or {}).get("jupyter_remote")
        if not isinstance(note, dict) or ts.state not in _QUEUED | {"processing"}:
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
        if ts.state == "processing":
            row["state"] = "running"
            row["worker"] = ts.processing_on.address if ts.processing_on else None
    return sorted(calls.values(), key=lambda r: (r["notebook"] or "", r["label"]))


def call_tasks(call: str, dask_scheduler: Any = None) -> dict:
    """The unfinished task keys of one call, the workers running them, and its label."""
    keys, workers, label = [], set(), None
    for key, ts in list(dask_scheduler.tasks.items()):
        note = (ts.annotations or {}).get("jupyter_remote")
        if not isinstance(note, dict) or note.get("call") != call:
            continue
        label = note.get("label")
        if ts.state in _QUEUED | {"processing"}:
            keys.append(key)
            if ts.state == "processing" and ts.processing_on is not None:
                workers.add(ts.processing_on.address)
    return {"keys": keys, "workers": sorted(workers), "label": label}


def cancel_call(call: str, reason: str, dask_scheduler: Any = None) -> dict:
    """Cancel the unfinished tasks of one call for whoever wants them (the kernel's client).

    Returns :func:`call_tasks`' view from before the cancel, so the caller can interrupt the
    workers that were running it.
    """
    found = call_tasks(call, dask_scheduler)
    for key in found["keys"]:
        ts = dask_scheduler.tasks.get(key)
        if ts is None or not ts.who_wants:
            continue
        owner = next(iter(ts.who_wants)).client_key
        dask_scheduler.stimulus_cancel([key], owner, force=True, reason=reason, msg=None)
    return found
