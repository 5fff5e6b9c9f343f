"""What a person sees in a notebook, through a real kernel (jupyter_client) and its iopub
stream: what a cell bound, tracebacks without the package's plumbing, a map's workers and
time left, one name per cluster, and the `%remote` tables."""

from __future__ import annotations

import re

from tests.widgets.kernel import Kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error(kernel: Kernel, code: str, timeout: float = 60) -> tuple[dict, str]:
    """Run a cell that must fail; return its reply content and the traceback as shown."""
    msg_id = kernel.submit(code)
    reply = kernel.reply(msg_id, timeout)["content"]
    assert reply["status"] == "error", kernel.text(msg_id)
    errors = kernel.of(msg_id, "error")
    assert len(errors) == 1
    return reply, ANSI.sub("", "\n".join(errors[0]["content"]["traceback"]))


def _no_plumbing(shown: str) -> None:
    for word in ("jupyter_remote", "site-packages", "run_cell_magic", "RemoteTraceback",
                 "The above exception", "magics.py"):
        assert word not in shown, f"{word!r} in the traceback a user sees:\n{shown}"


def test_a_cell_says_what_it_bound_and_warns_of_a_replaced_variable(kernel):
    kernel.execute("i = 5")
    msg_id = kernel.submit(
        "%%remote\nimport numpy as np\narr = np.ones((1000, 1000))\ni = 3\nlabel = 'x'\n"
    )
    widget = kernel.call_widget(msg_id)
    kernel.reply(msg_id)
    widget.wait_value("message", "arr: ndarray 1000×1000 float64, 7.63 MiB")
    message = widget.value("message")
    assert "<code>i: int</code>" in message and "<code>label: str</code>" in message
    assert "i was a local int and is now a remote ref" in message
    assert "label was" not in message  # a new name is no surprise
    # The text record kept in the notebook file says the same.
    record = kernel.of(msg_id, "update_display_data")[-1]["content"]["data"]["text/plain"]
    assert "bound arr: ndarray 1000×1000 float64, 7.63 MiB" in record


def test_a_remote_exception_shows_the_remote_frames_and_nothing_of_the_package(kernel):
    reply, shown = _error(kernel, "%%remote\ndef f(v):\n    return v / 0\n\ny = f(1)\n")
    assert reply["ename"] == "ZeroDivisionError"
    assert 'line 5, in <module>' in shown and "y = f(1)" in shown  # the cell's own lines
    assert "line 3, in f" in shown and "return v / 0" in shown
    assert shown.rstrip().endswith("ZeroDivisionError: division by zero")
    assert shown.count("ZeroDivisionError: division by zero") == 1
    assert shown.count("Remote traceback") == 1
    _no_plumbing(shown)


def test_a_remote_function_failure_shows_the_same(kernel):
    reply, shown = _error(
        kernel,
        "import jupyter_remote\ndef g(v):\n    raise ValueError(f'bad {v}')\n"
        "jupyter_remote.function(g)(7)\n",
    )
    assert reply["ename"] == "ValueError"
    # The function travelled by value (cloudpickle drops its file name): its line's text
    # comes from the notebook, where the cell that defined it is known.
    assert "line 3, in g\n    raise ValueError(f'bad {v}')" in shown, shown
    assert shown.rstrip().endswith("ValueError: bad 7")
    _no_plumbing(shown)


def test_our_own_errors_are_one_line(kernel):
    _, shown = _error(kernel, "%%remote\nz = no_such_name_anywhere\n")
    assert shown.startswith("UnknownInputError: ") and "\n" not in shown.strip()
    _, shown = _error(kernel, "%%remote --timeout 1\nimport time\ntime.sleep(30)\n")
    assert shown.startswith("RemoteTimeoutError: ") and "\n" not in shown.strip()


def test_a_map_shows_its_workers_percent_and_time_left(kernel):
    msg_id = kernel.submit(
        "import jupyter_remote, time\n"
        "def slow(i):\n    time.sleep(0.4)\n    return i\n"
        "jupyter_remote.function(slow).map(range(12), batch_size=1)\n"
    )
    widget = kernel.call_widget(msg_id)
    widget.wait_value("progress_text", "left")
    assert re.search(r"\d+% · \d+ of 12 done", widget.value("progress_text"))
    kernel.reply(msg_id)
    widget.wait_value("progress_text", "100% · 12 of 12 done")
    assert "left" not in widget.value("progress_text")
    status = widget.value("status")
    found = re.search(r"title='([^']*)'>on (\d+) workers?<", status)
    assert found, status
    addresses = found.group(1).split("\n")
    assert len(addresses) == int(found.group(2)) and all(a.startswith("tcp://") for a in addresses)


def _html_outputs(kernel: Kernel, msg_id: str) -> list[dict]:
    return [m["content"]["data"] for m in kernel.of(msg_id, "display_data")
            + kernel.of(msg_id, "execute_result") if "text/html" in m["content"]["data"]]


def test_remote_tables_are_html_in_a_notebook(kernel):
    kernel.execute("%%remote --out listed\nlisted = bytes(5000)\n")
    for command in ("refs", "clusters"):
        msg_id = kernel.execute(f"%remote {command}")["parent_header"]["msg_id"]
        (data,) = _html_outputs(kernel, msg_id)
        html, text = data["text/html"], data["text/plain"]
        assert "<table class='jupyter-remote-table'>" in html
        assert "<code>tcp://" in html and "href='tcp://" not in html  # an address is no link
        assert "tcp://" in text and "<" not in text.replace("<RemoteRef", "")
    msg_id = kernel.execute("%remote refs")["parent_header"]["msg_id"]
    (data,) = _html_outputs(kernel, msg_id)
    assert "<td style='text-align:left'>4.88 kiB</td>" in data["text/html"]


def test_a_ref_card_previews_its_first_rows_and_get_head_downloads_only_those(kernel):
    kernel.execute("%%remote --out many\nmany = list(range(1000))\n")
    kernel.execute("import time\nwhile not many.done():\n    time.sleep(0.01)\n")
    msg_id = kernel.execute("many")["parent_header"]["msg_id"]
    (data,) = _html_outputs(kernel, msg_id)
    assert "<pre class='jr-preview'" in data["text/html"]
    assert "[0, 1, 2, 3, 4]\n(first 5 of 1,000)</pre>" in data["text/html"]
    msg_id = kernel.execute("%remote get many --head 3")["parent_header"]["msg_id"]
    assert "[0, 1, 2]" in kernel.text(msg_id)
    assert "RemoteRef" in kernel.text(kernel.execute("print(type(many))")["parent_header"]["msg_id"])


def test_one_cluster_one_name_with_its_owner(kernel):
    import os

    from jupyter_remote.core import registry

    pid = int(kernel.text(kernel.execute("import os; print(os.getpid())")["parent_header"]["msg_id"]))
    mine = registry.get(f"local-{pid}")
    assert mine is not None and mine["title"] == "local"  # the unique key, and the name people see
    # Another notebook's embedded cluster (its owner: this test's live process).
    other = f"local-{os.getpid()}"
    registry.put({"name": other, "title": "local", "address": mine["address"], "source": "kernel",
                  "pid": os.getpid(), "status": "running", "notebook": "other/analysis.ipynb"})
    try:
        msg_id = kernel.execute("%remote clusters", timeout=60)["parent_header"]["msg_id"]
        (data,) = _html_outputs(kernel, msg_id)
        text = data["text/plain"]
        assert f"local-{pid}" not in text, text  # this kernel's own cluster is listed once
        rows = [line.split() for line in text.splitlines() if "local" in line]
        assert ["*", "local", "this", "kernel"] == rows[0][:4], text
        assert f"kernel {os.getpid()} (analysis.ipynb), use as {other}" in text
        # The key still works for this kernel's own cluster: the same cluster, not a second one.
        same = kernel.execute(
            f"from jupyter_remote.core import clusters\n"
            f"print(clusters.cluster('local-{pid}') is clusters.cluster('local'))"
        )["parent_header"]["msg_id"]
        assert "True" in kernel.text(same)
    finally:
        registry.remove(other)
