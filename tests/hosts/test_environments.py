"""Requirement environments on separate hosts: built once per host (two hosts build, a third
call reuses), and rebuilt on demand on a host rebooted with an empty disk."""

from __future__ import annotations

import dask

import jupyter_remote
from tests import wheelhouse
from tests.conftest import wait_until

house = wheelhouse.house


def env_record():
    import json
    import os

    import jrtoy

    import jupyter_remote

    env = jupyter_remote.get_env()
    with open(os.path.join(env["path"], "jupyter-remote-env.json")) as f:
        record = json.load(f)
    return {"build": record["build_id"], "path": env["path"], "version": jrtoy.VERSION}


def test_built_once_per_host_and_again_after_a_reboot(hosts, house):
    cluster, found = hosts
    with dask.config.set({"jupyter-remote.pip-options": ["--no-index", "--find-links", house]}):
        def on(host):
            fn = jupyter_remote.function(env_record, found, reqs=["jrtoy==1.0"],
                                         resources={host: 1})
            return fn()

        one, two, again = on("w1"), on("w2"), on("w1")
        assert one["version"] == two["version"] == "1.0"
        assert one["path"].startswith(str(cluster.hosts["w1"].env_root))
        assert two["path"].startswith(str(cluster.hosts["w2"].env_root))
        assert one["build"] != two["build"]  # each host built its own
        assert again["build"] == one["build"]  # and the third call reused w1's

        # w2 reboots with an empty disk: killed, its folders gone, started again.
        cluster.kill_worker("w2")
        cluster.wipe("w2")
        assert not cluster.hosts["w2"].env_root.exists()
        cluster.start_worker("w2")
        wait_until(lambda: len(found.client.scheduler_info(n_workers=-1)["workers"]) == 2, 90,
                   "the rebooted worker to join")
        rebuilt = on("w2")
        assert rebuilt["version"] == "1.0"
        assert rebuilt["build"] != two["build"]
        assert rebuilt["path"].startswith(str(cluster.hosts["w2"].env_root))
