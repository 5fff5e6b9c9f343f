"""A few rows of a big value, cut where the value lives.

``RemoteRef.head(n)`` / ``.sample(n)`` and ``%remote get NAME --head N`` (as sparkmagic's
``-n`` and ``-m sample``) must not download a 10 GB frame to show five rows: the notebook
sends a small task pinned to a worker that holds the value (as ``RemoteRef.describe`` does),
and only the cut comes back. The ref's card shows :func:`preview`, a short text of the head,
made the same way.

What can be cut, by duck typing so that no library is imported here: anything with
``head(n)``/``sample(n)`` methods (pandas and polars frames and series), anything with a
``shape`` that slices (numpy, cupy, xarray-like arrays: rows along the first axis), and
sequences (list, tuple, range, str, bytes); a dict gives its first or random items. Anything
else is refused with a message that says what can be cut.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from jupyter_remote.wire import payload

HOW = ("head", "sample")
PREVIEW_ROWS = 5
PREVIEW_CHARS = 1200


def cut(value: Any, n: int, how: str = "head", seed: int | None = None) -> tuple[Any, int | None]:
    """The first (``head``) or ``n`` random (``sample``, in their original order) rows or
    items of ``value``, and how many it has in all (``None`` if unknown)."""
    if how not in HOW:
        raise ValueError(f"expected how to be one of {', '.join(HOW)}, got {how!r}")
    if n < 0:
        raise ValueError(f"expected a number of rows >= 0, got {n}")
    value = payload.unwrap(value)
    total = _length(value)
    if callable(getattr(value, how, None)) and not isinstance(value, (Sequence, dict)):
        if how == "sample" and total is not None:
            n = min(n, total)  # pandas refuses a sample larger than the frame
        kwargs = {"random_state": seed} if how == "sample" and seed is not None else {}
        try:
            return getattr(value, how)(n, **kwargs), total
        except TypeError:  # a sample() without random_state (polars says `seed`)
            return getattr(value, how)(n), total
    if total is None:
        raise TypeError(
            f"cannot take rows of a {type(value).__module__}.{type(value).__qualname__}: "
            "expected a DataFrame/Series (head/sample methods), an array with a shape, a "
            "sequence or a dict. Download it with .get(), or cut it in a %%remote cell."
        )
    rows = _rows(total, n, how, seed)
    if isinstance(value, dict):
        items = list(value.items())
        return dict(items[i] for i in rows), total
    if hasattr(value, "shape") and not isinstance(value, (str, bytes)):
        if how == "head":
            return value[:n], total
        return value[rows], total  # fancy indexing: numpy and friends
    if isinstance(value, (str, bytes, range)) and how == "head":
        return value[:n], total
    picked = [value[i] for i in rows]
    if isinstance(value, (str, bytes)):
        return type(value)().join(picked), total
    return (tuple(picked) if isinstance(value, tuple) else picked), total


def _length(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        return shape[0]
    try:
        return len(value)
    except TypeError:
        return None


def _rows(total: int, n: int, how: str, seed: int | None) -> list[int]:
    if how == "head":
        return list(range(min(n, total)))
    return sorted(random.Random(seed).sample(range(total), min(n, total)))


def preview(value: Any, n: int = PREVIEW_ROWS) -> str | None:
    """A short text of the first rows of ``value`` for its card, or ``None`` when it has no
    rows (a scalar, a model, a string) or its repr fails."""
    if isinstance(value, (str, bytes)):
        return None  # its card's size says enough; five characters say nothing
    try:
        head, total = cut(value, n)
        text = repr(head)
    except Exception:
        return None
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + "…"
    if total is not None and total > n:
        text += f"\n(first {n} of {total:,})"
    return text
