"""What a ``%%remote`` cell bound in the notebook, in words a person reads after the cell.

Each bound name gets one short line (``arr: ndarray 1000×1000 float64, 7.6 MiB``), from what
the worker already said about the value (the ref's ``info``, sent with the cell's result:
nothing is asked again). A name that replaced a notebook variable of another kind gets a
warning: a loop variable ``i`` that silently became a ref is a classic surprise, and the
user should see it where it happened, not three cells later. Both views (text and widget)
draw these lines; this module only words them.
"""

from __future__ import annotations

from typing import Any

MISSING = object()  # a name the notebook did not have before the cell


def _size(nbytes: int) -> str:
    from dask.utils import format_bytes

    return format_bytes(nbytes)


def describe(name: str, value: Any) -> str:
    """One line for a bound name: its kind, shape and dtype, and size where known."""
    from jupyter_remote.core.functions import RemoteFunction
    from jupyter_remote.core.refs import RemoteRef

    if isinstance(value, RemoteFunction):
        return f"{name}: remote function"
    if not isinstance(value, RemoteRef):
        return f"{name}: {type(value).__name__} (downloaded)"
    info = value.info
    if value.status == "pending" and "type" not in info:
        return f"{name}: pending"
    kind = str(info.get("type", "?")).rpartition(".")[2]
    words = [kind]
    if "shape" in info:
        words.append("×".join(str(n) for n in info["shape"]) or "scalar")
    if "dtype" in info:
        words.append(str(info["dtype"]))
    text = " ".join(words)
    if int(info.get("nbytes", 0)) >= 1024:  # the size of a small scalar is noise
        text += f", {_size(int(info['nbytes']))}"
    return f"{name}: {text}"


def summary(bound: dict[str, Any]) -> list[str]:
    """The lines of every bound name, in the order the cell bound them."""
    return [describe(name, value) for name, value in bound.items()]


def replaced(bound: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Warnings for names that were a notebook variable of another kind before the cell.

    ``before`` holds the notebook's values of the bound names just before they were bound
    (:data:`MISSING` for new names). A ref replacing a ref is the ordinary case; a ref
    replacing a local value (or a downloaded value replacing a ref) is worth a word.
    """
    from jupyter_remote.core.functions import RemoteFunction
    from jupyter_remote.core.refs import RemoteRef

    def remote(value: Any) -> bool:
        return isinstance(value, (RemoteRef, RemoteFunction))

    out = []
    for name, value in bound.items():
        old = before.get(name, MISSING)
        if old is MISSING or remote(old) == remote(value):
            continue
        if remote(value):
            out.append(
                f"{name} was a local {type(old).__name__} and is now a remote ref "
                f"(`%remote get {name}` downloads it; `--out` binds only the names you list)"
            )
        else:
            out.append(f"{name} was a remote ref and is now a local {type(value).__name__}")
    return out
