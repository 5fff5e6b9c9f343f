"""The process that owns a cluster started from the sidebar: ``python -m jupyter_remote.server.launcher NAME``.

It runs in a session of its own, so the cluster outlives the Jupyter server that asked for it
(a restarted server finds it again in the registry). It reads its template and options from
the registry entry, starts the cluster, writes the address back, then follows the entry: a new
``workers`` or ``adaptive`` value is applied, ``shutdown`` (or SIGTERM, or the entry's removal)
stops the cluster and removes the entry. A failure to start is written to the entry as
``status: error`` for the sidebar to show.

Only core modules are imported here: no Jupyter server, no tornado handlers.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback
from typing import Any

import dask.config

from jupyter_remote._compat import stop_adaptive
from jupyter_remote.core import registry
from jupyter_remote.core.clusters import import_factory

logger = logging.getLogger("jupyter_remote.launcher")

POLL = 0.5


def template(name: str) -> dict[str, Any]:
    from jupyter_remote.server import defaults  # noqa: F401 (template defaults into dask config)

    templates = dask.config.get("jupyter-remote.server.templates", default={}) or {}
    if name not in templates:
        raise KeyError(f"no cluster template {name!r}; known: {', '.join(templates)}")
    return templates[name]


def start(entry: registry.Entry):
    spec = template(entry.get("template") or "")
    kwargs = {**(spec.get("kwargs") or {}), **(entry.get("options") or {})}
    return import_factory(spec["factory"])(**kwargs)


def apply(cluster, entry: registry.Entry, applied: dict) -> None:
    """Make the cluster's size follow the entry's ``adaptive`` / ``workers``."""
    adaptive = entry.get("adaptive")
    workers = entry.get("workers")
    if adaptive and adaptive != applied.get("adaptive"):
        cluster.adapt(minimum=adaptive["minimum"], maximum=adaptive["maximum"])
        applied.update(adaptive=adaptive, workers=None)
        logger.info("adaptive between %s and %s workers", adaptive["minimum"], adaptive["maximum"])
    elif (
        not adaptive
        and workers is not None
        and (workers, None)
        != (
            applied.get("workers"),
            applied.get("adaptive"),
        )
    ):
        stop_adaptive(cluster)  # a fixed size replaces adaptive scaling
        cluster.scale(workers)
        applied.update(workers=workers, adaptive=None)
        logger.info("scaled to %s workers", workers)


def main(name: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    registry.validate_name(name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal is not ours

    entry = registry.get(name)
    if entry is None:
        logger.error("no registry entry for %s in %s", name, registry.path())
        return 1
    try:
        cluster = start(entry)
    except BaseException as exc:
        logger.error("cluster %s failed to start:\n%s", name, traceback.format_exc())
        registry.update(name, status="error", error=f"{type(exc).__name__}: {exc}")
        return 1
    entry = registry.update(
        name,
        status="running",
        address=cluster.scheduler_address,
        dashboard=cluster.dashboard_link,
        error=None,
    )
    logger.info("cluster %s running at %s", name, cluster.scheduler_address)
    applied: dict[str, Any] = {"workers": (entry or {}).get("options", {}).get("n_workers")}
    try:
        while entry is not None and not entry.get("shutdown") and not stop.is_set():
            try:
                apply(cluster, entry, applied)
            except Exception as exc:  # a bad size must not kill the cluster
                logger.warning("scaling %s failed: %s", name, exc)
                registry.update(name, error=f"scaling failed: {type(exc).__name__}: {exc}")
            stop.wait(POLL)
            entry = registry.get(name)
    finally:
        logger.info("shutting down cluster %s", name)
        registry.update(name, status="stopping")
        try:
            cluster.close(timeout=20)
        finally:
            registry.remove(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
