"""The text fallback: in a plain InteractiveShell (no widget frontend) a call prints the
same information as its widget: state, worker, elapsed time, lines, map progress."""

from __future__ import annotations

import re
import threading

import pytest

from jupyter_remote.ipython import render
from tests.conftest import wait_for_file_source, wait_until


def open_when_running(cluster, gate) -> threading.Thread:
    """Create ``gate`` once a new call of ``cluster`` is announced as running (a call that
    waits at the gate is then sure to be seen running, however slow the machine)."""
    before = {log.call for log in cluster.router.calls()}

    def running():
        return any(log.state == "running" and log.call not in before
                   for log in cluster.router.calls())  # fmt: skip

    def watch():
        try:
            wait_until(running, 60, "a new call to be running")
        finally:
            gate.write_text("open")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_plain_shell_gets_the_text_view(shell):
    assert not render.widgets_enabled(shell)
    assert isinstance(render.cell_view(), render.CellView)
    assert not isinstance(render.cell_view(), render.WidgetCellView)


def test_text_view_prints_state_and_lines(run, capsys, local, tmp_path):
    # 'running' (with the worker) is announced for calls that last: this one waits until then.
    gate = tmp_path / "gate"
    open_when_running(local, gate)
    run(
        "%%remote --out v\n"
        + wait_for_file_source(str(gate)) +
        "import sys, logging\n"
        "print('to stdout')\n"
        "print('to stderr', file=sys.stderr)\n"
        "logging.getLogger('job').error('it broke')\n"
        "v = 1\n"
    )
    out, err = capsys.readouterr()
    assert out == "to stdout\n"
    assert re.search(r"\[remote\] (?:cell In\[\d+\]|remote cell) running on tcp://\S+ \(cluster local, call \w+\)", err)
    assert "to stderr\n" in err
    assert "ERROR:job:it broke\n" in err
    assert re.search(r"\[remote\] (?:cell In\[\d+\]|remote cell) done on tcp://\S+ · \d+\.\d s\n", err)
    # in order: the running state, then the lines, then the final state
    assert err.index("running on") < err.index("to stderr") < err.index("done on")


def test_text_view_of_a_failed_cell_points_at_the_log(run, capsys):
    with pytest.raises(ValueError, match="no"):
        run("%%remote\nprint('before')\nraise ValueError('no')\n")
    out, err = capsys.readouterr()
    assert out.startswith("before\n")
    match = re.search(r"\[remote\] (?:cell In\[\d+\]|remote cell) failed on tcp://\S+ · [\d.]+ s; `%remote logs (\w+)`", err)
    assert match, err


def test_text_view_of_a_map_prints_progress(run, capsys):
    run(
        "import jupyter_remote\n"
        "def half(i):\n"
        "    print('item', i)\n"
        "    return 1 / (i - 2)\n"
        "out = jupyter_remote.function(half).map(range(6), errors='return')\n"
    )
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == [f"[{i}] item {i}" for i in range(6)]
    assert re.search(r"\[remote\] half\(\) map done on tcp://\S+ · [\d.]+ s · 6 of 6 done, 1 failed, [\d.]+/s", err), err


def test_a_flood_in_text_mode_is_printed_in_few_writes(run, capsys):
    run("%%remote --out n\nfor i in range(20000):\n    print(i)\nn = 1\n")
    out, _ = capsys.readouterr()
    assert out.split() == [str(i) for i in range(20000)]


def test_without_a_subshell_the_cancel_tooltip_says_to_interrupt(local):
    # Outside a kernel (or with an ipykernel before 7.4) no subshell takes the clicks of a
    # waiting cell's Cancel button: its tooltip must point at the kernel's stop button.
    from jupyter_remote.core import calls
    from jupyter_remote.widgets import calls as views
    from jupyter_remote.widgets.subshell import respond_while_busy

    call = calls.Call(local, "remote cell", "cell")
    try:
        waiting = views.CallWidget(call, waiting=True)
        background = views.CallWidget(call, waiting=False)
        assert not respond_while_busy(waiting.cancel_button)
        assert waiting.cancel_button.tooltip == views._WAITING_TIP
        assert background.cancel_button.tooltip == views._TIP
    finally:
        call.finish("cancelled")
