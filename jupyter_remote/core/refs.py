"""``RemoteRef``: a value that stays on the cluster, over a ``distributed.Future``.

Passing a ref to remote work (a ``%%remote`` cell, a ``RemoteFunction``) makes it a task
dependency, so its data moves worker to worker and never through the notebook. ``.get()``
downloads it explicitly.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterable
from typing import Any

from dask.utils import format_bytes

from jupyter_remote._compat import when_done
from jupyter_remote.exceptions import ClusterConnectError, RemoteCancelledError, WorkerLostError
from jupyter_remote.wire import payload
from jupyter_remote.wire.failures import unpack_exception

PREVIEW_TIMEOUT = 5.0  # seconds a card waits for its preview before showing without one


class RemoteRef:
    """A reference to a value held on a Dask cluster.

    Parameters
    ----------
    future
        The ``distributed.Future`` of the value.
    cluster
        The :class:`~jupyter_remote.core.clusters.Cluster` it lives on.
    name
        The name it is bound to in the notebook, if any (used in messages).
    info
        What is known of the value: ``type``, ``shape``, ``dtype``, ``nbytes``, ``worker``.
    """

    def __init__(
        self,
        future,
        cluster=None,
        *,
        name: str | None = None,
        info: dict | None = None,
        call=None,
    ):
        self._future = future
        self.cluster = cluster
        self.name = name
        self.info: dict[str, Any] = dict(info or {})
        self._call = call  # the call that computes it: cancelling stops that call

    def __jupyter_remote_future__(self):
        return self._future

    # -- state -------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """The Dask key of the value."""
        return str(self._future.key)

    @property
    def status(self) -> str:
        """``pending``, ``finished``, ``error``, ``cancelled`` or ``lost``."""
        return self._future.status

    def done(self) -> bool:
        return self._future.done()

    @property
    def worker(self) -> str | None:
        """Address of a worker holding the value (asks the scheduler if not known)."""
        if not self.info.get("worker") and self.status == "finished":
            try:
                holders = self._future.client.who_has([self._future]).get(self._future.key)
                if holders:
                    self.info["worker"] = holders[0]
            except Exception:
                pass
        return self.info.get("worker")

    @property
    def label(self) -> str:
        return f"remote value {self.name!r}" if self.name else f"remote value {self.key}"

    def describe(self) -> dict[str, Any]:
        """Ask the worker holding the value for its type, shape, dtype and size.

        Waits for the value if it is still being computed; runs next to the data (pinned to a
        worker that holds it), so nothing moves.
        """
        from jupyter_remote.worker import runner

        found = self._next_to_data(runner.describe)
        if found is not None:
            info, holder = found
            self.info.update(info, worker=holder)
        return self.info

    def head(self, n: int = 5) -> Any:
        """Download only the first ``n`` rows (a DataFrame or array) or items (a list, a
        dict) of the value, cut on a worker that holds it: the rest never moves."""
        return self._cut(n, "head", None)

    def sample(self, n: int = 5, seed: int | None = None) -> Any:
        """Download ``n`` random rows or items of the value (in their original order), picked
        on a worker that holds it; ``seed`` makes the pick repeatable."""
        return self._cut(n, "sample", seed)

    def preview(self) -> str | None:
        """A short text of the value's first rows for its card (made on the worker, kept in
        ``info``), or ``None`` for a value without rows or not computed yet."""
        if "preview" not in self.info and self.status == "finished":
            from jupyter_remote.worker import preview

            try:
                found = self._next_to_data(preview.preview, timeout=PREVIEW_TIMEOUT)
            except Exception:  # a card without a preview is still a card
                found = None
            self.info["preview"] = found[0] if found is not None else None
        return self.info.get("preview")

    def _cut(self, n: int, how: str, seed: int | None) -> Any:
        from jupyter_remote.worker import preview

        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"expected a number of rows >= 0, got {n!r}")
        if self.status in ("error", "cancelled", "lost"):
            self.get()  # raises what happened to it (a pending value is waited for below)
        try:
            found = self._next_to_data(preview.cut, n, how, seed)
        except BaseException as exc:
            raise translate(exc, self.label)  # noqa: B904 (the remote traceback is the cause)
        if found is None:
            raise WorkerLostError(f"no worker holds {self.label} any more; run its cell again")
        value, _total = found[0]
        return _check_bound(value)

    def _next_to_data(self, fn: Any, *args: Any, timeout: float | None = None) -> Any:
        """``(fn(value, *args), holder)`` run on a worker that holds the value, so nothing
        moves but the answer; ``None`` if no worker holds it. Waits for a pending value."""
        future = self._future
        client = future.client
        if not future.done():  # a ref that is still computing has no holder yet
            done = threading.Event()
            when_done(future, lambda _f: done.set())
            done.wait()
        holders = client.who_has([future]).get(future.key) or []
        if not holders:
            return None
        answer = client.submit(
            fn, future, *args, workers=list(holders), allow_other_workers=False, pure=False,
        ).result(timeout=timeout)
        return answer, holders[0]

    # -- actions -----------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Any:
        """Download the value into the notebook (raises the remote exception if it failed)."""
        try:
            value = self._future.result(timeout=timeout)
        except BaseException as exc:
            raise translate(exc, self.label)  # noqa: B904 (the remote traceback is the cause)
        return _check_bound(value)

    result = get

    def cancel(self) -> str:
        """Cancel the work behind this ref: queued work never starts, running work is
        interrupted. Returns what happened."""
        what = "cancelled"
        if self._call is not None and not self.done():
            what = self._call.cancel()
        self._future.cancel()
        return what

    def release(self) -> None:
        self._future.release()

    # -- display -----------------------------------------------------------------------
    def _summary(self) -> list[tuple[str, str]]:
        info = self.info
        rows = [("type", str(info.get("type", "?")))]
        if "shape" in info:
            rows.append(("shape", str(tuple(info["shape"]))))
        if "dtype" in info:
            rows.append(("dtype", str(info["dtype"])))
        if "nbytes" in info:
            rows.append(("size", format_bytes(info["nbytes"])))
        rows.append(("worker", str(self.info.get("worker") or "-")))
        rows.append(("status", self.status))
        return rows

    def __repr__(self) -> str:
        name = f"{self.name} " if self.name else ""
        fields = " ".join(f"{k}={v}" for k, v in self._summary())
        return f"<RemoteRef {name}{fields} key={self.key}>"

    def _repr_html_(self) -> str:
        title = html.escape(self.name or self.key)
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        return (
            "<div class='jupyter-remote-ref' style='border:1px solid var(--jp-border-color2);"
            "border-radius:4px;"
            "padding:4px 8px;display:inline-block'>"
            f"<b>RemoteRef</b> <code>{title}</code><table>{rows}</table></div>"
        )

    def __reduce__(self):
        # Pickled outside a payload (for example inside a Dask collection), a ref is its
        # future: on a worker, Dask turns it back into a usable Future.
        return (payload.identity, (self._future,))


def _check_bound(value: Any) -> Any:
    value = payload.unwrap(value)  # a value made in a requirements environment
    if isinstance(value, payload.Unbound):
        raise NameError(
            f"{value.label} was not bound when the cell ran (a branch that did not run, "
            "or a module, which never becomes a ref)"
        )
    return value


def translate(exc: BaseException, label: str, cluster: Any = None) -> BaseException:
    """The exception a user should see for a failure of the work behind ``label``.

    A cancellation is the user's only when they cancelled: Dask also cancels every future
    of a client that lost its scheduler, and that is told as a lost cluster (``cluster``,
    when known, names it and says since when), never as "was cancelled".
    """
    from concurrent.futures import CancelledError

    from distributed.scheduler import KilledWorker

    if getattr(exc, "reason", None) == "scheduler-connection-lost":
        since = cluster.mark_unreachable() if cluster is not None else time.time()
        where = f"cluster {cluster.name!r} ({cluster.address})" if cluster is not None else "its cluster"
        return ClusterConnectError(
            f"{label} was lost: the notebook lost the connection to the scheduler of {where} "
            f"at {time.strftime('%H:%M:%S', time.localtime(since))}. The values of every "
            "earlier ref on that cluster are gone too. Check that the scheduler is running "
            "(`%remote clusters`), then run the cells that made them again."
        )

    if isinstance(exc, KilledWorker):
        return WorkerLostError(
            f"{label} was lost: the workers running it died ({exc}). If it needs more memory "
            "than a worker has, give the workers more, or split the work; then run it again."
        )
    if getattr(exc, "reason", None) == "already forgotten":  # lost, and no lineage left
        return WorkerLostError(
            f"{label} was lost: the worker holding it died, and Dask cannot compute it again "
            "(what it was made from is gone too). Run the code that made it again."
        )
    if isinstance(exc, CancelledError) or type(exc).__name__ == "FutureCancelledError":
        return RemoteCancelledError(f"{label} was cancelled; run it again to recompute it")
    return unpack_exception(exc, label)


def _futures_of(refs: Iterable) -> list:
    out = []
    for r in refs:
        future = payload.as_future(r)
        if future is None:
            raise TypeError(f"expected a RemoteRef or a dask Future, got {type(r).__name__}")
        out.append(future)
    return out


def get(ref_or_refs: Any) -> Any:
    """Download one ref, or a list/tuple/dict of refs in one round trip."""
    if isinstance(ref_or_refs, RemoteRef):
        return ref_or_refs.get()
    if isinstance(ref_or_refs, dict):
        keys = list(ref_or_refs)
        values = get([ref_or_refs[k] for k in keys])
        return dict(zip(keys, values))
    if isinstance(ref_or_refs, (list, tuple)):
        items = list(ref_or_refs)
        futures = _futures_of(items)
        if not futures:
            return type(ref_or_refs)()
        client = futures[0].client
        try:
            values = [_check_bound(v) for v in client.gather(futures)]
        except NameError:
            raise
        except BaseException as exc:
            failed = next((r for r in items if getattr(r, "status", "") == "error"), None)
            label = getattr(failed, "label", "a remote value")
            raise translate(exc, label)  # noqa: B904
        return type(ref_or_refs)(values)
    future = payload.as_future(ref_or_refs)
    if future is not None:
        return RemoteRef(future).get()
    raise TypeError(
        f"jupyter_remote.get expects a RemoteRef or a list/tuple/dict of them, "
        f"got {type(ref_or_refs).__name__}"
    )
