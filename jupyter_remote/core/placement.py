"""Where a call may run: ``workers=[...]`` (addresses, host names or worker names, as Dask's
``workers=``) and ``gpu="require"|"prefer"``.

Both become Dask annotations around the submission (``workers`` with
``allow_other_workers=False``, or the ``GPU`` resource), so every form of call (a cell, a
call, a map's batches, a split's pieces) is placed the same way. A name that matches no
worker, or ``gpu="require"`` on a cluster without GPU workers, fails at once, listing the
workers, instead of waiting forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import dask

from jupyter_remote.exceptions import ResourceError

GPU_POLICIES = (None, "require", "prefer")


def check(workers: Sequence[str] | str | None, gpu: str | None) -> list[str] | None:
    """The arguments, checked for their form (not against a cluster yet)."""
    if gpu not in GPU_POLICIES:
        raise ValueError(f"gpu must be 'require' or 'prefer' (or None), got {gpu!r}")
    if workers is None:
        return None
    names = [workers] if isinstance(workers, str) else list(workers)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"workers= takes worker addresses or host names, got {workers!r}")
    return names


def _matching(name: str, workers: dict[str, Any]) -> list[str]:
    found = []
    for address, info in workers.items():
        host = urlparse(address).hostname or ""
        if name in (address, host, str(info.get("name", "")), str(info.get("host", ""))):
            found.append(address)
    return found


@contextlib.contextmanager
def placed(cluster: Any, workers: Sequence[str] | None, gpu: str | None, label: str,
           resources: dict[str, float] | None = None) -> Iterator[dict[str, float] | None]:
    """While inside, submissions run only where ``workers``/``gpu`` allow; yields the
    resources to ask for (``gpu="require"`` adds ``GPU: 1``)."""
    if not workers and not gpu:
        yield resources
        return
    info = cluster.client.scheduler_info(n_workers=-1).get("workers", {})
    annotations: dict[str, Any] = {}
    if workers:
        chosen: list[str] = []
        for name in workers:
            found = _matching(name, info)
            if not found:
                raise ResourceError(
                    f"{label} asks for worker {name!r}, which matches no worker of cluster "
                    f"{cluster.name!r}; its workers: {', '.join(sorted(info)) or 'none yet'}. "
                    "Pass an address, a host name or a worker name."
                )
            chosen += [a for a in found if a not in chosen]
        annotations.update(workers=chosen, allow_other_workers=False)
    gpus = [a for a, w in info.items() if (w.get("resources") or {}).get("GPU", 0) >= 1]
    if gpu == "require" and not gpus:
        raise ResourceError(
            f"{label} requires a GPU (gpu='require'), but no worker of cluster {cluster.name!r} "
            "offers the GPU resource. Start workers with `--resources GPU=1`, or use "
            "gpu='prefer' to run on the other workers when there is none."
        )
    if gpu == "require" or (gpu == "prefer" and gpus):
        resources = {**(resources or {}), "GPU": max(1.0, (resources or {}).get("GPU", 1.0))}
    with dask.annotate(**annotations) if annotations else contextlib.nullcontext():
        yield resources
