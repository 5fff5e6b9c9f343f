"""Non-default ``jupyter-remote`` settings are honoured by a fresh embedded cluster.

Each setting needs a cluster of its own started under it, so each case runs in a fresh Python
process (the run's hermetic environment plus one ``DASK_JUPYTER_REMOTE__...`` variable) that
starts the embedded ``local`` cluster as a notebook would and prints what it sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from distributed import LocalCluster

PROBE = r"""
import json, os
from jupyter_remote.core import clusters
import jupyter_remote

found = clusters.cluster()
client = found.client
info = client.scheduler_info()
workers = info["workers"]
out = {
    "default": clusters.default_name(),
    "n_workers": len(workers),
    "threads": sorted(w["nthreads"] for w in workers.values()),
    "scheduler_pid": client.run_on_scheduler(os.getpid),
    "me": os.getpid(),
    "intervals": sorted(client.run(lambda dask_worker: float(dask_worker.batched_stream.interval)).values()),
    "ran_in": jupyter_remote.function(lambda: os.getpid())(),
    "worker_pids": sorted(client.run(os.getpid).values()),
}
if os.environ.get("PROBE_MAP"):
    def task_key(i):
        from distributed import get_worker
        return str(get_worker().get_current_task())
    out["map_keys"] = jupyter_remote.function(task_key).map(range(12))
if os.environ.get("PROBE_LOG"):
    def log_marker():
        import logging
        logging.getLogger("distributed.worker").warning("probe-log-marker from %d", os.getpid())
    client.run(log_marker)
    from jupyter_remote.core import embedded
    out["log_path"] = embedded.log_path()

print("PROBE " + json.dumps(out))
clusters.close_all()
"""


def probe(env_extra: dict | None = None, **settings: str) -> dict:
    env = dict(os.environ, **(env_extra or {}))
    for key, value in settings.items():
        env[f"DASK_JUPYTER_REMOTE__{key}"] = value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=300, cwd=os.getcwd())
    lines = [x for x in done.stdout.splitlines() if x.startswith("PROBE ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("PROBE "):])


def test_n_workers_and_threads_per_worker():
    seen = probe(LOCAL__N_WORKERS="1", LOCAL__THREADS_PER_WORKER="3")
    assert seen["n_workers"] == 1 and seen["threads"] == [3]
    seen = probe(LOCAL__N_WORKERS="2", LOCAL__THREADS_PER_WORKER="1")
    assert seen["n_workers"] == 2 and seen["threads"] == [1, 1]


@pytest.mark.parametrize("own_process", [True, False])
def test_scheduler_process(own_process):
    seen = probe(LOCAL__N_WORKERS="1", LOCAL__SCHEDULER_PROCESS=str(own_process))
    assert (seen["scheduler_pid"] != seen["me"]) is own_process
    assert seen["ran_in"] in seen["worker_pids"] and seen["ran_in"] != seen["me"]


@pytest.mark.parametrize("interactive", [True, False])
def test_interactive_zeroes_the_workers_send_interval_only_when_set(interactive):
    seen = probe(LOCAL__N_WORKERS="1", LOCAL__INTERACTIVE=str(interactive))
    assert (seen["intervals"] == [0.0]) is interactive, seen["intervals"]


def test_default_cluster_is_where_calls_go_without_a_cluster():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as other:
        seen = probe(DEFAULT_CLUSTER=other.scheduler_address)
        assert seen["default"] == other.scheduler_address
        assert seen["ran_in"] in set(other.get_client().run(os.getpid).values())


@pytest.mark.parametrize("size", [3, 4])  # auto would cut 12 items on 2 threads in 6s
def test_map_batch_size_fixes_the_items_per_task(size):
    seen = probe({"PROBE_MAP": "1"}, LOCAL__N_WORKERS="1", LOCAL__THREADS_PER_WORKER="2",
                 MAP__BATCH_SIZE=str(size))
    keys = seen["map_keys"]
    assert len(keys) == 12
    groups = [keys[i:i + size] for i in range(0, 12, size)]
    assert all(len(set(g)) == 1 for g in groups), keys  # each batch is one Dask task
    assert len(set(keys)) == 12 // size, keys


def test_the_embedded_cluster_logs_to_the_file_the_readme_names(tmp_path):
    seen = probe({"PROBE_LOG": "1", "TMPDIR": str(tmp_path)}, LOCAL__N_WORKERS="1")
    path = tmp_path / f"jupyter-remote-local-{seen['me']}.log"
    assert seen["log_path"] == str(path)
    (worker,) = seen["worker_pids"]
    assert f"probe-log-marker from {worker}" in path.read_text()
