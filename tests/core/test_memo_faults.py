"""``%%remote --cache`` after a lost worker and after a restarted cluster (issue 15 item 5).

What a cached cell stored lives in the result store, not in a worker's memory: when the worker
that ran it dies, or the whole cluster restarts (every value in memory gone), the same cell
typed again is a hit all the same. It does not run (a file the cell appends to proves it),
and its names bind to the stored values, which download as they were, never a ref to a value
that went with the worker.
"""

from __future__ import annotations

import os
import re
import signal

import dask
import pytest
from distributed import LocalCluster

from jupyter_remote.core import clusters
from tests.conftest import wait_until

CELL = (
    "import os, time\n"
    "open(marker, 'a').write('run\\n')\n"
    "made = (time.time_ns(), os.getpid(), size)\n"
)


@pytest.fixture
def two_workers(tmp_path):
    with dask.config.set({"jupyter-remote.store.url": (tmp_path / "store").as_uri()}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc:
            yield lc
            for found in clusters.all_clusters():  # disconnect before the scheduler goes
                if getattr(found, "address", None) == lc.scheduler_address:
                    found.close()


def _runs(path) -> int:
    return path.read_text().count("run") if path.exists() else 0


def _cached(run, capsys, address: str, marker) -> tuple[tuple, str]:
    """Run the cached cell on ``address``; (the value it bound, what the cell said)."""
    capsys.readouterr()
    run(f"%%remote {address} --cache\n{CELL}", marker=str(marker), size=7)
    said = "".join(capsys.readouterr())
    return run("made").get(timeout=60), said


def test_a_lost_worker_leaves_the_cached_cell_a_hit(run, capsys, two_workers, tmp_path):
    marker = tmp_path / "runs.txt"
    address = two_workers.scheduler_address
    first, _ = _cached(run, capsys, address, marker)
    client = two_workers.get_client()
    [holder] = [a for a, pid in client.run(os.getpid).items() if pid == first[1]]
    os.kill(first[1], signal.SIGKILL)  # the worker that ran it and holds its value
    wait_until(lambda: holder not in client.scheduler_info(n_workers=-1)["workers"],
               timeout=60, what="the scheduler to see the worker gone")
    again, said = _cached(run, capsys, address, marker)
    assert again == first and _runs(marker) == 1, said
    assert re.search(r"reused the result of call \w+", said), said


def test_a_restarted_cluster_leaves_the_cached_cell_a_hit(run, capsys, two_workers, tmp_path):
    marker = tmp_path / "runs.txt"
    address = two_workers.scheduler_address
    first, _ = _cached(run, capsys, address, marker)
    client = two_workers.get_client()
    before = set(client.run(os.getpid).values())
    client.restart()  # every worker process replaced: nothing in memory survives
    assert not before & set(client.run(os.getpid).values())
    again, said = _cached(run, capsys, address, marker)
    assert again == first and _runs(marker) == 1, said
    assert re.search(r"reused the result of call \w+", said), said
    # Another input still runs: the store answers only what it holds.
    run(f"%%remote {address} --cache\n{CELL}", marker=str(marker), size=8)
    assert run("made").get(timeout=60)[2] == 8 and _runs(marker) == 2
