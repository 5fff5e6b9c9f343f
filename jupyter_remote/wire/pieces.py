"""Cutting a value into contiguous pieces along an axis and pasting pieces back: what
``RemoteFunction.split`` does, in the notebook (a local value) or on a worker (a ref's).

numpy arrays along any axis, pandas DataFrames (rows for axis 0, columns for axis 1) and
Series, and lists; pieces differ in length by one at most when the length does not divide
(as ``numpy.array_split``).
"""

from __future__ import annotations

from typing import Any


def cut(x: Any, axis: int, index: int, parts: int) -> Any:
    """Piece ``index`` of ``parts`` contiguous pieces of ``x`` along ``axis`` (the first
    pieces one longer when the length does not divide, as ``numpy.array_split``)."""
    start, stop = bounds(length_along(x, axis), index, parts)
    if isinstance(x, list):
        return x[start:stop]
    if hasattr(x, "iloc"):  # pandas: rows (axis 0) or columns (axis 1)
        return x.iloc[start:stop] if _axis(x, axis) == 0 else x.iloc[:, start:stop]
    slices = [slice(None)] * x.ndim
    slices[_axis(x, axis)] = slice(start, stop)
    return x[tuple(slices)]


def bounds(length: int, index: int, parts: int) -> tuple[int, int]:
    """Where piece ``index`` of ``parts`` of a length ``length`` starts and stops."""
    size, extra = divmod(length, parts)
    start = index * size + min(index, extra)
    return start, start + size + (1 if index < extra else 0)


def length_along(x: Any, axis: int) -> int:
    """The length of ``x`` along ``axis``; a clear error for what cannot be split."""
    if isinstance(x, list):
        if axis not in (0, -1):
            raise ValueError(f"a list splits along axis 0 (or -1), not {axis}")
        return len(x)
    if not hasattr(x, "shape"):
        raise TypeError(
            f"split cuts numpy arrays, pandas DataFrames/Series and lists; got "
            f"{type(x).__module__}.{type(x).__qualname__}"
        )
    return int(x.shape[_axis(x, axis)])


def _axis(x: Any, axis: int) -> int:
    """``axis`` as a non-negative number, checked against ``x``'s dimensions."""
    ndim = len(x.shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a value with {ndim} dimension(s)")
    return axis % ndim


def concat(pieces: list[Any], axis: int) -> Any:
    """The pieces' results pasted back together along ``axis``, in order."""
    first = pieces[0]
    if isinstance(first, list):
        return [item for piece in pieces for item in piece]
    if hasattr(first, "iloc"):
        import pandas

        return pandas.concat(pieces, axis=_axis(first, axis))
    import numpy

    if getattr(first, "ndim", 0) == 0:
        raise TypeError(
            "split pastes the pieces' results back along the axis they were cut on, so the "
            f"function must return an array, DataFrame, Series or list; it returned "
            f"{type(first).__qualname__}. Use map() for per-piece scalars."
        )
    return numpy.concatenate(pieces, axis=_axis(first, axis))
