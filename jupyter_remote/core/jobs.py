"""Runnables: ``jupyter_remote.submit(obj)`` steps ``obj.run()`` on the cluster while it
returns True, and ``submit("experiment.yaml")`` builds the object there from a file.

A job is one call (kind ``job``): live logs, the status view, Cancel (between steps or
inside one), and its ``RemoteRef``, whose value is the object after its last step. The jobs
this kernel submitted are listed by :func:`jobs` (``%remote jobs``); the sidebar's running
calls show them as any call.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from jupyter_remote.core import calls, environments, views
from jupyter_remote.core.clusters import Cluster
from jupyter_remote.core.clusters import cluster as resolve_cluster
from jupyter_remote.core.refs import RemoteRef


@dataclass
class Job:
    """A runnable submitted from this kernel."""

    call: calls.Call
    ref: RemoteRef
    label: str
    started: float = field(default_factory=time.time)

    @property
    def state(self) -> str:
        return str(self.call.log.state)

    @property
    def steps(self) -> int:
        return int(self.call.log.done)

    @property
    def elapsed(self) -> float:
        return float(self.call.log.elapsed)


_jobs: list[Job] = []
_lock = threading.Lock()


def jobs() -> list[Job]:
    """The runnables submitted from this kernel, oldest first (the last 200)."""
    with _lock:
        return list(_jobs)


def submit(obj: Any, cluster: str | Cluster | None = None, reqs: list[str] | str | None = None,
           resources: dict[str, float] | None = None) -> RemoteRef:
    """Run a runnable on the cluster: ``obj.run()`` again while it returns True.

    ``obj`` is an object with a ``run()`` method, or the path of an experiment file (YAML:
    a first document mapping module names to extensions, a second one the object as
    ``!module.Class`` with its keyword arguments). Returns a ``RemoteRef`` at once; its
    value is the object after its last step.
    """
    found = cluster if isinstance(cluster, Cluster) else resolve_cluster(cluster)
    if isinstance(obj, (str, os.PathLike)):
        label, spec, env = _experiment(os.fspath(obj), reqs)
    else:
        if not callable(getattr(obj, "run", None)):
            raise TypeError(f"submit() takes an object with a run() method, or the path of an "
                            f"experiment file; got {type(obj).__qualname__}")
        label = f"{type(obj).__qualname__}.run()"
        spec = {"kind": "job", "obj": obj}
        env = environments.resolve(reqs) if reqs else None
    call = calls.Call(found, label, "job")
    future = call.submit(spec, names={"the runnable": obj}, resources=resources, env=env)
    views.function_view().start(call)  # a widget keeps itself up to date; text: %remote logs
    call.finish_when_done()
    ref = RemoteRef(future, found, name=label, call=call)
    with _lock:
        _jobs.append(Job(call, ref, label))
        del _jobs[:-200]
    return ref


def _experiment(path: str, reqs: list[str] | str | None) -> tuple[str, dict[str, Any], Any]:
    """The label, payload spec and env spec of an experiment file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise FileNotFoundError(f"experiment file {path!r} cannot be read ({exc.strerror})") from None
    base = os.path.dirname(os.path.abspath(path))
    extensions = _extensions(text, path)
    requirements = [*_as_list(reqs), *extensions.values()]
    env = environments.resolve(requirements, base=base) if requirements else None
    name = os.path.basename(path)
    return name, {"kind": "job", "text": text, "filename": name}, env


def _extensions(text: str, path: str) -> dict[str, str]:
    """The first document: module name -> extension (a project folder, git URL or pip
    requirement), checked here so a bad one fails before anything is sent."""
    try:
        first = next(yaml.compose_all(text), None)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if first is None or (isinstance(first, yaml.ScalarNode) and not first.value):
        return {}
    if not isinstance(first, yaml.MappingNode):
        raise ValueError(f"{path} line {first.start_mark.line + 1}: the first document maps "
                         "module names to extensions (a project folder, a git URL or a pip "
                         "requirement)")
    out: dict[str, str] = {}
    for key, value in first.value:
        if not isinstance(value, yaml.ScalarNode) or not value.value:
            raise ValueError(f"{path} line {key.start_mark.line + 1}: extension of module "
                             f"{key.value!r} must be a project folder, git URL or requirement")
        out[str(key.value)] = str(value.value)
    return out


def _as_list(reqs: list[str] | str | None) -> list[str]:
    if not reqs:
        return []
    return [reqs] if isinstance(reqs, str) else list(reqs)
