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
import os
import signal
import subprocess
import sys
import time
from collections import deque
from typing import Any
from urllib.parse import urlparse

import dask.config
import dask.utils

from jupyter_remote import config
from jupyter_remote.core import registry
from jupyter_remote.server import defaults  # noqa: F401 (server defaults into dask config)
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


class BadRequest(ValueError):
    """A malformed or invalid request (HTTP 400)."""


class NotFound(KeyError):
    """No cluster of that name (HTTP 404)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Conflict(RuntimeError):
    """The request does not fit the cluster's state or owner (HTTP 409)."""


def _templates() -> dict[str, dict]:
    return dask.config.get("jupyter-remote.server.templates", default={}) or {}


def _seconds(key: str) -> float:
    return dask.utils.parse_timedelta(dask.config.get(f"jupyter-remote.server.{key}"))


class ClusterManager:
    """Lists, starts, scales and stops clusters; one per Jupyter server.

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
        entry = registry.get(name) if _valid(name) else None
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
        }

    def _model_from_config(self, name: str, spec: dict) -> ClusterModel:
        return {
            "name": name,
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
            await _quietly(client.close())
        client = await asyncio.wait_for(
            Client(address, asynchronous=True, timeout=PROBE_TIMEOUT, set_as_default=False),
            PROBE_TIMEOUT + 1,
        )
        raced = self._clients.get(address)
        if raced is not None and raced.status == "running":
            # Two clusters with one address (a kernel's `%remote connect` to a sidebar
            # cluster) are probed at once: keep one client; a second one nobody closes
            # would retry for ever once the scheduler goes.
            self._background(_quietly(client.close()))
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
        workers = info.get("workers", {}) or {}
        model["workers"] = len(workers)
        model["threads"] = sum(w.get("nthreads", 0) for w in workers.values())
        model["memory"] = sum(w.get("memory_limit", 0) or 0 for w in workers.values())
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
                self._background(_quietly(client.close()))

    # -- calls --------------------------------------------------------------------------
    async def calls(self, address: str) -> list[CallModel]:
        from jupyter_remote.server import probe

        client = await self._client(address)
        rows = await asyncio.wait_for(client.run_on_scheduler(probe.remote_calls), PROBE_TIMEOUT)
        return rows

    async def environments(self, address: str) -> list[EnvironmentModel]:
        """The requirement environments on the cluster's hosts, one row per hash."""
        from jupyter_remote.core import envstore

        client = await self._client(address)
        replies = await asyncio.wait_for(
            client.run(envstore.list_envs, on_error="return"), PROBE_TIMEOUT * 3
        )
        rows: dict[str, EnvironmentModel] = {}
        for records in replies.values():
            if isinstance(records, BaseException):
                continue  # a worker without jupyter_remote's store: nothing to show for it
            for record in records:
                row = rows.setdefault(
                    record["hash"],
                    {
                        "hash": str(record["hash"]),
                        "requirements": [str(r) for r in record.get("requirements") or []],
                        "hosts": [],
                        "size": 0,
                        "last_used": 0.0,
                        "in_use": False,
                    },
                )
                if record.get("host") not in row["hosts"]:
                    row["hosts"].append(str(record.get("host")))
                row["size"] = max(row["size"], int(record.get("size") or 0))
                row["last_used"] = max(row["last_used"], float(record.get("last_used") or 0))
                row["in_use"] = row["in_use"] or bool(record.get("in_use"))
        for row in rows.values():
            row["hosts"].sort()
        return sorted(rows.values(), key=lambda r: -r["last_used"])

    async def cancel_call(self, name: str, call: str) -> str:
        from jupyter_remote.core import runner
        from jupyter_remote.server import probe

        model = await self._find(name)
        if model["status"] != "running" or not model["address"]:
            raise Conflict(f"cluster {name!r} is {model['status']}; no calls to cancel")
        client = await self._client(model["address"])
        found = await client.run_on_scheduler(
            probe.cancel_call, call, "cancelled from the Remote clusters sidebar"
        )
        if not found["keys"]:
            raise NotFound(f"no running call {call!r} on cluster {name!r}")
        if found["workers"]:
            await client.run(runner.interrupt, call, workers=found["workers"], on_error="return")
        return f"call {found['label'] or call} cancelled"

    # -- starting, scaling, stopping ------------------------------------------------------
    async def create(self, body: Any) -> ClusterModel:
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object with 'template' and 'options'")
        unknown = set(body) - {"name", "template", "options"}
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}")
        templates = _templates()
        template = body.get("template")
        if template not in templates:
            raise BadRequest(
                f"template {template!r} is not known; known templates: {', '.join(templates)}"
            )
        options = self._options(templates[template], body.get("options", {}))
        name = body.get("name") or self._fresh_name()
        try:
            registry.validate_name(name)
        except registry.InvalidNameError as exc:
            raise BadRequest(str(exc)) from None
        if name in (config.get("clusters") or {}) or name == "local":
            raise Conflict(f"the name {name!r} is taken by a cluster defined in dask config")
        entry: registry.Entry = {
            "source": "server",
            "status": "starting",
            "template": template,
            "options": options,
            "workers": options.get("n_workers"),
            "adaptive": None,
            "address": None,
            "dashboard": None,
            "error": None,
            "pid": os.getpid(),  # until the launcher runs: kept alive by this server
            "created": time.time(),
        }

        def claim(old: registry.Entry | None) -> registry.Entry | None:
            if old is not None:
                raise Conflict(f"a cluster named {name!r} already exists")
            return entry

        registry.change(name, claim)
        try:
            child = self._spawn(name)
        except OSError as exc:
            registry.update(name, status="error", error=f"could not start a process: {exc}")
            raise
        self._children[name] = child
        registry.update(name, pid=child.pid)
        return await self._find(name)

    def _options(self, spec: dict, given: Any) -> dict[str, Any]:
        if not isinstance(given, dict):
            raise BadRequest("'options' must be a JSON object")
        declared = spec.get("options") or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise BadRequest(
                f"unknown option(s) {', '.join(sorted(unknown))}; this template takes "
                f"{', '.join(declared) or 'no options'}"
            )
        out = {}
        for opt, o in declared.items():
            value = given.get(opt, o.get("default"))
            kind = str(o.get("type", "str"))
            ok = isinstance(value, _TYPES.get(kind, object)) and not (
                kind in ("int", "float") and isinstance(value, bool)
            )
            if not ok:
                raise BadRequest(f"option {opt!r} must be of type {kind}; got {value!r}")
            if o.get("minimum") is not None and value < o["minimum"]:
                raise BadRequest(f"option {opt!r} must be at least {o['minimum']}; got {value!r}")
            out[opt] = value
        return out

    def _fresh_name(self) -> str:
        taken = set(registry.names()) | set(config.get("clusters") or {})
        n = 1
        while f"lab-{n}" in taken:
            n += 1
        return f"lab-{n}"

    def _spawn(self, name: str) -> subprocess.Popen:
        directory = os.path.join(os.path.dirname(registry.path()), "logs")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        logfile = os.path.join(directory, f"{registry.validate_name(name)}.log")
        env = dict(os.environ)
        env["DASK_JUPYTER_REMOTE__REGISTRY_PATH"] = registry.path()
        with open(logfile, "ab", buffering=0) as log:
            os.chmod(logfile, 0o600)
            return subprocess.Popen(
                [sys.executable, "-m", "jupyter_remote.server.launcher", name],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives this server, and its Ctrl-C
                close_fds=True,
            )

    def _reap(self) -> None:
        """Turn a launcher that died while starting into a visible error."""
        for name, child in list(self._children.items()):
            code = child.poll()
            if code is None:
                continue
            del self._children[name]
            entry = registry.entries(include_stale=True).get(name)
            if entry is not None and entry.get("status") == "starting":
                tail = _tail(name)
                registry.put(
                    {
                        **entry,
                        "status": "error",
                        "error": f"the cluster's process exited with code {code}: {tail}",
                    }
                )

    def _start_timed_out(self, entry: registry.Entry) -> registry.Entry:
        pid = entry.get("pid")
        if isinstance(pid, int) and pid != os.getpid():
            _kill(pid)
        timeout = _seconds("start-timeout")
        return registry.put(
            {
                **entry,
                "status": "error",
                "error": f"the cluster did not start within {timeout:g} s (jupyter-remote."
                "server.start-timeout); its process was stopped",
            }
        )

    async def scale(self, name: str, body: Any) -> ClusterModel:
        change = _scale_request(body)
        model = await self._managed(name)
        if model["status"] not in ("running", "starting", "unreachable"):
            raise Conflict(f"cluster {name!r} is {model['status']}; it cannot be scaled")
        registry.update(name, **change)
        return await self._find(name)

    async def shutdown(self, name: str) -> None:
        model = await self._managed(name)
        entry = registry.get(name)
        pid = entry.get("pid") if entry else None
        if model["status"] == "error" or not registry.pid_alive(pid) or pid == os.getpid():
            registry.remove(name)
            return
        registry.update(name, shutdown=True, status="stopping")
        if model["address"]:  # close ours before the scheduler goes, not after
            self._forget_clients({a for a in self._clients if a != model["address"]})
        self._background(self._kill_later(name, pid))

    def _background(self, coro) -> None:
        """Run ``coro`` on the server's loop, holding a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _kill_later(self, name: str, pid: int) -> None:
        deadline = time.monotonic() + _seconds("stop-timeout")
        while time.monotonic() < deadline:
            if not registry.pid_alive(pid):
                break
            await asyncio.sleep(0.5)
            self._reap()
        else:
            logger.warning("cluster %s did not stop in time; killing its process %s", name, pid)
            _kill(pid)
        registry.remove(name, pid=pid)

    async def _managed(self, name: str) -> ClusterModel:
        model = await self._find(name)
        if not model["manageable"]:
            owner = {
                "kernel": f"the kernel (pid {model['pid']}) that started it",
                "config": "dask config",
            }.get(model["source"], model["source"])
            raise Conflict(
                f"cluster {name!r} belongs to {owner}; only clusters started from the sidebar "
                "can be scaled or shut down here"
            )
        return model

    async def close(self) -> None:
        """Drop our scheduler connections; the clusters themselves keep running."""
        for client in self._clients.values():
            await _quietly(client.close())
        self._clients.clear()


def _scale_request(body: Any) -> dict[str, Any]:
    """The registry fields a scale request sets, or :class:`BadRequest`."""
    if not isinstance(body, dict) or len(body) != 1 or not set(body) <= {"workers", "adaptive"}:
        raise BadRequest('expected {"workers": N} or {"adaptive": {"minimum": M, "maximum": N}}')
    if "workers" in body:
        n = body["workers"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise BadRequest(f"'workers' must be a whole number >= 0; got {n!r}")
        return {"workers": n, "adaptive": None}
    adaptive = body["adaptive"]
    lo = adaptive.get("minimum") if isinstance(adaptive, dict) else None
    hi = adaptive.get("maximum") if isinstance(adaptive, dict) else None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)):
        raise BadRequest("'adaptive' needs whole numbers 'minimum' and 'maximum'")
    if not 0 <= lo <= hi:
        raise BadRequest(f"adaptive bounds must satisfy 0 <= minimum <= maximum; got {lo}, {hi}")
    return {"adaptive": {"minimum": lo, "maximum": hi}, "workers": None}


def _valid(name: str) -> bool:
    try:
        registry.validate_name(name)
    except registry.InvalidNameError:
        return False
    return True


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(name: str, lines: int = 5) -> str:
    fn = os.path.join(os.path.dirname(registry.path()), "logs", f"{name}.log")
    try:
        with open(fn, errors="replace") as f:
            return " | ".join(line.rstrip() for line in deque(f, lines))
    except OSError:
        return "(no log)"


async def _quietly(awaitable) -> None:
    try:
        await asyncio.wait_for(awaitable, 5)
    except Exception:
        logger.debug("ignored error while closing", exc_info=True)
