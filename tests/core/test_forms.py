"""The seed systems' parallel forms on a real cluster: split arrays, max_parallel, map hooks
(post, init, get=False), how a batch's items run (target), async functions."""

from __future__ import annotations

import os

import numpy as np
import pytest

import jupyter_remote
from jupyter_remote.core import cells
from jupyter_remote.core.refs import RemoteRef


def colwise(x):
    """A column-wise function: fun(x)[:, i] == f(x[:, i])."""
    return x * 2 + x.sum(axis=0, keepdims=True)


# -- split ---------------------------------------------------------------------------------
def test_split_of_a_local_array_equals_the_whole_call(local):
    x = np.arange(7 * 10, dtype="f8").reshape(7, 10)
    f = jupyter_remote.function(colwise)
    assert np.array_equal(f.split(x), colwise(x))  # axis -1, one piece per thread
    assert np.array_equal(f.split(x, axis=-1, parts=3), colwise(x))  # unequal pieces
    rows = jupyter_remote.function(lambda a: a + 1)
    assert np.array_equal(rows.split(x, axis=0, parts=4), x + 1)
    assert np.array_equal(f.split(x, parts=50), colwise(x))  # more parts than columns


def test_split_of_lists_and_pandas(local):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": range(9), "b": range(10, 19), "c": range(20, 29)})
    double = jupyter_remote.function(lambda d: d * 2)
    assert double.split(df, axis=0, parts=4).equals(df * 2)  # rows
    assert double.split(df, axis=1, parts=2).equals(df * 2)  # columns
    assert double.split(df["a"], axis=0, parts=3).equals(df["a"] * 2)
    upper = jupyter_remote.function(lambda xs: [s.upper() for s in xs])
    assert upper.split(list("abcdefg"), parts=3) == list("ABCDEFG")


def test_split_of_a_ref_cuts_on_the_cluster_and_can_stay_there(local):
    made = cells.run_cell("import numpy as np\nx = np.arange(60.0).reshape(6, 10)\n", {}, local)
    x = made.refs["x"]
    f = jupyter_remote.function(colwise)
    expected = colwise(np.arange(60.0).reshape(6, 10))
    assert np.array_equal(f.split(x, parts=4), expected)
    ref = f.split(x, parts=3, get=False)
    assert isinstance(ref, RemoteRef)
    assert np.array_equal(ref.get(), expected)


def pid_columns(a):
    import os

    import numpy as np

    return np.full(a.shape, os.getpid())


def test_split_of_a_ref_spreads_its_pieces_over_every_worker(local):
    """Not all where the ref is (Dask would keep them there: the cut pieces are there)."""
    made = cells.run_cell("import numpy as np\nx = np.zeros((3, 64))\n", {}, local)
    worker_pids = set(local.client.run(__import__("os").getpid).values())
    out = jupyter_remote.function(pid_columns).split(made.refs["x"])  # a piece per thread
    assert set(np.unique(out)) == worker_pids


def test_the_pieces_of_a_ref_all_run_at_once(local, tmp_path):
    """Every piece's cut runs before any piece's work on the worker holding the ref: a cut
    queued there behind a piece's work would hold the other workers' pieces back until that
    work ended (a split as slow as one worker). Each piece here waits, bounded, for all the
    others to start: one held back leaves a piece that saw fewer than all."""
    threads = local.total_threads()
    made = cells.run_cell(f"import numpy as np\nx = np.zeros((1000, 2000 * {threads}))\n",
                          {}, local)  # 16 MB a thread: Dask cuts it where it is
    folder = str(tmp_path)

    def meet(a, folder=folder, threads=threads):
        import os
        import time
        import uuid

        import numpy as np

        open(os.path.join(folder, uuid.uuid4().hex), "w").close()
        deadline = time.monotonic() + 20
        while len(os.listdir(folder)) < threads and time.monotonic() < deadline:
            time.sleep(0.01)
        return np.full(a.shape, len(os.listdir(folder)))

    assert threads >= 2
    f = jupyter_remote.function(meet)
    for attempt in range(4):  # the wrong order is a race: give it a few chances to show
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        out = f.split(made.refs["x"])
        assert out.min() == threads, attempt  # no piece ended before all had started


def test_split_of_a_big_local_array_sends_each_piece_to_its_worker(local):
    """Pieces above jupyter-remote.share.threshold (1 MB) are scattered to their workers."""
    x = np.arange(2000 * 300, dtype="f8").reshape(2000, 300)  # 4.8 MB
    f = jupyter_remote.function(colwise)
    assert np.array_equal(f.split(x), colwise(x))
    worker_pids = set(local.client.run(__import__("os").getpid).values())
    assert set(np.unique(jupyter_remote.function(pid_columns).split(x))) == worker_pids


def test_split_refuses_what_it_cannot_cut(local):
    f = jupyter_remote.function(colwise)
    with pytest.raises(TypeError, match="split cuts numpy arrays"):
        f.split({"a": 1})
    with pytest.raises(ValueError, match="axis 5 is out of range"):
        f.split(np.zeros((2, 2)), axis=5)
    with pytest.raises(ValueError, match="parts must be"):
        f.split(np.zeros((2, 2)), parts=0)


# -- max_parallel --------------------------------------------------------------------------
def _peak_of(path: str) -> int:
    with open(path) as f:
        return max((int(line) for line in f.read().split()), default=0)


def test_max_parallel_caps_items_running_at_once(local, tmp_path):
    counter = str(tmp_path / "running")
    log = str(tmp_path / "peaks")

    def busy(x, counter=counter, log=log):
        import fcntl
        import time

        def bump(d):
            with open(counter, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                n = int(f.read() or 0) + d
                f.seek(0)
                f.truncate()
                f.write(str(n))
                with open(log, "a") as out:
                    out.write(f"{n}\n")

        bump(1)
        time.sleep(0.1)
        bump(-1)
        return x

    f = jupyter_remote.function(busy)
    assert f.map(range(8), max_parallel=1) == list(range(8))
    assert _peak_of(log) == 1
    with pytest.raises(ValueError, match="max_parallel"):
        f.map(range(3), max_parallel=0)


# -- hooks ---------------------------------------------------------------------------------
def test_post_reduces_on_the_cluster_and_get_false_keeps_it_there(local):
    f = jupyter_remote.function(lambda x: x * x)
    assert f.map(range(1000), post=sum) == sum(x * x for x in range(1000))
    ref = f.map(range(10), post=max, get=False)
    assert isinstance(ref, RemoteRef) and ref.get() == 81
    whole = f.map(range(5), get=False)  # no post: the list, kept on the cluster
    assert whole.get() == [0, 1, 4, 9, 16]


def test_post_sees_failures_in_place_or_the_first_is_raised(local):
    inv = jupyter_remote.function(lambda x: 1 / x)

    def count_failures(results):
        return sum(isinstance(r, ZeroDivisionError) for r in results)

    assert inv.map([1, 0, 2, 0], post=count_failures, errors="return") == 2
    with pytest.raises(ZeroDivisionError):
        inv.map([1, 0, 2], post=sum)


def test_init_makes_the_items_on_the_cluster(local):
    def make():
        return [i * 10 for i in range(25)]

    f = jupyter_remote.function(lambda x: x + 1)
    assert f.map(init=make) == [i * 10 + 1 for i in range(25)]
    assert f.map(init=make, post=sum) == sum(i * 10 + 1 for i in range(25))
    with pytest.raises(TypeError, match="init= takes a function"):
        f.map(init=[1, 2])


def test_any_failed(local):
    out = jupyter_remote.function(lambda x: 1 / x).map([1, 0], errors="return")
    assert jupyter_remote.any_failed(out) and not jupyter_remote.any_failed([1, 2])


# -- target and async ----------------------------------------------------------------------
def test_threads_target_runs_a_batchs_items_together_with_their_own_log_tags(
        local, capsys, tmp_path):
    where = str(tmp_path)

    def wait_for_all(x, where=where):
        import os
        import threading
        import time

        print("start", x)
        open(os.path.join(where, f"started-{x}"), "w").close()
        deadline = time.time() + 30
        while len(os.listdir(where)) < 4 and time.time() < deadline:  # all 4 run at once
            time.sleep(0.01)
        return threading.current_thread().name

    f = jupyter_remote.function(wait_for_all)
    names = f.map(range(4), target="threads", batch_size=4)
    assert len(set(names)) == 4  # four threads of one batch, at once
    out = capsys.readouterr().out
    for i in range(4):
        assert f"[{i}] start {i}" in out
    with pytest.raises(ValueError, match="target must be"):
        f.map(range(2), target="fork")


def test_async_functions_are_awaited_in_calls_and_maps(local):
    async def later(x):
        import asyncio

        await asyncio.sleep(0.01)
        return x * 3

    f = jupyter_remote.function(later)
    assert f(2) == 6
    assert f.map(range(5)) == [0, 3, 6, 9, 12]
    assert f.map(range(20), target="async", batch_size=20) == [3 * i for i in range(20)]
