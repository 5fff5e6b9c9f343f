"""What a task carries to the worker: opaque bytes that only the worker opens.

A payload is cloudpickled bytes. Remote values inside it (``RemoteRef``, ``RemoteFunction``
bound to a ref, ``distributed.Future``), at any depth, are cut out as *dependencies*: Dask
moves their data worker to worker and the worker splices the values back in while
unpickling. Notebook-defined functions and classes travel by value (cloudpickle does that for
``__main__``; :mod:`jupyter_remote.core.modules` adds modules next to the notebook).

A call with requirements carries a plain-pickled header (its env spec) ahead of the payload,
so the worker can prepare the environment without opening user code (:func:`with_env`).
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import IO, Any

import cloudpickle

from jupyter_remote.exceptions import SerializationError


def identity(x: Any) -> Any:
    """Returns its argument: what a pickled ref or function reduces to (``(identity, (v,))``),
    importable on every worker."""
    return x


class _DependencyPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: IO[bytes], dependencies: list[Any]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.dependencies = dependencies
        self._index: dict[str, int] = {}

    def persistent_id(self, obj: Any) -> tuple[str, int] | None:
        future = as_future(obj)
        if future is None:
            return None
        key = str(future.key)
        if key not in self._index:
            self._index[key] = len(self.dependencies)
            self.dependencies.append(future)
        return ("dep", self._index[key])


def as_future(obj: Any) -> Any:
    """The ``distributed.Future`` behind a remote value, or None for anything else."""
    getter = getattr(type(obj), "__jupyter_remote_future__", None)
    if getter is not None:
        return getter(obj)
    if "distributed" in sys.modules:
        from distributed import Future

        if isinstance(obj, Future):
            return obj
    return None


class _DependencyUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], values: tuple[Any, ...]):
        super().__init__(file)
        self.values = values

    def persistent_load(self, pid: Any) -> Any:
        tag, index = pid
        if tag != "dep":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self.values[index]


def dumps(obj: Any, names: dict[str, Any] | None = None) -> tuple[bytes, list[Any]]:
    """Pickle ``obj``; return the bytes and the futures it depends on.

    ``names`` maps input names to values; when pickling fails, the first of them that
    cannot be pickled is named in a :class:`SerializationError`.
    """
    buf = io.BytesIO()
    deps: list[Any] = []
    try:
        _DependencyPickler(buf, deps).dump(obj)
    except Exception as exc:
        for name, value in (names or {}).items():
            try:
                _DependencyPickler(io.BytesIO(), []).dump(value)
            except Exception as inner:
                raise SerializationError(name, value, inner) from None
        raise SerializationError("<arguments>", obj, exc) from None
    return buf.getvalue(), deps


def loads(data: bytes, dependencies: tuple[Any, ...] = ()) -> Any:
    """Open a payload on the worker, splicing in the dependency values."""
    return _DependencyUnpickler(io.BytesIO(data), dependencies).load()


# -- values of environments ---------------------------------------------------------------
class Opaque:
    """A value made in a requirements environment, kept as its pickled bytes.

    The worker's own process may lack (or have another version of) the classes inside, so
    it never opens them: :func:`unwrap` does, in the notebook or in the environment.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __sizeof__(self) -> int:
        return len(self.data) + 64

    def __repr__(self) -> str:
        return f"<value of a requirements environment, {len(self.data)} bytes>"


def unwrap(value: Any) -> Any:
    """Open an :class:`Opaque` value; anything else is returned as is."""
    if type(value) is Opaque:
        try:
            return cloudpickle.loads(value.data)
        except ImportError as exc:
            exc.add_note(
                "This value was made in a requirements environment (--reqs) on the cluster: "
                "opening it here needs those packages here too. Or keep it remote and pass it "
                "to a later call with the same requirements."
            )
            raise
    return value


ENV_HEADER = b"\x00jrenv1\x00"


def with_env(data: bytes, meta: dict[str, Any]) -> bytes:
    """A payload that runs in an environment: plain-pickled ``meta`` (the env spec, the call)
    ahead of the opaque payload, so the worker reads it without opening user code."""
    head = pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL)
    return ENV_HEADER + len(head).to_bytes(8, "little") + head + data


def has_env(data: bytes) -> bool:
    """Whether a payload runs in an environment (requirements or files)."""
    return data[: len(ENV_HEADER)] == ENV_HEADER


def split_env(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the opaque payload of :func:`with_env`'s bytes."""
    start = len(ENV_HEADER)
    size = int.from_bytes(data[start : start + 8], "little")
    meta: dict[str, Any] = pickle.loads(data[start + 8 : start + 8 + size])
    return meta, data[start + 8 + size :]


class Unbound:
    """Stands for a name a cell did not bind on this run (or bound to a module).

    A ``take`` returns it rather than failing, so Dask logs no error for what is not one;
    the notebook drops such refs, and ``RemoteRef.get`` explains if one is ever read.
    """

    def __init__(self, label: str):
        self.label = label

    def __repr__(self) -> str:
        return f"<{self.label} was not bound>"
