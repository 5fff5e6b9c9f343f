"""What travels: opaque payloads, dependencies cut out at any depth, local modules by value,
exceptions with their remote traceback."""

from __future__ import annotations

import sys
import textwrap
import threading

import cloudpickle
import pytest
from distributed import Future
from distributed.deploy.subprocess import SubprocessCluster

from jupyter_remote.core import cells, clusters, modules
from jupyter_remote.exceptions import RemoteError, RemoteTaskError, SerializationError
from jupyter_remote.wire import payload
from jupyter_remote.wire.failures import pack_exception, unpack_exception


def test_remote_values_at_any_depth_become_dependencies(local):
    a = local.client.submit(lambda: 1, pure=False)
    b = local.client.submit(lambda: 2, pure=False)
    data, deps = payload.dumps({"x": [a, {"deep": (b, a)}], "plain": 3})
    assert isinstance(data, bytes)
    assert [d.key for d in deps] == [a.key, b.key]  # each once, in order
    assert all(isinstance(d, Future) for d in deps)
    assert payload.loads(data, (10, 20)) == {"x": [10, {"deep": (20, 10)}], "plain": 3}


def test_unpicklable_input_is_named_with_its_type():
    with pytest.raises(SerializationError) as info:
        payload.dumps({"ok": 1, "bad": threading.Lock()}, names={"ok": 1, "bad": threading.Lock()})
    assert info.value.name == "bad"
    assert "_thread.lock" in str(info.value)


def test_local_modules_travel_by_value(tmp_path, monkeypatch):
    (tmp_path / "nearby_helpers.py").write_text("def f():\n    return 'nearby'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import nearby_helpers

    try:
        assert "nearby_helpers" in modules.register_local_modules(str(tmp_path))
        blob = cloudpickle.dumps(nearby_helpers.f)
        assert b"return 'nearby'" in blob or b"nearby" in blob
        del sys.modules["nearby_helpers"]
        assert cloudpickle.loads(blob)() == "nearby"
    finally:
        cloudpickle.unregister_pickle_by_value(nearby_helpers)
        modules._registered.discard("nearby_helpers")
        sys.modules.pop("nearby_helpers", None)


def test_installed_packages_travel_by_reference():
    import numpy

    assert "numpy" not in modules.register_local_modules()
    assert "jupyter_remote" not in modules.register_local_modules()
    assert numpy  # imported, so it was a candidate


def test_exceptions_round_trip_with_their_remote_traceback():
    try:
        {}["k"]
    except KeyError as exc:
        packed = pack_exception(exc)
    assert isinstance(packed, RemoteTaskError)
    assert isinstance(packed.args[0], bytes)
    assert "KeyError" in str(packed)
    back = unpack_exception(packed, "cell In[2]")
    assert isinstance(back, KeyError)
    assert "Remote traceback (cell In[2])" in str(back.__cause__)
    assert back.__traceback__ is None


def test_an_exception_that_cannot_travel_becomes_a_remote_error():
    class Odd(Exception):
        def __reduce__(self):
            raise TypeError("no")

    back = unpack_exception(pack_exception(Odd("strange")))
    assert isinstance(back, RemoteError)
    assert "Odd" in str(back) and "strange" in str(back)


def _add_path(path: str) -> None:
    import sys

    sys.path.insert(0, path)


def test_the_scheduler_never_needs_user_code(tmp_path):
    """A module the workers and the notebook have but the scheduler lacks: fine, since the
    scheduler only ever sees opaque bytes. (Plain Dask fails here at the scheduler.)"""
    pkg = tmp_path / "only_here"
    pkg.mkdir()
    (pkg / "workeronly_mod.py").write_text(textwrap.dedent("""
        class Box:
            def __init__(self, v):
                self.v = v
    """))
    sys.path.insert(0, str(pkg))
    try:
        import workeronly_mod

        # Dask's SubprocessCluster: the scheduler in a process of its own (LocalCluster's
        # would share this process, which has the module).
        with SubprocessCluster(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as lc:
            c = clusters.connect(lc.scheduler_address, name="no-user-code-on-scheduler")
            try:
                c.client.wait_for_workers(1, timeout=60)
                c.client.run(_add_path, str(pkg))  # the workers have it
                with pytest.raises(ModuleNotFoundError):  # the scheduler does not
                    c.client.run_on_scheduler(__import__, "workeronly_mod")
                box = workeronly_mod.Box(41)
                result = cells.run_cell("v = box.v + 1\n", {"box": box}, c)
                assert result.refs["v"].get() == 42
            finally:
                c.close()
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop("workeronly_mod", None)


def test_big_buffers_stay_out_of_band_on_every_hop():
    """The scheduler opens a task's payload and pickles it again for the worker: its big
    buffers must stay frames of their own there too, never copied into the bytes."""
    import numpy as np
    from distributed.protocol import dumps as dask_dumps, loads as dask_loads
    from distributed.protocol.serialize import ToPickle

    array = np.arange(2 * payload.OUT_OF_BAND // 8, dtype=np.float64)
    buffers: list = []
    data, _ = payload.dumps({"args": [array]}, None, buffers)
    assert len(data) < 1000 and len(buffers) == 1
    hop = payload.Frames(data, buffers)
    for _ in range(3):  # notebook -> scheduler -> worker, and once more
        frames = dask_dumps({"task": ToPickle(hop)})
        assert max(len(memoryview(f)) for f in frames[:-1]) < 1000  # the headers stay small
        assert len(memoryview(frames[-1])) == array.nbytes  # the array: a frame of its own
        hop = dask_loads(frames)["task"]
    assert (payload.loads(hop)["args"][0] == array).all()


def test_frames_pickle_with_older_protocols_too():
    import pickle

    import numpy as np

    array = np.arange(2 * payload.OUT_OF_BAND // 8, dtype=np.float64)
    buffers: list = []
    data, _ = payload.dumps([array], None, buffers)
    opened = pickle.loads(pickle.dumps(payload.Frames(data, buffers), protocol=4))
    assert (payload.loads(opened)[0] == array).all()


def test_small_values_pickle_whole_and_big_ones_do_not():
    """What may ride a call's stream: small values, small arrays included (in the bytes);
    never a big array, nor anything that does not pickle."""
    import pickle

    import numpy as np

    small = payload.small_pickle({"a": np.arange(10.0), "b": [1, 2]}, 1024)
    assert small is not None
    opened = pickle.loads(small)
    assert (opened["a"] == np.arange(10.0)).all() and opened["b"] == [1, 2]
    assert payload.small_pickle(np.arange(1000.0), 1024) is None  # 8,000 bytes of buffer
    assert payload.small_pickle(bytes(2000), 1024) is None
    assert payload.small_pickle(threading.Lock(), 1024) is None
    batch = payload.BatchResult([np.arange(3) + i for i in range(10)], {}, 0.1)
    assert [list(v) for v in pickle.loads(batch.small(4096)).values][9] == [9, 10, 11]
