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
import threading
from typing import IO, Any

import cloudpickle

from jupyter_remote.exceptions import SerializationError


def identity(x: Any) -> Any:
    """Returns its argument: what a pickled ref or function reduces to (``(identity, (v,))``),
    importable on every worker."""
    return x


class _DependencyPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle that cuts remote values out as dependencies.

    Remote values are found in ``reducer_override``, which pickle calls only for objects
    that are not of a built-in type (a ``persistent_id`` hook would be called for every
    int, str and tuple of a 100,000-item map: 1.6-3.7 µs per item); the answer is cached per
    type.
    """

    def __init__(self, file: IO[bytes], dependencies: list[Any],
                 buffers: list[pickle.PickleBuffer] | None = None):
        if buffers is None:
            super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            def out_of_band(buffer: pickle.PickleBuffer) -> bool:
                if buffer.raw().nbytes < OUT_OF_BAND:
                    return True  # small: inside the pickle
                buffers.append(buffer)
                return False

            super().__init__(file, protocol=5, buffer_callback=out_of_band)
        self.dependencies = dependencies
        self._index: dict[str, int] = {}

    def reducer_override(self, obj: Any) -> Any:
        if _is_remote_type(type(obj)):
            future = as_future(obj)
            if future is not None:
                key = str(future.key)
                if key not in self._index:
                    self._index[key] = len(self.dependencies)
                    self.dependencies.append(future)
                return _dependency, (self._index[key],)
        return super().reducer_override(obj)


_remote_types: dict[type, bool] = {}


def _is_remote_type(cls: type) -> bool:
    """Whether instances of ``cls`` may be remote values (cached: one dict lookup a time)."""
    found = _remote_types.get(cls)
    if found is None:
        found = hasattr(cls, "__jupyter_remote_future__")
        if not found and "distributed" in sys.modules:
            from distributed import Future

            found = issubclass(cls, Future)
        _remote_types[cls] = found
    return found


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


_loading = threading.local()  # the dependency values of the payload being opened here


def _dependency(index: int) -> Any:
    """What a remote value in a payload unpickles to: its value, a task dependency."""
    return _loading.values[index]


def dumps(obj: Any, names: dict[str, Any] | None = None,
          buffers: list[pickle.PickleBuffer] | None = None) -> tuple[bytes, list[Any]]:
    """Pickle ``obj``; return the bytes and the futures it depends on.

    ``names`` maps input names to values; when pickling fails, the first of them that
    cannot be pickled is named in a :class:`SerializationError`. With ``buffers``, large
    buffers (numpy arrays and the like, :data:`OUT_OF_BAND` bytes or more) are not copied
    into the bytes but appended there (pickle protocol 5): see :class:`Frames`.
    """
    buf = io.BytesIO()
    deps: list[Any] = []
    try:
        _DependencyPickler(buf, deps, buffers).dump(obj)
    except Exception as exc:
        for name, value in (names or {}).items():
            try:
                _DependencyPickler(io.BytesIO(), []).dump(value)
            except Exception as inner:
                raise SerializationError(name, value, inner) from None
        raise SerializationError("<arguments>", obj, exc) from None
    return buf.getvalue(), deps


OUT_OF_BAND = 1 << 20


class Frames:
    """A payload with large buffers beside its bytes instead of inside them.

    Dask pickles a task's arguments with protocol 5 and sends such buffers as frames of their
    own, without copying them; a payload's bytes would hold a copy (made here, and another
    one when opened). The buffers are plain memory: the scheduler still never needs user
    code to hold them.
    """

    __slots__ = ("buffers", "data")

    def __init__(self, data: bytes, buffers: list[Any]):
        self.data = data
        self.buffers = buffers

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # Every hop pickles the payload again (the scheduler too): opened, the buffers are
        # plain memoryviews, which pickle cannot take out of band, so they would travel
        # inside the bytes from the scheduler on (two copies of each on the worker).
        # Wrapped as PickleBuffers they stay frames of their own on every hop.
        if isinstance(protocol, int) and protocol >= 5:
            return Frames, (self.data, [pickle.PickleBuffer(b) for b in self.buffers])
        return Frames, (self.data, [bytes(b) for b in self.buffers])


def loads(data: bytes | Frames, dependencies: tuple[Any, ...] = ()) -> Any:
    """Open a payload on the worker, splicing in the dependency values."""
    previous = getattr(_loading, "values", None)  # (a payload opened while opening one)
    _loading.values = dependencies
    try:
        if type(data) is Frames:
            return pickle.loads(data.data, buffers=data.buffers)
        return pickle.loads(data)  # type: ignore[arg-type]
    finally:
        _loading.values = previous


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


def has_env(data: bytes | Frames) -> bool:
    """Whether a payload runs in an environment (requirements or files)."""
    return type(data) is bytes and data[: len(ENV_HEADER)] == ENV_HEADER


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


class BatchResult:
    """The results of one batch of a map, as one object.

    Dask sends a ``list`` result element by element (a pickle, a header and a frame per
    item: 17-33 µs per item on the worker's event loop); an object of this class it pickles
    once, with large buffers (arrays) still out of band.
    """

    __slots__ = ("errors", "seconds", "values")

    def __init__(self, values: list[Any], errors: dict[int, bytes], seconds: float):
        self.values = values  # per item, in order (None where the item failed)
        self.errors = errors  # position in the batch -> the packed exception
        self.seconds = seconds  # time the items took on the worker

    def __reduce__(self) -> tuple[Any, ...]:
        return BatchResult, (self.values, self.errors, self.seconds)

    def __repr__(self) -> str:
        return f"<BatchResult {len(self.values)} items, {len(self.errors)} failed>"

    def small(self, limit: int) -> bytes | None:
        """These results pickled, if they take at most ``limit`` bytes (see
        :func:`small_pickle`); else None."""
        return small_pickle(self, limit)


def small_pickle(value: Any, limit: int) -> bytes | None:
    """``value`` pickled, if that takes at most ``limit`` bytes, buffers (arrays) included;
    else None (also when it does not pickle). Big buffers go the usual way, out of band."""
    buffers: list[pickle.PickleBuffer] = []
    dumps: Any = pickle.dumps
    try:
        data = dumps(value, protocol=5, buffer_callback=buffers.append)
        if b"__main__" in data:  # classes of the notebook's own: by value, as Dask would
            raise pickle.PicklingError("by value")
    except Exception:
        buffers.clear()
        dumps = cloudpickle.dumps
        try:
            data = dumps(value, protocol=5, buffer_callback=buffers.append)
        except Exception:
            return None
    if len(data) + sum(memoryview(b).nbytes for b in buffers) > limit:
        return None
    if buffers:  # small arrays: inside the bytes (one copy of a few KiB)
        data = dumps(value, protocol=5)
    return bytes(data)


def _sizeof_batch(result: BatchResult) -> int:
    from dask.sizeof import sizeof

    return int(sizeof(result.values)) + 64


def register_sizeof() -> None:
    """Tell Dask how big a :class:`BatchResult` is (its memory accounting)."""
    from dask.sizeof import sizeof

    sizeof.register(BatchResult)(_sizeof_batch)  # type: ignore[no-untyped-call]


class Held:
    """Stands in a cell's description for the bytes the cell keeps on its worker, so that
    Dask's ``sizeof`` of the description, which places the cell's ``take`` tasks, counts them
    (a take placed elsewhere would copy the value over)."""

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int):
        self.nbytes = nbytes

    def __sizeof__(self) -> int:
        return self.nbytes

    def __reduce__(self) -> tuple[Any, ...]:
        return Held, (self.nbytes,)

    def __repr__(self) -> str:
        return f"<{self.nbytes} bytes held for the cell's refs>"
