"""core.cells against the embedded cluster: real scheduler and worker processes."""

from __future__ import annotations

import os
import time

import dask
import pytest

from jupyter_remote.core import calls, cells
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.exceptions import (
    EmptyCellError,
    RemoteError,
    RemoteTimeoutError,
    SerializationError,
    UnknownInputError,
)
from jupyter_remote.worker import runner, state
from tests.conftest import IGNORES_INTERRUPT, unpickled_in, wait_for_file_source


def run(local, source, ns=None, **kw):
    return cells.run_cell(source, ns if ns is not None else {}, local, **kw)


def test_bound_names_become_refs_modules_excluded(local):
    result = run(local, "import math\na = 2\nb = math.sqrt(16)\n")
    assert set(result.refs) == {"a", "b"}
    assert all(isinstance(r, RemoteRef) for r in result.refs.values())
    assert result.refs["b"].get() == 4.0
    assert result.refs["a"].info["type"] == "int"
    assert result.refs["a"].worker.startswith("tcp://")


def test_inputs_come_from_the_namespace(local):
    result = run(local, "y = [v * k for v in values]\n", {"values": [1, 2], "k": 10})
    assert result.refs["y"].get() == [10, 20]


def test_out_keeps_only_named_outputs(local):
    result = run(local, "a = 1\nb = 2\n", outputs=["b"])
    assert list(result.refs) == ["b"]
    with pytest.raises(NameError, match="'nope'"):
        run(local, "a = 1\n", outputs=["nope"])


def test_get_downloads_values(local):
    result = run(local, "a = [1, 2]\nb = 'x'\n", get=True)
    assert result.values == {"a": [1, 2], "b": "x"}
    assert result.refs == {}
    assert "value" in local.router.calls()[-1].result  # small: they came on the stream
    big = run(local, "big = bytes(100_000)\n", get=True)  # over the stream's limit: fetched
    assert len(big.values["big"]) == 100_000
    assert local.router.calls()[-1].result is None


def test_trailing_expression_repr_is_computed_on_the_worker(local):
    result = run(local, "import os\nos.getpid()\n")
    remote_pid = int(result.display["text/plain"])
    assert remote_pid != os.getpid()


def test_a_large_display_still_arrives(local):
    # Too big for the log stream: the cell's description is fetched as the task's result.
    result = run(local, "text = 'x' * 200_000\ntext\n")
    assert len(result.display["text/plain"]) == 200_002  # repr adds the quotes
    assert result.refs["text"].get() == "x" * 200_000


def test_rich_repr_travels(local):
    src = "class Shown:\n    def _repr_html_(self):\n        return '<b>remote</b>'\nShown()\n"
    assert run(local, src).display["text/html"] == "<b>remote</b>"


def test_unknown_name_fails_before_anything_is_submitted(local):
    before = len(local.router.calls())
    with pytest.raises(UnknownInputError, match="'missing_thing'") as info:
        run(local, "x = missing_thing + 1\n", label="cell In[7]")
    assert "cell In[7]" in str(info.value)
    assert isinstance(info.value, NameError)
    assert len(local.router.calls()) == before


def test_empty_cell(local):
    with pytest.raises(EmptyCellError, match="empty"):
        run(local, "\n   \n")


def test_unpicklable_input_is_named(local):
    import threading

    with pytest.raises(SerializationError) as info:
        run(local, "y = lock\n", {"lock": threading.Lock()})
    assert "'lock'" in str(info.value)
    assert "_thread.lock" in str(info.value)


def test_remote_exception_keeps_type_and_cell_lines(local):
    src = "\nx = 1\ny = x / 0\n"
    with pytest.raises(ZeroDivisionError) as info:
        run(local, src, label="cell In[4]", filename="<remote cell In[4]>")
    text = str(info.value.__cause__)
    assert '"<remote cell In[4]>", line 3' in text
    assert "y = x / 0" in text
    assert "runner.py" not in text and "distributed" not in text


def test_notebook_defined_exception_class_comes_back(local):
    class Custom(Exception):
        pass

    with pytest.raises(Custom, match="boom"):
        run(local, "raise Custom('boom')\n", {"Custom": Custom})


def test_exception_that_cannot_come_back_is_a_remote_error(local):
    # An exception holding a lock cannot be pickled: the type and message still arrive.
    src = (
        "import threading\n"
        "class Holding(Exception):\n"
        "    def __init__(self):\n"
        "        super().__init__('holds a lock')\n"
        "        self.lock = threading.Lock()\n"
        "raise Holding()\n"
    )
    with pytest.raises(RemoteError, match="Holding: holds a lock"):
        run(local, src)


def test_refs_pass_worker_to_worker_never_through_the_notebook(local, tracker_file):
    # Every unpickling of a Tracked records its process id in tracker_file.
    src = (
        "import os\n"
        "def _rebuild(data, path):\n"
        "    with open(path, 'a') as f:\n"
        "        f.write(f'{os.getpid()} ')\n"
        "    return Tracked(data, path)\n"
        "class Tracked:\n"
        "    def __init__(self, data, path):\n"
        "        self.data, self.path = data, path\n"
        "    def __reduce__(self):\n"
        "        return (_rebuild, (self.data, self.path))\n"
        "big = Tracked(bytes(10_000_000), path)\n"
    )
    first = run(local, src, {"path": tracker_file})
    ns = {"big": first.refs["big"]}
    second = run(local, "n = len(big.data)\n", ns)
    assert second.refs["n"].get() == 10_000_000
    # A third cell on the other worker forces a worker-to-worker transfer.
    third = run(local, "m = len(big.data) + 1\n", ns, resources=None)
    assert third.refs["m"].get() == 10_000_001
    assert os.getpid() not in unpickled_in(tracker_file)
    # Control: downloading it does unpickle here, so the recorder works.
    first.refs["big"].get()
    assert os.getpid() in unpickled_in(tracker_file)


def test_no_wait_returns_pending_refs_at_once(local, tmp_path):
    gate = str(tmp_path / "gate")
    # The cell cannot end before the gate opens, and the gate opens only once run() returned.
    result = run(local, wait_for_file_source(gate) + f"v = 5 if _os.path.exists({gate!r}) else 0\n",
                 wait=False)  # fmt: skip
    assert result.refs["v"].status == "pending"
    open(gate, "w").close()
    assert result.refs["v"].get(timeout=60) == 5


def test_timeout_cancels_and_interrupts(local):
    src = "import time\nwhile True:\n    time.sleep(0.05)\n"
    with pytest.raises(RemoteTimeoutError, match="cell In\\[9\\] did not finish within 1 s"):
        run(local, src, label="cell In[9]", timeout=1)
    assert isinstance(RemoteTimeoutError("x"), TimeoutError)
    # the worker thread was interrupted, not left spinning
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = local.client.run(lambda: list(state._running))
        if not any(running.values()):
            break
        time.sleep(0.1)
    assert not any(running.values()), running


def test_cell_defined_function_comes_back_callable_info(local):
    result = run(local, "def f(x):\n    return x * 3\n")
    assert result.refs["f"].info["callable"] is True


def test_unknown_resources_fail_clearly(local):
    with pytest.raises(ValueError, match="GPU"):
        run(local, "x = 1\n", resources={"GPU": 1})


# cache=True (the result store) is tested in tests/core/test_memo.py.


def _kept_on_workers(client, call_id):
    found = client.run(lambda c: list(state._kept.get(c, ())), call_id)  # looked up there
    return {w: held for w, held in found.items() if held}


def test_values_of_a_cancelled_cell_that_still_bound_them_are_dropped(local):
    # The cell swallows the interrupt and binds its names anyway, after its task was
    # cancelled: no take task will ever collect them, so they must not stay in the
    # worker's memory once the task has ended there.
    result = run(local, IGNORES_INTERRUPT, wait=False)
    call_id = result.call.id
    client = local.client
    deadline = time.monotonic() + 30
    while result.call.log.state != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    result.call.cancel()
    while not any(client.run(lambda c: c in state._ended, call_id).values()):
        assert time.monotonic() < deadline, "the cell never ended on its worker"
        time.sleep(0.05)
    while _kept_on_workers(client, call_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _kept_on_workers(client, call_id)


def test_a_take_moved_to_another_worker_fetches_its_value(local):
    # Dask's work stealing may run a take away from the worker holding its value.
    client = local.client
    here, there = sorted(client.scheduler_info(n_workers=-1)["workers"])[:2]
    call = calls.Call(local, "moved cell", "cell")
    spec = {"kind": "cell", "source": "v = [1, 2, 3]\n", "filename": "<moved>", "inputs": {},
            "outputs": ["v"], "required": [], "get": False}
    try:
        with dask.annotate(workers=[here]):
            main = call.submit(spec)
        moved = client.submit(runner.take, call.id, "v", "'v' of moved cell", main,
                              workers=[there], pure=False)
        assert main.result(timeout=30)["worker"] == here
        assert moved.result(timeout=30) == [1, 2, 3]
        assert client.who_has(moved)[moved.key] == (there,)
        assert not _kept_on_workers(client, call.id)  # taken from where it waited
    finally:
        call.finish("done")
