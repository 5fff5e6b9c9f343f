"""The scheduler-side probes, run on the real embedded cluster: which calls are listed as
running or queued (the sidebar's "Running calls" and `%remote cancel` read them)."""

from __future__ import annotations

from jupyter_remote import on_scheduler
from tests.conftest import wait_until


def _rows(client) -> dict[str, dict]:
    """The listed calls, by call id."""
    return {row["call"]: row for row in client.run_on_scheduler(on_scheduler.remote_calls)}


def _last_call(local) -> str:
    """The id of the call the last cell made (the router of the cluster the shell's cells
    use now opened its log: earlier tests may have replaced the session's `local` object)."""
    from jupyter_remote.core import clusters

    return max(clusters.cluster().router.calls(), key=lambda log: log.started).call


def test_a_finished_cell_that_bound_names_is_not_listed(shell, run, local):
    from jupyter_remote.core import clusters

    client = clusters.cluster().client
    run("%%remote\nfinished_a = 1\nfinished_b = [2] * 10\n")
    call = _last_call(local)
    assert shell.user_ns["finished_b"].get() == [2] * 10
    states = [t["state"] for t in client.run_on_scheduler(_call_states, call)]
    # Its take tasks hold the cell's task on the scheduler, released: that is the case.
    assert "released" in states, states
    assert call not in _rows(client)
    assert client.run_on_scheduler(on_scheduler.cancel_call, call, "test")["keys"] == []


def test_running_and_queued_cells_are_listed(shell, run, local, tmp_path):
    from jupyter_remote.core import clusters

    client = clusters.cluster().client
    gate = tmp_path / "open"
    run(
        "%%remote --no-wait\nimport os, time\n"
        f"while not os.path.exists({str(gate)!r}):\n    time.sleep(0.05)\nheld = 1\n"
    )
    running = _last_call(local)
    run("%%remote --no-wait\nafter = held + 1\n")  # needs the first: queued behind it
    queued = _last_call(local)
    # (a submit reaches the scheduler a moment later: wait for both, then check the states)
    rows = wait_until(lambda: {running, queued} <= set(r := _rows(client)) and r,
                      what="both cells listed")
    rows = wait_until(lambda: (r := _rows(client))[running]["state"] == "running" and r,
                      what="the first cell listed as running")
    assert rows[queued]["state"] == "queued"
    gate.write_text("")
    assert shell.user_ns["after"].get() == 2
    wait_until(lambda: not ({running, queued} & set(_rows(client))),
               what="both cells gone from the running calls once finished")


def _probe():
    # Made in a function so cloudpickle ships it by value: the scheduler cannot import tests.
    def call_states(call: str, dask_scheduler=None) -> list[dict]:
        """The annotated tasks of a call, whatever their state."""
        from jupyter_remote._compat import scheduler_tasks

        out = []
        for task in scheduler_tasks(dask_scheduler):
            note = task.annotations.get("jupyter_remote")
            if isinstance(note, dict) and note.get("call") == call:
                out.append({"call": note.get("call"), "state": task.state})
        return out

    return call_states


_call_states = _probe()
