"""What travels to the worker, and how failures travel back.

A payload is cloudpickled bytes that only the worker opens. Remote values inside it
(``RemoteRef``, ``RemoteFunction`` bound to a ref, ``distributed.Future``), at any depth,
are cut out as *dependencies*: Dask moves their data worker to worker and the worker
splices the values back in while unpickling. Notebook-defined functions and classes travel
by value (cloudpickle does that for ``__main__``), and so do modules imported from files
next to the notebook.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import sys
import sysconfig
import traceback
from typing import Any

import cloudpickle

from jupyter_remote.exceptions import (
    RemoteError,
    RemoteTaskError,
    RemoteTraceback,
    SerializationError,
)


class _DependencyPickler(cloudpickle.Pickler):
    def __init__(self, file, dependencies: list):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.dependencies = dependencies
        self._index: dict[str, int] = {}

    def persistent_id(self, obj: Any):
        future = _as_future(obj)
        if future is None:
            return None
        key = str(future.key)
        if key not in self._index:
            self._index[key] = len(self.dependencies)
            self.dependencies.append(future)
        return ("dep", self._index[key])


def _as_future(obj: Any):
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
    def __init__(self, file, values: tuple):
        super().__init__(file)
        self.values = values

    def persistent_load(self, pid):
        tag, index = pid
        if tag != "dep":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self.values[index]


def dumps(obj: Any, names: dict[str, Any] | None = None) -> tuple[bytes, list]:
    """Pickle ``obj``; return the bytes and the futures it depends on.

    ``names`` maps input names to values; when pickling fails, the first of them that
    cannot be pickled is named in a :class:`SerializationError`.
    """
    register_local_modules()
    buf = io.BytesIO()
    deps: list = []
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


def content_key(obj: Any, names: dict[str, Any] | None = None) -> str:
    """A digest of what ``obj`` pickles to, refs by their keys: equal for an identical
    call (same code, same input values, same refs) made again."""
    import hashlib

    data, deps = dumps(obj, names)
    digest = hashlib.sha256(data)
    for dep in deps:
        digest.update(str(dep.key).encode())
    return digest.hexdigest()[:24]


def loads(data: bytes, dependencies: tuple = ()) -> Any:
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


def with_env(data: bytes, meta: dict) -> bytes:
    """A payload that runs in an environment: plain-pickled ``meta`` (the env spec, the call)
    ahead of the opaque payload, so the worker reads it without opening user code."""
    head = pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL)
    return ENV_HEADER + len(head).to_bytes(8, "little") + head + data


def split_env(data: bytes) -> tuple[dict, bytes]:
    start = len(ENV_HEADER)
    size = int.from_bytes(data[start : start + 8], "little")
    return pickle.loads(data[start + 8 : start + 8 + size]), data[start + 8 + size :]


# -- local modules by value ----------------------------------------------------------------
_registered: set[str] = set()
_scanned = 0


def _installed_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


@functools.lru_cache(maxsize=1)
def _distribution_packages() -> frozenset[str]:
    """Top-level names provided by installed distributions (editable installs included)."""
    from importlib.metadata import packages_distributions

    return frozenset(packages_distributions())


def register_local_modules(root: str | None = None) -> list[str]:
    """Make cloudpickle ship modules imported from files under ``root`` by value.

    ``root`` defaults to the current directory (the notebook's folder in a kernel).
    Installed packages (under the interpreter's prefixes, or installed as a distribution,
    even in editable mode) travel by reference as usual: the workers have them.
    """
    global _scanned
    if root is None and len(sys.modules) == _scanned:
        return sorted(_registered)
    base = os.path.realpath(root or os.getcwd()) + os.sep
    installed = _installed_roots()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top in _registered or top == "__main__" or top not in sys.modules:
            continue
        if top == "jupyter_remote" or top in _distribution_packages():
            continue
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        if path.startswith(base) and not path.startswith(installed) and "site-packages" not in path:
            try:
                cloudpickle.register_pickle_by_value(sys.modules[top])
                _registered.add(top)
            except ValueError:
                pass
    if root is None:
        _scanned = len(sys.modules)
    return sorted(_registered)


# -- failures ------------------------------------------------------------------------------
_INTERNAL = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


def pack_exception(exc: BaseException) -> RemoteTaskError:
    """Wrap an exception raised by user code on the worker for the trip back.

    The traceback is formatted here, where the cell's source is known, leaving out the
    frames of jupyter_remote and of the worker machinery.
    """
    tb = traceback.TracebackException.from_exception(exc)
    tb.stack = traceback.StackSummary.from_list(
        [f for f in tb.stack if not os.path.abspath(f.filename).startswith(_INTERNAL)]
    )
    text = "".join(tb.format())
    try:
        blob = cloudpickle.dumps(exc.with_traceback(None))
        cloudpickle.loads(blob)  # what cannot round-trip here will not do it there either
    except Exception:
        blob = b""
    info = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": text,
        "exception": blob,
    }
    return RemoteTaskError(pickle.dumps(info), f"{info['type']}: {info['message']}"[:200])


def unpack_exception(error: BaseException, where: str = "") -> BaseException:
    """Turn a :class:`RemoteTaskError` into the original exception, remote traceback attached.

    Any other exception is returned unchanged.
    """
    if not isinstance(error, RemoteTaskError) or not error.args:
        return error
    info = pickle.loads(error.args[0])
    exc: BaseException | None = None
    if info["exception"]:
        try:
            exc = cloudpickle.loads(info["exception"])
        except Exception:
            exc = None
    if exc is None:
        exc = RemoteError(info["type"], info["message"])
    header = f"Remote traceback{f' ({where})' if where else ''}:\n"
    exc.__cause__ = RemoteTraceback(header + info["traceback"].rstrip())
    exc.__traceback__ = None
    return exc
