"""``%remote get NAME --head N | --sample N``: a few rows of refs, cut where they live.

As sparkmagic's ``-n`` and ``-m sample``: the first or N random rows of a big DataFrame, array
or list, cut on a worker that holds it (:meth:`jupyter_remote.core.refs.RemoteRef.head`,
:mod:`jupyter_remote.worker.preview`). The names keep their refs: a preview must not replace
the handle on the whole value, so nothing is bound. One ref gives its rows back (the cell
shows them, and ``x = %remote get df --head 5`` keeps them); several give a dict by name.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError


def cut(refs: dict[str, Any], head: int | None, sample: int | None) -> Any:
    """The rows of each ref in ``refs`` (by name): ``head`` first rows, or ``sample`` random."""
    n = head if head is not None else sample
    if n is None or n < 0:
        raise UsageError(f"--head/--sample take a number of rows >= 0, got {n}")
    out = {}
    for name, ref in refs.items():
        try:
            out[name] = ref.head(n) if head is not None else ref.sample(n)
        except TypeError as exc:  # a value without rows: the worker's message says why
            raise UsageError(f"{name}: {exc}") from None
    return next(iter(out.values())) if len(out) == 1 else out
