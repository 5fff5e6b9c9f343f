"""RemoteRef: download, state, display, cancel, lost workers."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from distributed import LocalCluster

import jupyter_remote
from jupyter_remote.core import cells, clusters
from jupyter_remote.exceptions import RemoteCancelledError, WorkerLostError
from tests.conftest import wait_until


def test_repr_shows_type_shape_dtype_size_worker_status(local):
    ref = cells.run_cell("import numpy as np\narr = np.zeros((3, 4), dtype='float32')\n", {}, local).refs["arr"]
    ref.get()  # a cell's refs finish a moment after the cell
    text = repr(ref)
    for part in ("arr", "numpy.ndarray", "(3, 4)", "float32", "48 B", "tcp://", "finished"):
        assert part in text, (part, text)
    html = ref._repr_html_()
    assert "<table>" in html and "float32" in html and "(3, 4)" in html
    np.testing.assert_array_equal(ref.get(), np.zeros((3, 4), dtype="float32"))
    assert ref.result().shape == (3, 4)
    assert ref.key.startswith("remote-take-") and ref.key.endswith("-arr")


def test_get_many_in_one_round_trip(local):
    f = jupyter_remote.function(lambda x: x * 10)
    refs = [f.remote(i) for i in range(3)]
    assert jupyter_remote.get(refs) == [0, 10, 20]
    assert jupyter_remote.get(tuple(refs)) == (0, 10, 20)
    assert jupyter_remote.get({"a": refs[0], "b": refs[2]}) == {"a": 0, "b": 20}
    with pytest.raises(TypeError, match="RemoteRef"):
        jupyter_remote.get(42)


def test_describe_asks_the_worker(local):
    ref = jupyter_remote.function(lambda: list(range(5))).remote()
    ref.get()
    info = ref.describe()
    assert info["type"] == "list" and info["nbytes"] > 0 and info["worker"].startswith("tcp://")


def test_cancel(local, tmp_path):
    started = tmp_path / "started"

    def slow(started):
        import time

        open(started, "w").close()
        for _ in range(600):  # pure-Python loop: an interrupt stops it between sleeps
            time.sleep(0.05)

    ref = jupyter_remote.function(slow).remote(str(started))
    # Cancel once it runs: cancelling must interrupt running work too.
    wait_until(started.exists, 60, "the call to start on its worker")
    assert "interrupted" in ref.cancel()
    with pytest.raises(RemoteCancelledError, match="cancelled"):
        ref.get(timeout=10)
    assert ref.status == "cancelled"


def test_errors_surface_on_get(local):
    ref = jupyter_remote.function(lambda: {}["missing"]).remote()
    with pytest.raises(KeyError):
        ref.get()
    assert ref.status == "error"


def test_lost_worker_names_the_cell(tmp_path):
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=1, processes=True, dashboard_address="127.0.0.1:0") as lc:
            c = clusters.connect(lc.scheduler_address, name="fragile")
            try:
                with pytest.raises(WorkerLostError) as info:
                    cells.run_cell("import os\nos._exit(1)\n", {}, c, label="cell In[12]")
                assert "cell In[12]" in str(info.value)
            finally:
                c.close()


def test_plain_pickling_gives_the_future(local):
    import pickle

    from distributed import Future

    ref = jupyter_remote.function(lambda: 1).remote()
    ref.get()
    assert isinstance(ref.__reduce__()[1][0], Future)
    assert pickle.loads(pickle.dumps(ref)).key == ref.key


def test_deleting_a_ref_frees_its_data_on_the_cluster(local):
    import gc
    import time

    result = cells.run_cell("kept = 1\ndropped = bytes(1000)\n", {}, local)
    kept, dropped = result.refs["kept"], result.refs["dropped"]
    dropped.get()
    key = dropped.key
    del result, dropped
    gc.collect()

    def on_cluster(k):
        return local.client.run_on_scheduler(lambda dask_scheduler: k in dask_scheduler.tasks)

    deadline = time.monotonic() + 10
    while on_cluster(key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not on_cluster(key), "a finished call's log still holds the value"
    assert kept.get() == 1  # its sibling is untouched
