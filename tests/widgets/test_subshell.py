"""The notebook reads Busy until a waiting %%remote cell ends, even while jupyter_remote's
subshell handles a widget's message (a real kernel, its iopub status messages watched)."""

from __future__ import annotations

from tests.conftest import wait_for_file_source


def test_a_widget_message_during_a_cell_leaves_the_kernel_busy(kernel, tmp_path):
    gate = tmp_path / "gate"
    cell = kernel.submit("%%remote --out held\nprint('waiting')\n"
                         + wait_for_file_source(str(gate)) + "held = 1\n")
    widget = kernel.call_widget(cell)
    widget.wait_value("lines", "waiting")
    # A message the Cancel button's comm handles on the subshell without cancelling: a
    # state update, which ipywidgets echoes back (so the test knows it was handled).
    sent = kernel.kc.session.send(
        kernel.kc.shell_channel.socket, "comm_msg",
        {"comm_id": widget.cancel,
         "data": {"method": "update", "state": {"tooltip": "still there"}, "buffer_paths": []}},
    )
    kernel.wait_for(lambda: any(
        m["msg_type"] == "comm_msg" and m["parent_header"].get("msg_id") == sent["header"]["msg_id"]
        for _, m in kernel.messages), what="the echo of the update, handled during the cell")
    assert not kernel.replied(cell), "the cell ended before the widget's message was handled"
    gate.write_text("open")
    kernel.reply(cell)

    with kernel._cond:
        statuses = [(m["content"]["execution_state"], m["parent_header"].get("msg_id"))
                    for _, m in kernel.messages if m["msg_type"] == "status"]
    start = statuses.index(("busy", cell))
    end = statuses.index(("idle", cell))
    during = statuses[start + 1:end]
    # What a frontend that follows every status message (JupyterLab does) would show.
    assert all(state == "busy" for state, _ in during), during
