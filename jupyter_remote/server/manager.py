"""The cluster manager behind the REST handlers: the sidebar's logic, testable without HTTP.

Every cluster comes from one source of truth, the registry file that kernels also read and
write (``jupyter_remote.core.registry``), plus the clusters defined in dask config. Clusters
started here run in a launcher process of their own (``jupyter_remote.server.launcher``), so
starting one never blocks the server's event loop and a restarted server finds them again.
Live figures (workers, threads, memory, running calls) come from each scheduler through an
asynchronous Dask client.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from typing import Any
from urllib.parse import urlparse

import dask.config
import dask.utils

from jupyter_remote import config
from jupyter_remote.core import registry
from jupyter_remote.core.clusters import worker_totals
from jupyter_remote.server import defaults  # noqa: F401 (server defaults into dask config)
from jupyter_remote.server.errors import BadRequest, Conflict, NotFound
from jupyter_remote.server.lifecycle import Lifecycle, quietly, valid_name
from jupyter_remote.server.models import (
    CallModel,
    ClusterDetailModel,
    ClusterModel,
    EnvironmentModel,
    TemplateModel,
    TemplateOptionModel,
)

logger = logging.getLogger(__name__)

_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool}
PROBE_TIMEOUT = 3.0
RETRY_UNREACHABLE = 15.0  # seconds before an unreachable scheduler is tried again


def _templates() -> dict[str, dict]:
    return dask.config.get("jupyter-remote.server.templates", default={}) or {}


def _seconds(key: str) -> float:
    return dask.utils.parse_timedelta(dask.config.get(f"jupyter-remote.server.{key}"))


class ClusterManager(Lifecycle):
    """Lists, starts, scales and stops clusters; one per Jupyter server.

    Listing and probing live here; starting, scaling and stopping in
    :class:`~jupyter_remote.server.lifecycle.Lifecycle`.

    Parameters
    ----------
    proxy_prefix
        URL path under which the server proxies local ports (jupyter-server-proxy's
        ``{base_url}proxy/``), or ``None`` when no proxy is available.
    """

    def __init__(self, proxy_prefix: str | None = None):
        self.proxy_prefix = proxy_prefix
        self._clients: dict[str, Any] = {}
        self._children: dict[str, subprocess.Popen] = {}
        self._tasks: set[asyncio.Task] = set()
        self._unreachable: dict[str, tuple[float, str]] = {}

    # -- templates ----------------------------------------------------------------------
    def templates(self) -> list[TemplateModel]:
        out: list[TemplateModel] = []
        for name, spec in _templates().items():
            options: list[TemplateOptionModel] = [
                {
                    "name": opt,
                    "type": str(o.get("type", "str")),
                    "default": o.get("default"),
                    "title": str(o.get("title") or opt.replace("_", " ").capitalize()),
                    "description": str(o.get("description", "")),
                    "minimum": o.get("minimum"),
                }
                for opt, o in (spec.get("options") or {}).items()
            ]
            out.append(
                {
                    "name": name,
                    "title": str(spec.get("title", name)),
                    "description": str(spec.get("description", "")),
                    "factory": str(spec.get("factory", "")),
                    "options": options,
                }
            )
        return out

    # -- listing ------------------------------------------------------------------------
    async def list(self) -> list[ClusterModel]:
        """Every cluster: the registry's (server and kernels) and dask config's."""
        self._reap()
        entries = registry.entries()
        models = [self._model_from_entry(entry) for entry in entries.values()]
        for name, spec in (config.get("clusters") or {}).items():
            if name not in entries and isinstance(spec, dict):
                models.append(self._model_from_config(name, spec))
        await asyncio.gather(*(self._probe(m) for m in models))
        # Only running clusters keep a connection: a client left to a scheduler that went
        # away retries forever and fills the server's log with reconnect tracebacks.
        self._forget_clients({m["address"] for m in models if m["status"] == "running"})
        return sorted(models, key=lambda m: (m["source"] != "server", m["name"]))

    async def get(self, name: str) -> ClusterDetailModel:
        model = await self._find(name)
        detail: ClusterDetailModel = {**model, "calls": [], "environments": []}  # type: ignore[typeddict-item]
        if model["status"] == "running" and model["address"]:
            try:
                detail["calls"] = await self.calls(model["address"])
                detail["environments"] = await self.environments(model["address"])
            except Exception as exc:  # the card still shows; the reason is shown with it
                detail["error"] = (
                    f"could not list calls and environments: {type(exc).__name__}: {exc}"
                )
        return detail

    async def _find(self, name: str) -> ClusterModel:
        self._reap()
        entry = registry.get(name) if valid_name(name) else None
        if entry is not None:
            model = self._model_from_entry(entry)
        else:
            spec = (config.get("clusters") or {}).get(name)
            if not isinstance(spec, dict):
                raise NotFound(f"cluster {name!r} is not known")
            model = self._model_from_config(name, spec)
        await self._probe(model)
        return model

    def _model_from_entry(self, entry: registry.Entry) -> ClusterModel:
        status = entry.get("status") or "running"
        if status == "starting" and time.time() - (entry.get("created") or 0) > _seconds(
            "start-timeout"
        ):
            entry = self._start_timed_out(entry)
            status = "error"
        return {
            "name": entry["name"],
            "label": entry.get("title") or entry["name"],
            "address": entry.get("address"),
            "source": entry.get("source", "kernel"),
            "status": status,
            "error": entry.get("error"),
            "manageable": entry.get("source") == "server",
            "dashboard": self._proxied(entry.get("dashboard")),
            "dashboard_direct": entry.get("dashboard"),
            "workers": None,
            "threads": None,
            "memory": None,
            "requested_workers": entry.get("workers"),
            "adaptive": entry.get("adaptive"),  # type: ignore[typeddict-item]
            "template": entry.get("template"),
            "options": dict(entry.get("options") or {}),
            "created": entry.get("created"),
            "pid": entry.get("pid"),
            "notebook": entry.get("notebook"),
            "users": [
                {"pid": u["pid"], "notebook": u.get("notebook")} for u in entry.get("users") or []
            ],
        }

    def _model_from_config(self, name: str, spec: dict) -> ClusterModel:
        return {
            "name": name,
            "label": name,
            "address": spec.get("address"),
            "source": "config",
            "status": "running" if spec.get("address") else "not started",
            "error": None,
            "manageable": False,
            "dashboard": None,
            "dashboard_direct": None,
            "workers": None,
            "threads": None,
            "memory": None,
            "requested_workers": None,
            "adaptive": None,
            "template": spec.get("factory"),
            "options": dict(spec.get("kwargs") or {}),
            "created": None,
            "pid": None,
            "notebook": None,
            "users": [],
        }

    def _proxied(self, link: str | None) -> str | None:
        """The dashboard through the server's authenticated proxy (local dashboards only)."""
        if not link or self.proxy_prefix is None:
            return None
        url = urlparse(link)
        if url.hostname not in ("127.0.0.1", "localhost") or not url.port:
            return None
        return f"{self.proxy_prefix}{url.port}{url.path or '/status'}"

    async def _client(self, address: str):
        from distributed import Client

        client = self._clients.get(address)
        if client is not None and client.status == "running":
            return client
        if client is not None:
            await quietly(client.close())
        client = await asyncio.wait_for(
            Client(address, asynchronous=True, timeout=PROBE_TIMEOUT, set_as_default=False),
            PROBE_TIMEOUT + 1,
        )
        raced = self._clients.get(address)
        if raced is not None and raced.status == "running":
            # Two clusters with one address (a kernel's `%remote connect` to a sidebar
            # cluster) are probed at once: keep one client; a second one nobody closes
            # would retry for ever once the scheduler goes.
            self._background(quietly(client.close()))
            return raced
        self._clients[address] = client
        return client

    async def _probe(self, model: ClusterModel) -> None:
        """Fill in workers, threads, memory and a dashboard link from the scheduler."""
        if model["status"] != "running" or not model["address"]:
            return
        address = model["address"]
        failed = self._unreachable.get(address)
        if failed is not None and time.monotonic() - failed[0] < RETRY_UNREACHABLE:
            # Don't make every refresh wait for the same timeout again.
            model["status"], model["error"] = "unreachable", model["error"] or failed[1]
            return
        try:
            client = await self._client(address)
            info = await asyncio.wait_for(client.scheduler.identity(n_workers=-1), PROBE_TIMEOUT)
        except Exception as exc:
            error = f"cannot reach the scheduler at {address}: {type(exc).__name__}: {exc}"
            self._unreachable[address] = (time.monotonic(), error)
            self._forget_clients({a for a in self._clients if a != address})
            model["status"] = "unreachable"
            model["error"] = model["error"] or error
            return
        self._unreachable.pop(address, None)
        model.update(worker_totals(info.get("workers", {}) or {}))  # type: ignore[typeddict-item]
        if model["dashboard_direct"] is None:
            port = (info.get("services") or {}).get("dashboard")
            host = urlparse(model["address"]).hostname
            if port and host:
                model["dashboard_direct"] = f"http://{host}:{port}/status"
                model["dashboard"] = self._proxied(model["dashboard_direct"])

    def _forget_clients(self, addresses: set[str]) -> None:
        for address in list(self._clients):
            if address not in addresses:
                client = self._clients.pop(address)
                self._background(quietly(client.close()))

    # -- calls --------------------------------------------------------------------------
    async def calls(self, address: str) -> list[CallModel]:
        from jupyter_remote import on_scheduler

        client = await self._client(address)
        rows = await asyncio.wait_for(client.run_on_scheduler(on_scheduler.remote_calls), PROBE_TIMEOUT)
        return rows

    async def environments(self, address: str) -> list[EnvironmentModel]:
        """The requirement environments on the cluster's hosts, one row per hash; those whose
        build record names this cluster's scheduler are ``built_here`` (hosts may share an
        environment root with other clusters, whose environments are listed too)."""
        from jupyter_remote.core.environments import merge_envs
        from jupyter_remote.worker import envstore

        client = await self._client(address)
        replies = await asyncio.wait_for(
            client.run(envstore.list_envs, on_error="return"), PROBE_TIMEOUT * 3
        )
        ours = {address, client.scheduler.address}
        here = {
            str(record.get("hash"))
            for records in replies.values()
            if not isinstance(records, BaseException)
            for record in records
            if record.get("scheduler") in ours
        }
        keys = EnvironmentModel.__annotations__
        return [
            {**{k: v for k, v in row.items() if k in keys}, "built_here": row["hash"] in here}  # type: ignore[misc]
            for row in merge_envs(replies)
        ]

    async def cancel_call(self, name: str, call: str) -> str:
        from jupyter_remote import on_scheduler
        from jupyter_remote.worker import runner

        model = await self._find(name)
        if model["status"] != "running" or not model["address"]:
            raise Conflict(f"cluster {name!r} is {model['status']}; no calls to cancel")
        client = await self._client(model["address"])
        found = await client.run_on_scheduler(
            on_scheduler.cancel_call, call, "cancelled from the Remote clusters sidebar"
        )
        if not found["keys"]:
            raise NotFound(  # the call ended (or never was): say so, cancel nothing
                f"nothing to stop: {found['label'] or 'call ' + repr(call)} is not queued or "
                "running on cluster "
                f"{model.get('label') or name!r} (it may have just finished)"
            )
        if found["workers"]:
            await client.run(runner.interrupt, call, workers=found["workers"], on_error="return")
        return f"call {found['label'] or call} cancelled"

    async def close(self) -> None:
        """Drop our scheduler connections; the clusters themselves keep running."""
        for client in self._clients.values():
            await quietly(client.close())
        self._clients.clear()


__all__ = ["BadRequest", "ClusterManager", "Conflict", "NotFound"]
