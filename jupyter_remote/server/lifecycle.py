"""Starting, scaling and stopping the clusters the sidebar owns.

A cluster started here runs in a launcher process of its own
(``python -m jupyter_remote.server.launcher NAME``); the registry entry is how the two talk:
the manager writes the request (workers, adaptive bounds, shutdown), the launcher applies it
and writes back the state. :class:`Lifecycle` is the half of
:class:`~jupyter_remote.server.manager.ClusterManager` that does this.
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

import dask.config
import dask.utils

from jupyter_remote import config
from jupyter_remote.core import registry
from jupyter_remote.server.errors import BadRequest, Conflict
from jupyter_remote.server.models import ClusterModel

logger = logging.getLogger("jupyter_remote.server.manager")

_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool}


def _templates() -> dict[str, dict]:
    return dask.config.get("jupyter-remote.server.templates", default={}) or {}


def _seconds(key: str) -> float:
    return dask.utils.parse_timedelta(dask.config.get(f"jupyter-remote.server.{key}"))


class Lifecycle:
    """Create, scale and shut down sidebar clusters (a base of ``ClusterManager``, which
    provides ``_find``, ``_clients``, ``_children`` and ``_tasks``)."""

    async def create(self, body: Any) -> ClusterModel:
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object with 'template' and 'options'")
        unknown = set(body) - {"name", "template", "options"}
        if unknown:
            raise BadRequest(f"unknown field(s) {_names(unknown)}; "
                             "expected 'template', 'options' and optionally 'name'")
        templates = _templates()
        template = body.get("template")
        if template not in templates:
            raise BadRequest(
                f"template {shown(template)} is not known; known templates: {', '.join(templates)}"
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
                f"unknown option(s) {_names(unknown)}; this template takes "
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
                raise BadRequest(f"option {opt!r} must be of type {kind}; got {shown(value)}")
            if o.get("minimum") is not None and value < o["minimum"]:
                raise BadRequest(f"option {opt!r} must be at least {o['minimum']}; got {value!r}")
            if opt == "n_workers" and value > max_workers():
                raise BadRequest(_too_many("option 'n_workers'", value))
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



def _scale_request(body: Any) -> dict[str, Any]:
    """The registry fields a scale request sets, or :class:`BadRequest`."""
    if not isinstance(body, dict) or len(body) != 1 or not set(body) <= {"workers", "adaptive"}:
        raise BadRequest('expected {"workers": N} or {"adaptive": {"minimum": M, "maximum": N}}')
    if "workers" in body:
        n = body["workers"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise BadRequest(f"'workers' must be a whole number >= 0; got {shown(n)}")
        if n > max_workers():
            raise BadRequest(_too_many("'workers'", n))
        return {"workers": n, "adaptive": None}
    adaptive = body["adaptive"]
    lo = adaptive.get("minimum") if isinstance(adaptive, dict) else None
    hi = adaptive.get("maximum") if isinstance(adaptive, dict) else None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)):
        raise BadRequest("'adaptive' needs whole numbers 'minimum' and 'maximum'")
    if not 0 <= lo <= hi:
        raise BadRequest(f"adaptive bounds must satisfy 0 <= minimum <= maximum; got {lo}, {hi}")
    if hi > max_workers():
        raise BadRequest(_too_many("adaptive 'maximum'", hi))
    return {"adaptive": {"minimum": lo, "maximum": hi}, "workers": None}


def max_workers() -> int:
    """The most workers a request may ask for (``jupyter-remote.server.max-workers``)."""
    return int(dask.config.get("jupyter-remote.server.max-workers", default=1000))


def _too_many(what: str, n: int) -> str:
    return (f"{what} asks for {n:,} workers, more than jupyter-remote.server.max-workers "
            f"({max_workers():,}) allows; ask for fewer, or raise that setting in dask config")


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters: error messages quote what a
    request sent, never all of it (an 8 MB name would be echoed into the reply and the log)."""
    return _cut(repr(value), limit)


def _names(names: set[Any]) -> str:
    """Unknown keys of a request, listed and cut like :func:`shown` (without quotes)."""
    return _cut(", ".join(sorted(map(str, names))), 80)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text):,} characters)"


def valid_name(name: str) -> bool:
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


async def quietly(awaitable) -> None:
    try:
        await asyncio.wait_for(awaitable, 5)
    except Exception:
        logger.debug("ignored error while closing", exc_info=True)
