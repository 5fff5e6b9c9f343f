"""The REST wire format, written once (mirrored in ``labextension/src/models.ts``)."""

from __future__ import annotations

from typing import Any, TypedDict


class AdaptiveModel(TypedDict):
    minimum: int
    maximum: int


class CallModel(TypedDict):
    """A remote call that is queued or running on a cluster."""

    call: str  # the call id; DELETE .../calls/{call} cancels it
    label: str
    kind: str  # "cell" | "call" | "map"
    notebook: str | None  # the notebook of the kernel that made the call, when known
    pid: int | None  # that kernel's process
    state: str  # "queued" | "running"
    tasks: int  # tasks of the call not finished yet
    worker: str | None  # where it runs


class EnvironmentModel(TypedDict):
    """A requirement environment built on the cluster's hosts (one row per hash)."""

    hash: str
    requirements: list[str]
    hosts: list[str]
    size: int  # bytes, on the largest host
    last_used: float  # epoch seconds, latest over hosts
    in_use: bool  # a call runs in it now, on some host
    built_here: bool  # built for a call on this cluster (its build record names the scheduler)


class UserModel(TypedDict):
    """A kernel that uses a cluster it does not own (it connected by name or address)."""

    pid: int
    notebook: str | None  # the kernel's notebook, when known


class ClusterModel(TypedDict):
    name: str
    address: str | None
    source: str  # "server" | "kernel" | "config"
    status: str  # "starting" | "running" | "stopping" | "error" | "unreachable" | "not started"
    error: str | None
    manageable: bool  # can be scaled and shut down from the sidebar
    dashboard: str | None  # the dashboard through the Jupyter server's proxy (path), if any
    dashboard_direct: str | None  # the dashboard's own address
    workers: int | None
    threads: int | None
    memory: int | None  # bytes, summed over workers
    requested_workers: int | None
    adaptive: AdaptiveModel | None
    template: str | None
    options: dict[str, Any]
    created: float | None
    pid: int | None
    notebook: str | None
    label: str  # the name people see: a kernel's cluster shows as its cells call it ("local")
    users: list[UserModel]  # other kernels connected to it now (the owner is pid/notebook)


class ClusterDetailModel(ClusterModel):
    calls: list[CallModel]
    environments: list[EnvironmentModel]


class TemplateOptionModel(TypedDict):
    name: str
    title: str  # the form's label ("Threads per worker"); the keyword name when not configured
    type: str  # "int" | "float" | "str" | "bool"
    default: Any
    description: str
    minimum: float | None


class TemplateModel(TypedDict):
    name: str
    title: str
    description: str
    factory: str
    options: list[TemplateOptionModel]


class CreateRequest(TypedDict, total=False):
    name: str
    template: str
    options: dict[str, Any]


class ScaleRequest(TypedDict, total=False):
    workers: int
    adaptive: AdaptiveModel


class MessageModel(TypedDict):
    message: str
