"""RemoteFunction on the embedded cluster."""

from __future__ import annotations

import os
import time

import pytest

import jupyter_remote
from jupyter_remote.core import cells
from jupyter_remote.core.functions import RemoteFunction
from jupyter_remote.core.refs import RemoteRef


def square(x):
    return x * x


def test_call_runs_remotely_and_returns(local):
    pid = jupyter_remote.function(os.getpid, cluster="local")()
    assert pid != os.getpid()
    assert jupyter_remote.function(square)(7) == 49


def test_remote_output_is_printed_while_waiting(local, capsys):
    def talk(n):
        import sys

        print("out", n)
        print("err", n, file=sys.stderr)
        return n

    assert jupyter_remote.function(talk)(3) == 3
    captured = capsys.readouterr()
    assert "out 3" in captured.out
    assert "err 3" in captured.err


def test_decorator_forms(local):
    @jupyter_remote.remote
    def plain(x):
        return x + 1

    @jupyter_remote.remote(cluster="local", name="named")
    def named(x):
        return x + 2

    assert isinstance(plain, RemoteFunction)
    assert plain(1) == 2
    assert named(1) == 3
    assert named.name == "named"
    assert plain.__name__ == "plain"


def test_remote_returns_a_ref_at_once(local, tmp_path):
    gate = str(tmp_path / "gate")

    def gated(x, gate):
        import os

        deadline = time.time() + 60
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.01)
        return x if os.path.exists(gate) else "the gate never opened"

    # The call cannot finish before the gate opens, and the gate opens only after .remote()
    # returned: a .remote() that waited would hang here until the call gave up.
    ref = jupyter_remote.function(gated).remote(11, gate)
    assert isinstance(ref, RemoteRef)
    assert ref.status == "pending"
    open(gate, "w").close()
    assert ref.get(timeout=60) == 11
    assert ref.status == "finished"


def test_refs_as_arguments_stay_remote(local):
    f = jupyter_remote.function(square)
    a = f.remote(3)
    b = jupyter_remote.function(lambda x, y: x + y).remote(a, y=a)
    assert b.get() == 18
    # nested inside containers too
    total = jupyter_remote.function(lambda xs: sum(d["v"] for d in xs))
    assert total([{"v": a}, {"v": b}]) == 27


def test_map_keeps_order_and_batches(local):
    f = jupyter_remote.function(square)
    assert f.map(range(100)) == [x * x for x in range(100)]
    assert f.map([]) == []
    assert jupyter_remote.function(lambda a, b: a - b).map([5, 6], [1, 2]) == [4, 4]
    assert jupyter_remote.function(pow).starmap([(2, 3), (3, 2)]) == [8, 9]


def test_map_uses_few_tasks_for_many_items(local):
    f = jupyter_remote.function(square)
    assert f.map(range(10_000))[-1] == 9999 * 9999
    batches = local.router.calls()[-1].batches  # one progress entry per batch task
    assert 1 <= len(batches) <= 4 * local.total_threads()


def test_map_errors_return_and_raise(local):
    def inv(x):
        return 1 / x

    f = jupyter_remote.function(inv)
    out = f.map([1, 0, 2], errors="return")
    assert out[0] == 1.0 and out[2] == 0.5
    assert isinstance(out[1], ZeroDivisionError)
    with pytest.raises(ZeroDivisionError) as info:
        f.map([1, 0, 2])
    assert any("item 1 of 3" in note for note in info.value.__notes__)
    with pytest.raises(ValueError, match="errors must be"):
        f.map([1], errors="ignore")


def test_map_item_logs_carry_their_index(local, capsys):
    def shout(x):
        print("item", x)
        return x

    jupyter_remote.function(shout).map(range(3), batch_size=1)
    out = capsys.readouterr().out
    for i in range(3):
        assert f"[{i}] item {i}" in out


def test_enqueue_runs_one_at_a_time_in_order(local):
    def stamp(i):

        start = time.time()
        time.sleep(0.2)
        return i, start, time.time()

    f = jupyter_remote.function(stamp, name="test-queue-stamp")
    refs = [f.enqueue(i) for i in range(4)]
    got = jupyter_remote.get(refs)
    assert [g[0] for g in got] == [0, 1, 2, 3]
    for before, after in zip(got, got[1:]):
        assert after[1] >= before[2] - 1e-3  # starts after the previous one ended


def test_enqueue_survives_a_failed_call(local):
    def maybe(i):
        if i == 1:
            raise ValueError("one")
        return i

    f = jupyter_remote.function(maybe, name="test-queue-maybe")
    refs = [f.enqueue(i) for i in range(3)]
    assert refs[0].get() == 0
    with pytest.raises(ValueError, match="one"):
        refs[1].get()
    assert refs[2].get() == 2


def test_to_binds_elsewhere(local):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=True, dashboard_address="127.0.0.1:0") as other:
        f = jupyter_remote.function(os.getpid).to(other.scheduler_address)
        assert f.cluster.address == other.scheduler_address
        worker_pids = set(other.scheduler_info  # noqa: B018 - reach the cluster
                          and jupyter_remote.cluster(other.scheduler_address).client.run(os.getpid).values())
        assert f() in worker_pids
        jupyter_remote.cluster(other.scheduler_address).close()


def test_function_defined_in_a_cell_is_callable_later(local):
    result = cells.run_cell("def triple(x):\n    return 3 * x\n", {}, local)
    triple = RemoteFunction(result.refs["triple"], local, name="triple")
    assert triple(4) == 12
    assert triple.map([1, 2]) == [3, 6]
    # and usable inside later cells, where it is the plain function
    later = cells.run_cell("y = triple(5)\n", {"triple": triple}, local)
    assert later.refs["y"].get() == 15


def test_bad_function_argument():
    with pytest.raises(TypeError, match="expects a function"):
        jupyter_remote.function(42)


def test_cache_reuses_an_identical_call(local, tmp_path):
    marker = tmp_path / "runs.txt"

    def counted(x, path):
        with open(path, "a") as f:
            f.write("run\n")
        return x * 2

    f = jupyter_remote.function(counted, cache=True)
    assert f(21, str(marker)) == 42
    assert f(21, str(marker)) == 42  # from the cluster's memory
    assert f.remote(21, str(marker)).get() == 42
    assert marker.read_text().count("run") == 1
    assert f(22, str(marker)) == 44  # other arguments: another run
    assert marker.read_text().count("run") == 2
    plain = jupyter_remote.function(counted)
    plain(21, str(marker))
    assert marker.read_text().count("run") == 3  # without cache=True, every call runs


def _sent_keys(prefix, dask_worker=None):
    """Keys starting with ``prefix`` this worker sent to anyone (a client's fetch too)."""
    return [str(k) for entry in dask_worker.transfer_outgoing_log for k in entry["keys"]
            if str(k).startswith(prefix)]


def test_a_small_value_rides_the_stream_and_a_big_one_is_fetched(local):
    """A waited-for call's small value comes with its events (one round trip less than
    fetching it); a big one, or one the notebook keeps on the cluster, does not."""
    from jupyter_remote.worker import runner

    class Point:  # defined here: travels by value both ways
        def __init__(self, x):
            self.x = x

    def make(n):
        return [Point(i) for i in range(n)]

    def blob(n):
        return bytes(n)

    f = jupyter_remote.function(make)
    assert [p.x for p in f(5)] == list(range(5))
    small = local.router.calls()[-1]
    assert small.result is not None and "value" in small.result
    assert jupyter_remote.function(list)(range(10_000)) == list(range(10_000))
    assert local.router.calls()[-1].result is not None  # many small items, small pickle

    def array(n):
        import numpy as np

        return np.arange(n)

    assert list(jupyter_remote.function(array)(5)) == [0, 1, 2, 3, 4]
    assert local.router.calls()[-1].result is not None  # a small array: in the bytes
    assert len(jupyter_remote.function(blob)(runner.VALUE_LIMIT + 1)) == runner.VALUE_LIMIT + 1
    big = local.router.calls()[-1]
    assert big.result is None
    ref = f.remote(3)
    assert [p.x for p in ref.get()] == [0, 1, 2]
    kept = local.router.calls()[-1]
    assert kept.result is None  # its value stays on the cluster: nothing streamed
    sent = {c.call: sum(local.client.run(_sent_keys, f"remote-call-{c.call}-").values(), [])
            for c in (small, big)}
    assert sent[small.call] == [] and len(sent[big.call]) == 1


def test_a_streamed_value_that_cannot_be_opened_here_is_fetched_with_its_error(local):
    """A value whose pickle fails to open in the notebook fails as a fetched one would."""
    def odd():
        class Unopenable:
            def __reduce__(self):
                return (_refuse, ())
        return Unopenable()

    with pytest.raises(Exception, match="refused to open"):
        jupyter_remote.function(odd)()
    assert "value" in local.router.calls()[-1].result  # it did come on the stream


def _refuse():
    raise ValueError("refused to open")
