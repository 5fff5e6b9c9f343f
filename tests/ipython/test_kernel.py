"""Interrupting a real kernel while a %%remote cell waits cancels the remote work."""

from __future__ import annotations

import os
import queue
import time

import pytest

from tests import hermetic
from tests.conftest import wait_until


def execute(kc, code: str, timeout: float = 120) -> tuple[dict, str]:
    """Run code; return the reply content and everything it printed."""
    # stop_on_error=False: see tests/widgets/kernel.py (a request sent right after a failed
    # one could otherwise be aborted by ipykernel, unrun)
    msg_id = kc.execute(code, stop_on_error=False)
    printed = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    return reply["content"], "".join(printed)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    km = hermetic.kernel_manager()
    km.start_kernel(cwd=str(tmp_path_factory.mktemp("nb")), env={**os.environ})
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        reply, _ = execute(kc, "%load_ext jupyter_remote\nimport jupyter_remote\n")
        assert reply["status"] == "ok"
        reply, _ = execute(kc, "%%remote\nwarm = 1\n")  # start the embedded cluster now
        assert reply["status"] == "ok", reply
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.slow
def test_interrupt_cancels_the_remote_work(kernel, tmp_path):
    km, kc = kernel
    started = tmp_path / "started"
    msg_id = kc.execute(
        stop_on_error=False,
        code=f"%%remote\nimport time\nopen({str(started)!r}, 'w').close()\n"
        "for i in range(1200):\n    time.sleep(0.05)\nnever = 1\n"
    )
    # Interrupt once the cell is waiting on the cluster: its code runs on a worker.
    wait_until(started.exists, 60, "the cell to start on a worker")
    km.interrupt_kernel()
    deadline = time.monotonic() + 30
    reply = None
    while time.monotonic() < deadline:
        try:
            msg = kc.get_shell_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg["content"]
            break
    assert reply is not None, "the kernel did not come back from the interrupt"
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    # the worker thread that ran the cell was interrupted, not left running for a minute
    reply, out = execute(
        kc,
        "import time\n"
        "from jupyter_remote.core import clusters\n"
        "from jupyter_remote.worker import state\n"
        "c = clusters.cluster('local')\n"
        "for _ in range(50):\n"
        "    busy = sum(c.client.run(lambda: len(state._running)).values())\n"
        "    if not busy:\n"
        "        break\n"
        "    time.sleep(0.2)\n"
        "print('busy', busy, 'state', c.router.calls()[-1].state)\n"
        "print('never' in dir())\n",
    )
    assert "busy 0 state cancelled" in out, (reply, out)
    assert "False" in out, out
