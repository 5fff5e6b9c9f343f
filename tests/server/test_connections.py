"""The manager's own scheduler connections: kept only while a cluster is up.

A Dask client left connected to a scheduler that went away retries for ever, and each retry
writes a ``Failed to reconnect to scheduler`` traceback into the Jupyter server's log.
"""

from __future__ import annotations

import asyncio
import os

from jupyter_remote.core import registry
from jupyter_remote.server.manager import ClusterManager


def test_the_connection_to_a_scheduler_that_went_away_is_closed(registry_path):
    from distributed import Scheduler

    async def main():
        manager = ClusterManager()
        try:
            async with Scheduler(host="127.0.0.1", port=0, dashboard=False) as scheduler:
                address = scheduler.address
                registry.put(
                    {"name": "brief", "address": address, "source": "kernel",
                     "pid": os.getpid(), "status": "running"}
                )  # fmt: skip
                (model,) = await manager.list()
                assert model["status"] == "running" and model["workers"] == 0
                assert list(manager._clients) == [address]
                assert len(scheduler.clients) >= 1  # the manager's client is connected
            (model,) = await manager.list()
            assert model["status"] == "unreachable", model
            assert address in model["error"]
            assert manager._clients == {}  # nothing left that would retry
        finally:
            await asyncio.gather(*manager._tasks)  # the closes it started
            await manager.close()

    asyncio.run(main())


def test_a_stopping_cluster_keeps_no_connection(registry_path):
    from distributed import Scheduler

    async def main():
        manager = ClusterManager()
        try:
            async with Scheduler(host="127.0.0.1", port=0, dashboard=False) as scheduler:
                registry.put(
                    {"name": "brief", "address": scheduler.address, "source": "kernel",
                     "pid": os.getpid(), "status": "running"}
                )  # fmt: skip
                await manager.list()
                assert list(manager._clients) == [scheduler.address]
                registry.update("brief", status="stopping")
                (model,) = await manager.list()
                assert model["status"] == "stopping"
                assert manager._clients == {}  # closed before the scheduler goes
        finally:
            await asyncio.gather(*manager._tasks)  # the closes it started
            await manager.close()

    asyncio.run(main())


def test_two_clusters_at_one_address_share_one_connection(registry_path):
    from distributed import Scheduler

    async def main():
        manager = ClusterManager()
        try:
            async with Scheduler(host="127.0.0.1", port=0, dashboard=False) as scheduler:
                for name in ("brief", "alias"):  # e.g. a kernel's `%remote connect` to it
                    registry.put(
                        {"name": name, "address": scheduler.address, "source": "kernel",
                         "pid": os.getpid(), "status": "running"}
                    )  # fmt: skip
                models = await manager.list()
                assert [m["status"] for m in models] == ["running", "running"]
                await asyncio.gather(*manager._tasks)  # the closes it started
                ours = [c for c in scheduler.clients if c != "fire-and-forget"]
                assert len(ours) == 1, ours  # none left over that would retry for ever
        finally:
            await asyncio.gather(*manager._tasks)
            await manager.close()

    asyncio.run(main())
