"""The cluster registry: one JSON file that kernels and the Jupyter server both read and write.

A kernel announces the clusters it starts or connects to (its embedded cluster under the key
``local-<pid>``, unique across kernels, with the title ``local`` its cells use: people see
the title and the owning kernel, never the key); the server records the clusters started from the sidebar. Each side finds
the other's clusters here, by name.

The file is private to the user (mode 0600), replaced atomically, and changed only under an
exclusive lock on a sidecar ``.lock`` file, so concurrent writers never lose an update.
Its location is dask config ``jupyter-remote.registry-path`` (env
``DASK_JUPYTER_REMOTE__REGISTRY_PATH``); by default ``jupyter_remote/clusters.json`` in the
user's data directory. Nothing is written until something is registered.

An entry (see :class:`Entry`) whose owner process is gone is stale: readers skip it, writers
drop it, except an entry in state ``error``, kept so the sidebar can show what went wrong until
the user dismisses it.

A kernel that connects to a cluster someone else registered (a sidebar cluster it reaches by
name or address, another kernel's) adds itself to that entry's ``users`` (pid and notebook), and
takes itself off when it disconnects or ends, so the sidebar can mark every cluster the active
notebook uses. A user whose process is gone (a kernel killed without a goodbye) is stale in
the same way as an owner: readers skip it, writers drop it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

from jupyter_remote import config
from jupyter_remote.exceptions import ClusterConnectError, JupyterRemoteError
from jupyter_remote.wire.locks import file_lock

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SOURCES = ("server", "kernel", "config")


class InvalidNameError(JupyterRemoteError, ValueError):
    """A cluster name that could be mistaken for a path, an option or an address."""


class User(TypedDict):
    """A kernel that uses a cluster it does not own (an entry's ``users``)."""

    pid: int
    notebook: str | None  # the notebook of the kernel, when known
    since: float  # time.time() of its connect


class Entry(TypedDict, total=False):
    """One cluster in the registry (the file holds ``{"clusters": {name: Entry}}``)."""

    name: str
    address: str | None
    dashboard: str | None
    source: str  # "server" | "kernel"
    pid: int  # the process that owns the cluster (launcher or kernel)
    created: float  # time.time()
    status: str  # "starting" | "running" | "stopping" | "error"
    error: str | None
    template: str | None
    options: dict[str, Any]
    adaptive: dict[str, int] | None  # {"minimum": m, "maximum": n} when adaptive
    workers: int | None  # the requested fixed size, when not adaptive
    shutdown: bool  # set by the server; the launcher stops the cluster
    notebook: str | None  # for kernel clusters: the notebook of the kernel, when known
    title: str  # for kernel clusters: the name its cells use ("local"); the key stays unique
    users: list[User]  # other kernels connected to it now (live ones only, as read)


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid cluster name, else raise :class:`InvalidNameError`."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidNameError(
            f"cluster name {name!r} is not valid: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (for example 'lab-1')"
        )
    return name


def path() -> str:
    """Where the registry file lives (not created by this call)."""
    configured = config.get("registry-path")
    if configured:
        return os.path.abspath(os.path.expanduser(str(configured)))
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "jupyter_remote", "clusters.json")


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    import psutil

    try:  # a zombie (exited, not reaped by its parent) is not alive
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def _live(entry: Mapping[str, Any]) -> bool:
    return entry.get("status") == "error" or pid_alive(entry.get("pid"))


def _current(clusters: Mapping[str, Entry]) -> dict[str, Entry]:
    """The live entries, each with only its live users (what readers see, writers keep)."""
    out: dict[str, Entry] = {}
    for name, entry in clusters.items():
        if not _live(entry):
            continue
        users = entry.get("users")
        if users:
            entry = {**entry, "users": [u for u in users if pid_alive(u.get("pid"))]}
        out[name] = entry
    return out


def _load(fn: str) -> dict[str, Entry]:
    try:
        with open(fn) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable cluster registry %s: %s", fn, exc)
        return {}
    clusters = data.get("clusters") if isinstance(data, dict) else None
    if not isinstance(clusters, dict):
        return {}
    return {
        name: entry  # type: ignore[misc]  # JSON read back: checked to be an object
        for name, entry in clusters.items()
        if isinstance(entry, dict) and isinstance(name, str) and _NAME.match(name)
    }


@contextlib.contextmanager
def _locked() -> Iterator[str]:
    fn = path()
    os.makedirs(os.path.dirname(fn), mode=0o700, exist_ok=True)
    with file_lock(fn + ".lock"):
        yield fn


def _save(fn: str, clusters: dict[str, Entry]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".clusters-", suffix=".json", dir=os.path.dirname(fn))
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # mkstemp already makes it 0600; be explicit
        with os.fdopen(fd, "w") as f:
            json.dump({"version": 1, "clusters": clusters}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, fn)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def entries(include_stale: bool = False) -> dict[str, Entry]:
    """Every registered cluster whose owner is alive (or that failed), by name."""
    found = _load(path())
    if include_stale:
        return found
    return _current(found)


def get(name: str) -> Entry | None:
    entry = _load(path()).get(name)
    return _current({name: entry}).get(name) if entry is not None else None


def names() -> list[str]:
    return list(entries())


def change(name: str, fn: Callable[[Entry | None], Entry | None]) -> Entry | None:
    """Atomically replace the entry ``name`` by ``fn(current)`` (``None`` removes it).

    ``current`` is ``None`` when there is no live entry. Stale entries are dropped on the way.
    """
    validate_name(name)
    with _locked() as fn_path:
        clusters = _current(_load(fn_path))
        new = fn(clusters.get(name))
        if new is None:
            clusters.pop(name, None)
        else:
            new["name"] = name
            clusters[name] = new
        _save(fn_path, clusters)
        return new


def put(entry: Entry) -> Entry:
    """Add or replace an entry."""
    entry = dict(entry)  # type: ignore[assignment]
    entry.setdefault("created", time.time())
    result = change(entry["name"], lambda _old: entry)
    assert result is not None
    return result


def update(name: str, **fields: Any) -> Entry | None:
    """Merge ``fields`` into the live entry ``name``; ``None`` if there is none."""

    def merge(old: Entry | None) -> Entry | None:
        if old is None:
            return None
        return {**old, **fields}  # type: ignore[typeddict-item,return-value]

    return change(name, merge)


def remove(name: str, *, pid: int | None = None) -> bool:
    """Remove ``name`` (only if owned by ``pid``, when given); True if it was there."""
    removed = []

    def drop(old: Entry | None) -> Entry | None:
        if old is None:
            return None
        if pid is not None and old.get("pid") != pid:
            return old
        removed.append(old)
        return None

    if get(name) is None:  # don't create the file just to remove nothing
        return False
    change(name, drop)
    return bool(removed)


# -- what kernels use (called from core.clusters) ------------------------------------------
def lookup(name: str) -> dict | None:
    """The registry entry that makes ``name`` usable from a kernel, or ``None``.

    Raises :class:`ClusterConnectError` for a cluster that is still starting or that failed.
    """
    if not _NAME.match(name):
        return None
    entry = get(name)
    if entry is None:
        return None
    if entry.get("status") == "error":
        raise ClusterConnectError(
            f"cluster {name!r} failed to start: {entry.get('error')}. Shut it down in the "
            "Remote clusters sidebar and start it again."
        )
    if not entry.get("address"):
        raise ClusterConnectError(
            f"cluster {name!r} is still {entry.get('status', 'starting')}; try again when the "
            "Remote clusters sidebar shows it running."
        )
    return dict(entry)


def superseded(cluster: Any) -> bool:
    """True if ``cluster`` was found in the registry and its entry is gone or now names another
    address (the sidebar shut it down, or started a new cluster under the same name)."""
    if getattr(cluster, "source", None) not in ("server", "kernel"):
        return False
    entry = get(cluster.name)
    return entry is None or entry.get("address") != cluster.address


def kernel_name(cluster: Any) -> str | None:
    """The name under which this process registers ``cluster``, or ``None`` if it doesn't."""
    if getattr(cluster, "embedded", False):
        return f"{cluster.name}-{os.getpid()}"
    if getattr(cluster, "source", None) == "config" and getattr(cluster, "factory", None):
        return f"{cluster.name}-{os.getpid()}"  # a config factory this kernel started
    if getattr(cluster, "source", None) == "connected" and _NAME.match(cluster.name):
        return cluster.name
    return None


def announce(cluster: Any) -> None:
    """Register a cluster this kernel started or connected to, and add this kernel to the
    users of every other entry at its address (never fails the caller)."""
    name = kernel_name(cluster)
    pid = os.getpid()
    notebook = os.environ.get("JPY_SESSION_NAME")
    entry: Entry = {
        "address": cluster.address,
        "dashboard": cluster.dashboard_link,
        "source": "kernel",
        "pid": pid,
        "created": time.time(),
        "status": "running",
        "notebook": notebook,
        "title": cluster.name,
    }

    def claim(old: Entry | None) -> Entry | None:
        if old is not None and old.get("pid") != pid:
            return old  # someone else's cluster of that name (the sidebar's): leave it
        if old is not None and old.get("address") == entry["address"] and old.get("users"):
            return {**entry, "users": old["users"]}  # a reconnect keeps who else uses it
        return entry

    try:
        if name is not None:
            change(name, claim)
        user: User = {"pid": pid, "notebook": notebook, "since": time.time()}
        _set_use(cluster.address, user)
    except OSError as exc:
        logger.debug("could not register cluster %s: %s", name or cluster.name, exc)


def withdraw(cluster: Any) -> None:
    """Remove what :func:`announce` registered (never fails the caller)."""
    name = kernel_name(cluster)
    try:
        if name is not None:
            remove(name, pid=os.getpid())
        _set_use(cluster.address, None)
    except OSError as exc:
        logger.debug("could not unregister cluster %s: %s", name or cluster.name, exc)


def _set_use(address: str | None, user: User | None) -> None:
    """Record ``user`` (this process) as a user of every entry at ``address`` that another
    process owns; with ``None``, take this process off them. Writes only if that changes
    something (a kernel that uses no registered cluster never creates the file)."""
    pid = os.getpid()

    def differs(entry: Entry) -> bool:
        listed = any(u.get("pid") == pid for u in entry.get("users") or [])
        return entry.get("pid") != pid and entry.get("address") == address and (
            listed != (user is not None))

    if not address or not any(differs(e) for e in entries().values()):
        return
    with _locked() as fn_path:
        clusters = _current(_load(fn_path))
        changed = [n for n, e in clusters.items() if differs(e)]
        for n in changed:
            others = [u for u in clusters[n].get("users") or [] if u.get("pid") != pid]
            clusters[n] = {**clusters[n], "users": others + ([user] if user else [])}
        if changed:
            _save(fn_path, clusters)


def call_annotation(call: Any) -> dict[str, Any]:
    """What a call's tasks carry to the scheduler (a task annotation), so the sidebar can list
    running calls with their notebook and cancel them."""
    return {
        "call": call.id,
        "label": call.label,
        "kind": call.kind,
        "notebook": os.environ.get("JPY_SESSION_NAME"),
        "pid": os.getpid(),
    }
