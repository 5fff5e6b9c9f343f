"""Memoization through the result store, on the embedded cluster's real worker processes:
a hit does not run the code (a side effect on disk proves it), its value is loaded on a
worker; a change of code, of a global or of an input misses; failures are never stored; the
store is a folder here and an S3 bucket (moto on loopback) too."""

from __future__ import annotations

import uuid

import dask
import pytest

import jupyter_remote
from jupyter_remote.core import cells, memo
from jupyter_remote.worker.store import Store
from tests.conftest import wait_until


@pytest.fixture
def store(tmp_path):
    """A store of this test's own (the suite's pinned store is shared by every test)."""
    url = (tmp_path / "store").as_uri()
    with dask.config.set({"jupyter-remote.store.url": url}):
        yield Store(url)


def _task_keys(dask_scheduler=None) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks]


def _runs(path) -> int:
    return path.read_text().count("run") if path.exists() else 0


def counted(x, path):
    with open(path, "a") as f:
        f.write("run\n")
    return x * 2


def test_a_hit_does_not_run_the_function(local, store, tmp_path):
    marker = tmp_path / "runs.txt"
    f = jupyter_remote.function(counted, cache=True)
    assert f(21, str(marker)) == 42
    assert _runs(marker) == 1
    [entry] = store.list()
    assert entry["kind"] == "function" and entry["label"] == "counted"
    assert entry["inputs"].startswith("21, ")
    ref = f.remote(21, str(marker))
    assert ref.get() == 42 and _runs(marker) == 1
    assert ref.key.startswith(f"remote-memo-{entry['key']}-")  # loaded on a worker
    # another RemoteFunction of the same code hits too; other arguments miss
    assert jupyter_remote.function(counted, cache=True)(21, str(marker)) == 42
    assert f(22, str(marker)) == 44 and _runs(marker) == 2
    assert jupyter_remote.function(counted)(21, str(marker)) == 42  # no cache: runs
    assert _runs(marker) == 3
    assert memo.clear(local) == 2 and store.list() == []
    assert f(21, str(marker)) == 42 and _runs(marker) == 4


SCALE = 10


def scaled(x, path):
    with open(path, "a") as f:
        f.write("run\n")
    return x * SCALE + helper()


def helper():
    return 1


def test_a_change_of_a_global_or_of_the_code_misses(local, store, tmp_path):
    global SCALE, helper
    marker = tmp_path / "runs.txt"
    f = jupyter_remote.function(scaled, cache=True)
    assert f(1, str(marker)) == 11 and f(1, str(marker)) == 11 and _runs(marker) == 1
    SCALE = 20
    try:
        assert f(1, str(marker)) == 21 and _runs(marker) == 2  # a global's value changed
        old_helper = helper

        def helper():  # noqa: F811 - redefined on purpose: other code, same name
            return 2

        assert f(1, str(marker)) == 22 and _runs(marker) == 3  # a called function changed
        helper = old_helper
        assert f(1, str(marker)) == 21 and _runs(marker) == 3  # back: the old entry hits
    finally:
        SCALE = 10


def flaky(path):
    import os

    if not os.path.exists(path + ".ok"):
        open(path + ".ok", "w").close()
        raise ValueError("first call fails")
    with open(path, "a") as f:
        f.write("run\n")
    return "fine"


def test_failures_are_never_stored(local, store, tmp_path):
    marker = tmp_path / "runs.txt"
    f = jupyter_remote.function(flaky, cache=True)
    with pytest.raises(ValueError, match="first call fails"):
        f(str(marker))
    assert store.list() == []
    assert f(str(marker)) == "fine" and _runs(marker) == 1  # ran again, and stored this time
    assert f(str(marker)) == "fine" and _runs(marker) == 1


STAMP = "import time\nstamp = (time.time_ns(), n)\nopen(path, 'a').write('run\\n')\nstamp[1]\n"


def test_a_cell_hit_binds_the_stored_values(local, store, tmp_path):
    marker = str(tmp_path / "runs.txt")
    first = cells.run_cell(STAMP, {"n": 1, "path": marker}, local, cache=True)
    again = cells.run_cell(STAMP, {"n": 1, "path": marker}, local, cache=True)
    assert _runs(tmp_path / "runs.txt") == 1
    assert first.reused is None and again.reused == first.call.id
    assert again.refs["stamp"].get() == first.refs["stamp"].get()
    assert again.refs["stamp"].info["type"] == "tuple"
    assert again.display["text/plain"] == "1"
    [entry] = store.list()
    assert entry["kind"] == "cell" and entry["label"].startswith("import time")
    # another input, or other code: the cell runs
    cells.run_cell(STAMP, {"n": 2, "path": marker}, local, cache=True)
    cells.run_cell(STAMP + "x = 1\n", {"n": 1, "path": marker}, local, cache=True)
    assert _runs(tmp_path / "runs.txt") == 3
    # the same names asked for with --out: the same run
    out = cells.run_cell(STAMP, {"n": 1, "path": marker}, local, cache=True, outputs=["stamp"])
    assert out.reused == first.call.id and _runs(tmp_path / "runs.txt") == 3
    got = cells.run_cell(STAMP, {"n": 1, "path": marker}, local, cache=True, get=True)
    assert got.values["stamp"][1] == 1 and _runs(tmp_path / "runs.txt") == 4
    again = cells.run_cell(STAMP, {"n": 1, "path": marker}, local, cache=True, get=True)
    assert again.values == got.values and _runs(tmp_path / "runs.txt") == 4


def test_a_cell_binding_an_unpicklable_value_runs_but_is_not_stored(local, store, tmp_path):
    marker = str(tmp_path / "runs.txt")
    source = "fh = open(path, 'a')\nfh.write('run\\n')\nfh.close()\n"
    for _ in range(2):
        result = cells.run_cell(source, {"path": marker}, local, cache=True)
        assert result.reused is None and "fh" in result.refs
    assert _runs(tmp_path / "runs.txt") == 2 and store.list() == []


def test_a_cell_failure_is_never_stored(local, store):
    source = "if fail:\n    raise ValueError('no')\nx = 1\n"
    with pytest.raises(ValueError):
        cells.run_cell(source, {"fail": True}, local, cache=True)
    assert store.list() == []


def test_an_s3_store(local, tmp_path):
    """The workers write to and read from S3 (moto's server on loopback, through s3fs)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"key": "testing", "secret": "testing",
                   "client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
        url = f"s3://memo-{uuid.uuid4().hex[:8]}/results"
        Store(url, **options).fs.mkdir(url.split("/")[2])
        marker = tmp_path / "runs.txt"
        with dask.config.set({"jupyter-remote.store.url": url,
                              "jupyter-remote.store.options": options}):
            f = jupyter_remote.function(counted, cache=True)
            assert f(5, str(marker)) == 10 and f(5, str(marker)) == 10
            assert _runs(marker) == 1
            [entry] = memo.entries(local)
        assert entry["kind"] == "function"
        assert [r["key"] for r in Store(url, **options).list()] == [entry["key"]]
    finally:
        server.stop()


def test_ref_inputs_count_by_key_and_memoized_ones_by_store_key(local, store, tmp_path):
    marker = str(tmp_path / "runs.txt")
    source = "open(path, 'a').write('run\\n')\nv = (u, 1)\n"
    up1 = cells.run_cell("u = 5\n", {}, local).refs["u"]
    up2 = cells.run_cell("u = 5\n", {}, local).refs["u"]  # equal value, another key
    first = cells.run_cell(source, {"u": up1, "path": marker}, local, cache=True)
    assert cells.run_cell(source, {"u": up1, "path": marker}, local, cache=True).reused == first.call.id
    assert cells.run_cell(source, {"u": up2, "path": marker}, local, cache=True).reused is None
    # a memoized call's ref counts by its store key: two calls, two Dask keys, one input
    f = jupyter_remote.function(counted, cache=True)
    a, b = f.remote(1, marker), f.remote(1, marker)
    assert a.key != b.key
    g = cells.run_cell(source, {"u": a, "path": marker}, local, cache=True)
    assert cells.run_cell(source, {"u": b, "path": marker}, local, cache=True).reused == g.call.id


def test_a_no_wait_cell_is_stored_once_it_has_run(local, store, tmp_path):
    marker = str(tmp_path / "runs.txt")
    background = cells.run_cell(STAMP, {"n": 6, "path": marker}, local, cache=True, wait=False)
    value = background.refs["stamp"].get()
    wait_until(lambda: store.list(), what="the entry")
    found = cells.run_cell(STAMP, {"n": 6, "path": marker}, local, cache=True)
    assert found.reused == background.call.id and found.refs["stamp"].get() == value
    assert _runs(tmp_path / "runs.txt") == 1


SHARED_SOURCE = '''
import jupyter_remote

SCALE = 3

def slow(x, path):
    open(path, "a").write("run\\n")
    return x * SCALE

f = jupyter_remote.function(slow, cache=True)
'''


@pytest.mark.slow
def test_two_kernels_with_two_clusters_share_one_store(tmp_path):
    """Identical source typed in another kernel, with its own embedded cluster, hits."""
    from tests.widgets.kernel import Kernel

    store_dir = tmp_path / "store"
    marker = str(tmp_path / "runs.txt")
    env = {"DASK_JUPYTER_REMOTE__STORE__URL": str(store_dir),
           "DASK_JUPYTER_REMOTE__LOCAL__N_WORKERS": "1",
           "DASK_JUPYTER_REMOTE__WIDGETS": "text"}
    kernels = []
    try:
        addresses = []
        for _ in range(2):
            k = Kernel(env=env, cwd=str(tmp_path))
            kernels.append(k)
            k.execute("%load_ext jupyter_remote")
            k.execute(SHARED_SOURCE)
            msg = k.submit(f"print('value', f(14, {marker!r}))\n"
                           "print('at', jupyter_remote.cluster().address)")
            k.reply(msg, timeout=180)
            out = k.text(msg)
            assert "value 42" in out, out
            addresses.append(out.split("at ", 1)[1].split()[0])
            cell = k.submit(f"%%remote --cache\nopen({marker!r}, 'a').write('run\\n')\n"
                            "doubled = SCALE * 2\ndoubled\n")
            k.reply(cell, timeout=120)
            assert "6" in k.text(cell), k.text(cell)
        assert addresses[0] != addresses[1]  # two clusters
        assert _runs(tmp_path / "runs.txt") == 2  # the function once, the cell once
        assert "reused the result of call" in kernels[1].text(cell)
        # a change of the code in the second kernel misses
        kernels[1].execute(SHARED_SOURCE.replace("SCALE = 3", "SCALE = 4"))
        msg = kernels[1].submit(f"print('value', f(14, {marker!r}))")
        kernels[1].reply(msg)
        assert "value 56" in kernels[1].text(msg) and _runs(tmp_path / "runs.txt") == 3
    finally:
        for k in kernels:
            k.close()


def sized(x):
    return bytes(600) + bytes([x])


def test_max_size_evicts_least_recently_used_results(local, store):
    with dask.config.set({"jupyter-remote.store.max-size": 1500}):
        f = jupyter_remote.function(sized, cache=True)
        f(1), f(2)
        f(1)  # 1 is now used more recently than 2
        f(3)  # over 1,500 bytes: the least recently used entry (2) goes
    assert sorted(r["inputs"] for r in store.list()) == ["1", "3"]


def test_names_of_a_cached_cell_count_by_its_store_key(local, store, tmp_path):
    """A chain of cached cells hits end to end, though each run has other Dask keys."""
    marker = str(tmp_path / "runs.txt")
    up1 = cells.run_cell("u = 5\n", {}, local, cache=True).refs["u"]
    up2 = cells.run_cell("u = 5\n", {}, local, cache=True).refs["u"]  # a hit: new keys
    assert up1.key != up2.key
    source = "open(path, 'a').write('run\\n')\nv = u + 1\n"
    first = cells.run_cell(source, {"u": up1, "path": marker}, local, cache=True)
    again = cells.run_cell(source, {"u": up2, "path": marker}, local, cache=True)
    assert again.reused == first.call.id and _runs(tmp_path / "runs.txt") == 1


def test_map_of_a_cached_function_answers_items_from_the_store(local, store, tmp_path):
    marker = str(tmp_path / "runs.txt")
    f = jupyter_remote.function(counted, cache=True)
    assert f.map([1, 2, 3], [marker] * 3) == [2, 4, 6]
    assert f.map([2, 3, 4], [marker] * 3) == [4, 6, 8]  # 2 and 3 from the store
    assert f.starmap([(4, marker), (5, marker)]) == [8, 10]
    assert _runs(tmp_path / "runs.txt") == 5
    got = jupyter_remote.function(flaky, cache=True).map([marker + "x"], errors="return")
    assert isinstance(got[0], ValueError)
    with pytest.raises(ValueError, match="cache=True"):
        f.map([1], [marker], post=sum)
