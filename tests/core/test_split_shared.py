"""A split on a cluster whose workers share one host (the embedded one) pastes its pieces'
results in shared memory: each piece writes its part of one /dev/shm file, the paste maps it.
Same values as a paste by copy; nothing left in /dev/shm after a split ends, however it ends."""

from __future__ import annotations

import glob
import os
import time

import dask
import numpy as np
import pytest

import jupyter_remote
from jupyter_remote.core import cells, forms
from jupyter_remote.wire.payload import as_future
from jupyter_remote.worker import shared


def colwise(x):
    return x * 2 + x.sum(axis=0, keepdims=True)


def _segments() -> list[str]:  # (a failed split's tombstone is not one: it holds no memory)
    return [path for path in glob.glob(os.path.join(shared.DIR, shared.PREFIX + "*"))
            if not path.endswith(shared.GONE)]


def _left_after(seconds: float = 10) -> list[str]:
    """The split segments still in /dev/shm once cleanup had ``seconds`` (bounded)."""
    deadline = time.monotonic() + seconds
    while _segments() and time.monotonic() < deadline:
        time.sleep(0.02)
    return _segments()


def _memory_behind(client, ref) -> set[str]:
    """What the value of ``ref`` lives in, on the worker holding it: ``mmap`` when pasted in
    shared memory, ``ndarray`` when it owns its memory."""
    key = as_future(ref).key

    def kind(dask_worker, key=key):
        if key not in dask_worker.data:
            return None
        base = dask_worker.data[key]
        while getattr(base, "base", None) is not None:
            base = base.base
        if isinstance(base, memoryview):
            base = base.obj
        return type(base).__name__

    return {found for found in client.run(kind).values() if found is not None}


@pytest.fixture(autouse=True)
def _nothing_left_before(monkeypatch):
    """And every split shares, however small (small arrays keep these tests quick)."""
    assert _left_after() == []
    monkeypatch.setattr(forms, "SHARED_BYTES", 0)


def _done(ref, seconds=60):
    deadline = time.monotonic() + seconds
    while not ref.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ref.done()


def test_a_split_pastes_in_shared_memory_from_a_local_array_and_from_a_ref(local):
    x = np.random.default_rng(1).random((500, 1201))  # 4.8 MB: pieces go straight to workers
    made = cells.run_cell("import numpy as np\nx = np.random.default_rng(1).random((500, 1201))",
                          {}, local)
    f = jupyter_remote.function(colwise)
    for source in (x, made.refs["x"]):
        ref = f.split(source, get=False)
        _done(ref)
        assert _memory_behind(local.client, ref) == {"mmap"}
        assert _segments() == []  # the paste unlinked the file: the map holds the memory
        assert np.array_equal(ref.get(), colwise(x))
        total = jupyter_remote.function(lambda a: float(a.sum()))(ref)  # a later call uses it
        assert np.isclose(total, colwise(x).sum())
        ref.release()
    rows = np.concatenate([colwise(piece) for piece in np.array_split(x, 3, axis=0)])
    assert np.array_equal(f.split(x, axis=0, parts=3), rows)


def mapped_input(a):
    """Each column: 1 when this piece's input is mapped shared memory, 0 when it is not; the
    input changed in place first (the function may: the mapping is copy-on-write)."""
    import mmap

    import numpy as np

    base = a
    while getattr(base, "base", None) is not None:
        base = base.base
    mapped = isinstance(getattr(base, "obj", base), mmap.mmap)
    if mapped:
        a += 1
    return np.full(a.shape, float(mapped))


def test_a_ref_piece_for_another_worker_travels_in_shared_memory(local):
    """The holder's pieces are views of the value; the other worker's are put in /dev/shm
    by the holder and mapped there, not sent over a socket."""
    made = cells.run_cell("import numpy as np\nx = np.zeros((5, 1200))", {}, local)
    out = jupyter_remote.function(mapped_input).split(made.refs["x"], parts=2)
    assert sorted(set(out[0])) == [0.0, 1.0]
    assert made.refs["x"].get().sum() == 0  # changing a mapped piece changed nothing else
    assert _left_after() == []
    with dask.config.set({"jupyter-remote.split.shared-memory": False}):
        out = jupyter_remote.function(mapped_input).split(made.refs["x"], parts=2)
    assert set(out.ravel()) == {0.0}


def test_small_splits_paste_by_copy(local, monkeypatch):
    """Below SHARED_BYTES the copies cost less than the shared output's file and tasks."""
    monkeypatch.setattr(forms, "SHARED_BYTES", 4 * 2**20)
    small = np.ones((4, 10))
    ref = jupyter_remote.function(colwise).split(small, get=False)
    _done(ref)
    assert _memory_behind(local.client, ref) == {"ndarray"}
    big = np.ones((500, 1200))  # 4.8 MB, rows of 600 columns a piece
    ref = jupyter_remote.function(colwise).split(big, get=False)
    _done(ref)
    assert _memory_behind(local.client, ref) == {"mmap"}
    made = cells.run_cell("import numpy as np\nx = np.ones((4, 10))", {}, local)
    out = jupyter_remote.function(mapped_input).split(made.refs["x"], parts=2)
    assert set(out.ravel()) == {0.0}  # a small ref's pieces travel as usual too


def test_shared_memory_off_pastes_by_copy(local):
    x = np.arange(40.0).reshape(4, 10)
    with dask.config.set({"jupyter-remote.split.shared-memory": False}):
        ref = jupyter_remote.function(colwise).split(x, get=False)
        _done(ref)
    assert _memory_behind(local.client, ref) == {"ndarray"}
    assert np.array_equal(ref.get(), colwise(x))


def test_results_that_do_not_fit_one_array_are_pasted_by_copy(local):
    x = np.arange(6 * 1200.0).reshape(6, 1200)  # rows of 600 columns a piece: shared
    by_piece = jupyter_remote.function(lambda a: a.astype("i8") if a[0, 0] == 0 else a)
    expected = np.concatenate([x[:, :600].astype("i8"), x[:, 600:]], axis=1)
    assert np.array_equal(by_piece.split(x, parts=2), expected)  # dtypes differ
    first_column = jupyter_remote.function(lambda a: a[:, :1])
    assert np.array_equal(first_column.split(x, parts=2), x[:, [0, 600]])  # lengths differ
    dates = np.arange(0, 6 * 1200, dtype="datetime64[s]").reshape(6, 1200)
    same = jupyter_remote.function(lambda a: a)
    assert np.array_equal(same.split(dates, parts=2), dates)  # no buffer to write: copied
    as_list = jupyter_remote.function(lambda a: a.ravel().tolist())
    assert as_list.split(x, axis=0, parts=2) == x.ravel().tolist()  # not an array
    made = cells.run_cell("import numpy as np\nx = np.arange(18.0).reshape(6, 3)\n"
                          "empty = np.zeros((0, 4))", {}, local)
    double = jupyter_remote.function(lambda a: a * 2)
    assert np.array_equal(double.split(made.refs["x"], parts=5), made.refs["x"].get() * 2)
    assert double.split(made.refs["empty"], parts=2).shape == (0, 4)  # pieces of nothing
    cube = np.arange(4 * 9 * 3).reshape(4, 9, 3)
    assert np.array_equal(jupyter_remote.function(lambda a: a + 1).split(cube, axis=1, parts=3),
                          cube + 1)
    assert _left_after() == []


def test_a_failed_split_leaves_nothing_in_dev_shm(local, tmp_path):
    """One piece fails once the other has written its part (it waits for the file, bounded,
    and records that it saw it): the part must not stay behind."""
    x = np.arange(4 * 1200.0).reshape(4, 1200)
    seen = str(tmp_path / "seen")

    def fail_late(a, seen=seen, prefix=os.path.join(shared.DIR, shared.PREFIX)):
        import glob
        import time

        if a[0, 0] == 0:
            return a * 2
        deadline = time.monotonic() + 10
        while not glob.glob(prefix + "*") and time.monotonic() < deadline:
            time.sleep(0.01)
        if glob.glob(prefix + "*"):
            open(seen, "w").close()
        raise ValueError("this piece fails")

    f = jupyter_remote.function(fail_late)
    with pytest.raises(ValueError, match="this piece fails"):
        f.split(x, parts=2)
    assert os.path.exists(seen)
    assert _left_after() == []
    os.remove(seen)
    ref = f.split(x, parts=2, get=False)  # the same when nobody waits for it
    with pytest.raises(ValueError, match="this piece fails"):
        ref.get()
    assert os.path.exists(seen)
    assert _left_after() == []


def test_a_split_stopped_by_its_timeout_leaves_nothing_in_dev_shm(local):
    x = np.arange(4 * 1200.0).reshape(4, 1200)

    def slow_second(a):
        import time

        if a[0, 0] != 0:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until Cancel interrupts it
                time.sleep(0.05)
        return a * 2

    with pytest.raises(TimeoutError):
        jupyter_remote.function(slow_second).split(x, parts=2, timeout=2)
    assert _left_after() == []


@pytest.mark.slow
@pytest.mark.parametrize("source", ["notebook", "ref"])
def test_a_pasted_ref_whose_worker_dies_is_computed_again_or_told_lost(source):
    """The paste unlinks its file, so a split's ref (``get=False``) is only in the memory of
    the worker holding it. When that worker dies (SIGKILL; its nanny starts another), Dask
    computes it again from its lineage if it can: from a ref that survived, the pieces run
    again, write a new segment, and the new paste maps it, with the same values. A split of
    a notebook array has no lineage left once pasted (Dask forgets the pieces nobody
    wants): that is one clear error saying it was lost, not "cancelled"."""
    import signal

    import distributed
    from distributed.deploy.subprocess import SubprocessCluster

    from jupyter_remote.core import clusters
    from jupyter_remote.exceptions import WorkerLostError
    from tests.conftest import wait_until

    cluster = SubprocessCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, f"paste-{os.getpid()}-{time.time_ns()}")
    try:
        client = found.client
        client.wait_for_workers(2, timeout=60)
        x = np.arange(200.0 * 2000).reshape(200, 2000)  # runs of 8 KB: shared
        arg = x
        if source == "ref":
            made = cells.run_cell("import numpy as np\nx = np.arange(200.0 * 2000).reshape(200, 2000)\n",
                                  {}, found)
            arg = made.refs["x"]
        ref = jupyter_remote.function(colwise, cluster=found).split(arg, get=False)
        with client.as_current():
            distributed.wait(as_future(ref), timeout=60)
        assert _memory_behind(client, ref) == {"mmap"}
        [holder] = client.who_has([as_future(ref)])[as_future(ref).key]
        inputs_survive = source == "ref" and holder not in client.who_has(
            [as_future(arg)])[as_future(arg).key]
        [victim] = client.run(os.getpid, workers=[holder]).values()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: holder not in client.scheduler_info()["workers"], 60,
                   "the scheduler to see the worker gone")
        if inputs_survive:
            assert np.array_equal(ref.get(timeout=60), colwise(x))
        else:
            with pytest.raises(WorkerLostError, match="was lost: the worker holding it died"):
                ref.get(timeout=60)
        assert _left_after() == []
    finally:
        found.close()
        cluster.close(timeout=5)
