"""The subcommands of the ``%remote`` line magic. Each parses, calls core, prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from jupyter_remote.exceptions import JupyterRemoteError
from jupyter_remote.ipython import jobs, stored, tables
from jupyter_remote.ipython.arguments import on_cluster, parse_words, parser


def _refs_in(ns: dict) -> dict[str, Any]:
    from jupyter_remote.core.functions import RemoteFunction
    from jupyter_remote.core.refs import RemoteRef

    out = {}
    for name, value in ns.items():
        if name.startswith("_"):
            continue
        if isinstance(value, RemoteRef):
            out[name] = value
        elif isinstance(value, RemoteFunction) and isinstance(value.fn, RemoteRef):
            out[name] = value.fn
    return out


def _ref(ns: dict, name: str):
    refs = _refs_in(ns)
    if name not in refs:
        known = ", ".join(refs) or "none"
        raise UsageError(f"{name!r} is not a remote ref in this notebook; remote refs: {known}")
    return refs[name]


# -- clusters ------------------------------------------------------------------------------
def clusters_cmd(shell, words: list[str]) -> None:
    parse_words(parser("clusters", "list clusters"), words)
    from dask.utils import format_bytes

    from jupyter_remote.core import clusters

    default = clusters.default_name()
    rows = []
    for c in clusters.all_clusters():
        info = c.info()
        title, owner = _title_and_owner(c)
        rows.append([
            ("* " if c.name == default else "  ") + title,
            owner,
            info.get("address") or (c.factory or ("started on first use" if c.embedded else "")),
            info["status"],
            str(info.get("workers", "-")),
            str(info.get("threads", "-")),
            format_bytes(info["memory"]) if info.get("memory") else "-",
            info.get("dashboard") or "-",
        ])
    from jupyter_remote.ipython import tables

    tables.show(rows, ["  name", "owner", "address", "status", "workers", "threads", "memory",
                       "dashboard"], "* default cluster; `%remote use NAME` changes it")


def _title_and_owner(c) -> tuple[str, str]:
    """How a cluster is listed: the name its owner's cells use, and who owns it. Another
    kernel's embedded cluster is also ``local`` to that kernel; its unique registry key
    (``local-<pid>``) is what this notebook types to use it, so the owner column says so."""
    if c.source != "kernel":
        owner = {"server": "the sidebar", "config": "dask config"}.get(c.source, "this kernel")
        return c.name, owner
    from jupyter_remote.core import registry

    entry = registry.get(c.name) or {}
    title = entry.get("title") or c.name
    notebook = entry.get("notebook")
    owner = f"kernel {entry.get('pid', '?')}" + (f" ({notebook.rsplit('/', 1)[-1]})" if notebook else "")
    return title, owner + (f", use as {c.name}" if title != c.name else "")


def use_cmd(shell, words: list[str]) -> None:
    p = parser("use", "set the default cluster of this notebook")
    p.add_argument("name")
    args = parse_words(p, words)
    from jupyter_remote.core import clusters

    try:
        found = clusters.use(args.name)
    except JupyterRemoteError as exc:
        raise UsageError(str(exc)) from None
    print(f"%%remote now runs on {found.name!r} by default")


def connect_cmd(shell, words: list[str]) -> None:
    p = parser("connect", "connect to a running Dask scheduler")
    p.add_argument("address")
    p.add_argument("--name")
    args = parse_words(p, words)
    from jupyter_remote.core import clusters

    try:
        found = clusters.connect(args.address, args.name)
    except JupyterRemoteError as exc:
        raise UsageError(str(exc)) from None
    info = found.info()
    print(
        f"connected {found.name!r} at {found.address}: {info.get('workers', 0)} workers, "
        f"{info.get('threads', 0)} threads. Use it with `%%remote {found.name}`."
    )


# -- refs ----------------------------------------------------------------------------------
def refs_cmd(shell, words: list[str]) -> None:
    parse_words(parser("refs", "list remote refs"), words)
    from dask.utils import format_bytes

    refs = _refs_in(shell.user_ns)
    if not refs:
        print("no remote refs in this notebook")
        return
    rows = []
    for name, ref in refs.items():
        info = ref.info
        shape = "×".join(str(n) for n in info["shape"]) if "shape" in info else ""
        rows.append([
            name,
            str(info.get("type", "?")),
            shape + (f" {info['dtype']}" if "dtype" in info else ""),
            format_bytes(info["nbytes"]) if "nbytes" in info else "?",
            ref.worker or "-",
            ref.status,
            ref.cluster.name if ref.cluster is not None else "?",
        ])
    from jupyter_remote.ipython import tables

    tables.show(rows, ["name", "type", "shape/dtype", "size", "worker", "status", "cluster"])


def get_cmd(shell, words: list[str]) -> Any:
    p = parser("get", "download refs into local variables of the same names")
    p.add_argument("names", nargs="+")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--head", type=int, metavar="N",
                     help="show only the first N rows/items, cut on the worker (binds nothing)")
    cut.add_argument("--sample", type=int, metavar="N",
                     help="show N random rows/items, picked on the worker (binds nothing)")
    args = parse_words(p, words)
    if args.head is not None or args.sample is not None:
        from jupyter_remote.ipython import rows

        return rows.cut({name: _ref(shell.user_ns, name) for name in args.names},
                        args.head, args.sample)
    from jupyter_remote.core.refs import get

    refs = {name: _ref(shell.user_ns, name) for name in args.names}
    values = get(refs)  # one round trip; nothing is bound unless all arrive
    shell.user_ns.update(values)
    print(f"downloaded {', '.join(values)}")


def cancel_cmd(shell, words: list[str]) -> None:
    p = parser("cancel", "cancel remote work")
    p.add_argument("names", nargs="+", help="ref names, or `all`")
    args = parse_words(p, words)
    stopped = 0
    if args.names == ["all"]:
        from jupyter_remote.core import clusters

        for c in clusters.all_clusters():
            if c.connected:
                for log in c.router.calls():
                    if log.state in ("queued", "running") and log.cancel is not None:
                        log.cancel()
                        stopped += 1
        targets = [r for r in _refs_in(shell.user_ns).values() if not r.done()]
    else:
        named = {n: _ref(shell.user_ns, n) for n in args.names}
        # A finished ref has nothing to stop; cancelling it would throw its value away.
        finished = [n for n, r in named.items() if r.done()]
        targets = [r for r in named.values() if not r.done()]
        if finished:
            print(f"nothing to stop for {', '.join(finished)}: already finished (the values "
                  "are kept; `del NAME` releases one)")
    for ref in targets:
        ref.cancel()
    if targets or stopped:
        print(f"cancelled {len(targets)} ref(s)" + (f" and {stopped} running call(s)" if stopped else ""))
    elif args.names == ["all"]:
        print("nothing to cancel: no remote work is queued or running")


def publish_cmd(shell, words: list[str]) -> None:
    p = parser("publish", "share a ref with other notebooks (and across kernel restarts)")
    p.add_argument("name")
    p.add_argument("--as", dest="shared", help="shared name (default: NAME)")
    args = parse_words(p, words)
    ref = _ref(shell.user_ns, args.name)
    shared = args.shared or args.name
    ref._future.client.publish_dataset(ref._future, name=shared, override=True)
    note = ""
    if ref.cluster is not None and ref.cluster.embedded:
        note = " (the embedded cluster closes with this kernel: use a shared cluster to keep it across restarts)"
    print(f"published {args.name!r} as {shared!r}; `%remote fetch {shared}` binds it in another notebook{note}")


def fetch_cmd(shell, words: list[str]) -> None:
    p = parser("fetch", "bind a ref shared with %remote publish")
    p.add_argument("shared")
    p.add_argument("--as", dest="name", help="local name (default: SHARED)")
    p.add_argument("--cluster", help="cluster to look on (default: the default cluster)")
    args = parse_words(p, words)
    from jupyter_remote.core import clusters
    from jupyter_remote.core.refs import RemoteRef

    c = clusters.cluster(args.cluster)
    client = c.client
    if args.shared not in client.list_datasets():
        known = ", ".join(map(str, client.list_datasets())) or "none"
        raise UsageError(f"nothing is published as {args.shared!r} on {c.name!r}; published: {known}")
    future = client.get_dataset(args.shared)
    name = args.name or args.shared
    if not name.isidentifier():
        raise UsageError(f"{name!r} is not a valid Python name; pass --as NAME")
    ref = RemoteRef(future, c, name=name)
    ref.describe()
    shell.user_ns[name] = ref
    print(f"bound {name!r}: {ref!r}")


# -- calls ---------------------------------------------------------------------------------
def logs_cmd(shell, words: list[str]) -> None:
    p = parser("logs", "list recent remote calls, or replay the whole log of one")
    p.add_argument("call", nargs="?", help="call id (or a unique prefix), or `last`")
    args = parse_words(p, words)
    from jupyter_remote.core import clusters
    from jupyter_remote.core.views import print_lines

    logs = sorted(
        (log for c in clusters.all_clusters() if c.connected for log in c.router.calls()),
        key=lambda log: log.started,
    )
    if not args.call:
        if not logs:
            print("no remote calls yet")
            return
        rows = [[log.call, log.label, log.state, f"{log.elapsed:.1f}s", str(len(log.lines))] for log in logs]
        tables.show(rows, ["call", "what", "state", "elapsed", "lines"])
        return
    if args.call == "last":
        matches = logs[-1:]
    else:
        matches = [log for log in logs if log.call.startswith(args.call)]
    if len(matches) != 1:
        known = ", ".join(log.call for log in logs[-10:]) or "none"
        raise UsageError(
            f"{'no' if not matches else 'more than one'} call matches {args.call!r}; recent calls: {known}"
        )
    print_lines(matches[0].lines)


def envs_cmd(shell, words: list[str]) -> None:
    prune, found = on_cluster("envs", "list the requirement environments built on a cluster's hosts",
                               "prune", "remove the environments no running call uses", words)
    import time

    from dask.utils import format_bytes

    from jupyter_remote.core import environments

    if prune:
        removed = environments.prune_cluster(found)
        print(f"removed {len(removed)} environment(s)" + (f": {', '.join(removed)}" if removed else ""))
    rows = environments.cluster_envs(found)
    if not rows:
        print(f"no requirement environments on {found.name!r} (cells with --reqs build them)")
        return
    from jupyter_remote.ipython import tables

    now = time.time()
    tables.show(
        [[r["hash"], " ".join(r["requirements"]), ", ".join(r["hosts"]), format_bytes(r["size"]),
          _ago(now - r["last_used"]) + (" (in use)" if r["in_use"] else "")] for r in rows],
        ["hash", "requirements", "hosts", "size", "last used"],
    )


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


COMMANDS: dict[str, Callable[[Any, list[str]], Any]] = {
    "clusters": clusters_cmd,
    "use": use_cmd,
    "connect": connect_cmd,
    "refs": refs_cmd,
    "get": get_cmd,
    "cancel": cancel_cmd,
    "publish": publish_cmd,
    "fetch": fetch_cmd,
    "logs": logs_cmd,
    "envs": envs_cmd,
    "cache": stored.cache_cmd,
    "functions": stored.functions_cmd,
    "free": stored.free_cmd,
    "shutdown": stored.shutdown_cmd,
    "jobs": jobs.jobs_cmd,
    "submit": jobs.submit_cmd,
}
