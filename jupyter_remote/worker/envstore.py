"""The environments built on one host: build once, under a lock, atomically; list; prune.

A spec (:mod:`jupyter_remote.wire.envspec`) becomes a virtual environment
under the environments root (``jupyter-remote.environments.root``), keyed by the spec's hash
plus this worker's Python version, platform and interpreter. It is built once per host and
key: under a file lock, into a temporary folder renamed into place on success; a failed build
leaves nothing. The venv is layered over the worker's own packages by a ``.pth`` file
processed after its own site-packages, so what the env pins shadows what the worker has.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import socket
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jupyter_remote import config
from jupyter_remote.wire.locks import file_lock, is_locked
from jupyter_remote.worker import envbuild
from jupyter_remote.worker.envbuild import RECORD


# -- worker side: building -----------------------------------------------------------------
def root() -> str:
    """The folder holding this host's environments (``jupyter-remote.environments.root``)."""
    configured = config.get("environments.root")
    if configured:
        return os.path.abspath(os.path.expanduser(str(configured)))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "jupyter_remote", "envs")


def env_key(spec: dict[str, Any]) -> str:
    """The spec's requirements hash for this host's interpreter and platform."""
    tag = "\0".join([
        spec["reqs_hash"] or "", sys.implementation.name, "{}.{}".format(*sys.version_info[:2]),
        sys.platform, platform.machine(), os.path.realpath(sys.executable),
    ])
    return hashlib.sha256(tag.encode()).hexdigest()[:16]


class Env:
    """A built environment (or the worker's own interpreter, for files without requirements)."""

    def __init__(self, key: str, path: str | None, python: str, record: dict[str, Any]):
        self.key = key
        self.path = path
        self.python = python
        self.record = record


_ready: dict[str, Env] = {}
_ready_lock = threading.Lock()


def ensure(
    spec: dict[str, Any],
    on_line: Callable[[str], None] | None = None,
    on_building: Callable[[], None] | None = None,
    free: Callable[[list[str]], None] | None = None,
) -> Env:
    """The environment of ``spec`` on this host, built now if it is not there yet.

    ``on_building()`` runs once if this call builds (or waits for another call building
    it); ``on_line(text)`` receives pip's output lines as they come; ``free(keys)`` closes
    the idle processes of those environments, so the size cap after a build can remove them.
    """
    if not spec.get("reqs_hash"):
        return Env("base", None, sys.executable, {"requirements": []})
    key = env_key(spec)
    env = _ready.get(key)
    if env is not None and os.path.exists(env.python):
        _touch(env.path)
        return env
    base = root()
    path = os.path.join(base, key)
    record_path = os.path.join(path, RECORD)
    if not os.path.exists(record_path):
        if on_building is not None:
            on_building()
        os.makedirs(os.path.join(base, ".locks"), exist_ok=True)
        with file_lock(os.path.join(base, ".locks", f"{key}.lock")):
            if not os.path.exists(record_path):  # another process may have built it meanwhile
                for stale in os.listdir(base):  # left by a worker killed mid-build
                    if stale.startswith(f".build-{key}-"):
                        shutil.rmtree(os.path.join(base, stale), ignore_errors=True)
                try:
                    envbuild.build(spec, key, base, on_line)
                finally:
                    _enforce_cap(base, keep=key, free=free)
    with open(record_path) as f:
        record = json.load(f)
    env = Env(key, path, os.path.join(path, "bin", "python"), record)
    with _ready_lock:
        _ready[key] = env
    _touch(path)
    return env


def _touch(path: str | None) -> None:
    """Mark an env used now (the ``last used`` of ``%remote envs`` and of the size cap)."""
    if path:
        marker = os.path.join(path, ".last-used")
        try:
            if time.time() - os.stat(marker).st_mtime < 30:
                return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            with open(marker, "w") as f:
                f.write(str(time.time()))


# -- worker side: files --------------------------------------------------------------------
def workdir(spec: dict[str, Any]) -> str | None:
    """The folder holding the spec's shipped files on this host (unpacked once)."""
    files = spec.get("files")
    if not files:
        return None
    base = os.path.join(root(), ".files")
    path = os.path.join(base, files["sha"][:16])
    if os.path.isdir(path):
        return path
    os.makedirs(base, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tarfile.open(fileobj=io.BytesIO(files["data"]), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    try:
        os.rename(tmp, path)
    except OSError:  # another worker won the race: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return path


# -- worker side: listing and pruning ------------------------------------------------------
def _size(path: str) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _last_used(path: str) -> float:
    try:
        return os.stat(os.path.join(path, ".last-used")).st_mtime
    except OSError:
        return os.stat(path).st_mtime


def in_use(path: str) -> bool:
    """Whether a live env process on this host holds ``path`` (a shared lock on it)."""
    return is_locked(os.path.join(path, ".in-use"))


def list_envs() -> list[dict[str, Any]]:
    """The environments on this host, with size, last use and whether one is in use."""
    base = root()
    out: list[dict[str, Any]] = []
    if not os.path.isdir(base):
        return out
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        record_path = os.path.join(path, RECORD)
        if name.startswith(".") or not os.path.isfile(record_path):
            continue
        try:
            with open(record_path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        record.update(path=path, size=_size(path), last_used=_last_used(path), in_use=in_use(path),
                      host=socket.gethostname())
        out.append(record)
    return out


def remove(path: str) -> bool:
    """Delete one environment unless an env process uses it; True if it is gone."""
    if in_use(path):
        return False
    key = os.path.basename(path)
    trash = os.path.join(os.path.dirname(path), f".trash-{key}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)  # gone for new calls at once; deleted at leisure
    except OSError:
        return False
    with _ready_lock:
        _ready.pop(key, None)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune(keys: list[str] | None = None) -> list[str]:
    """Remove this host's environments that no env process uses (only ``keys``, if given)."""
    removed = []
    for record in list_envs():
        if keys is not None and record["hash"] not in keys:
            continue
        if not record["in_use"] and remove(record["path"]):
            removed.append(record["hash"])
    return removed


def _enforce_cap(base: str, keep: str = "",
                 free: Callable[[list[str]], None] | None = None) -> None:
    """Remove the oldest-unused environments while the total is above the size cap.

    As ``--prune`` does, idle processes of the environments the cap reaches close first
    (``free``), so only what a running call (or a cell's waiting values) uses stays.
    """
    cap = config.get("environments.max-size")
    if not cap:
        return
    import dask.utils

    limit = dask.utils.parse_bytes(cap) if isinstance(cap, str) else int(cap)
    envs = sorted(list_envs(), key=lambda r: r["last_used"])
    over = sum(r["size"] for r in envs) - limit
    reached = []
    for record in envs:
        if over <= 0:
            break
        if record["hash"] != keep:
            reached.append(record)
            over -= record["size"]
    if free is not None and any(r["in_use"] for r in reached):
        free([str(r["hash"]) for r in reached if r["in_use"]])
        envs = sorted(list_envs(), key=lambda r: r["last_used"])
    total = sum(r["size"] for r in envs)
    for record in envs:
        if total <= limit:
            break
        if record["hash"] != keep and not record["in_use"] and remove(record["path"]):
            total -= record["size"]
