"""Content digests of code and values: the keys of memoized results and shared values.

A key must come out equal in another kernel (another process, another machine) for equal
code and equal inputs, so nothing here may depend on a process: not pickled functions (their
bytes hold file names with a kernel's pid and execution counts), not the order of a set of
strings (hash randomization), not a ``Future``'s token.

- Code counts by **source**: a function's source (``inspect.getsource``; its bytecode where no
  source is found), its defaults, its closure, and the globals its code names, each by kind:
  a module by name and version, a notebook function or class recursively by its own code, an
  installed function by its import path, anything else as a value.
- Values count by **content**: they are pickled (protocol 5) into a hash, never into memory;
  numpy arrays and the blocks of pandas frames hand their buffers over out of band, and those
  buffers are hashed where they lie, so a 200 MB array is read once and copied never.
  Functions inside values count by their code, sets by their sorted items.
- A remote value (``RemoteRef``, ``Future``) counts by its Dask key, which for a value that
  came from the store or from ``share`` is itself a content digest.

The hash is xxHash's XXH3-128: not a defence against someone forging collisions on purpose
(the store is yours), but fast enough (several GB/s) that hashing is never the slow part.
"""

from __future__ import annotations

import collections
import dis
import inspect
import io
import os
import pickle
import re
import sys
import sysconfig
import types
from typing import Any

import cloudpickle
import xxhash

from jupyter_remote.wire.payload import as_future

VERSION = "1"  # part of every key: a change of what a key covers must not hit old entries


class _Sink(io.RawIOBase):
    """A file the pickler writes to that only feeds the hash."""

    def __init__(self, hasher: Any):
        self.hasher = hasher

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        return len(data)


class _HashingPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, hasher: Any, seen: set[int]):
        self.hasher = hasher
        self.seen = seen
        super().__init__(_Sink(hasher), protocol=5, buffer_callback=self._buffer)

    def _buffer(self, buffer: pickle.PickleBuffer) -> bool:
        with buffer.raw() as raw:  # the array's own memory: no copy
            self.hasher.update(raw)
        return False  # out of band: the pickle stream never holds the bytes

    def persistent_id(self, obj: Any) -> Any:
        future = as_future(obj)
        if future is not None:
            return ("ref", ref_identity(str(future.key)))
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType):
            return (str, (f"function:{function_digest(obj, self.seen)}",))
        if type(obj) in (set, frozenset):
            return (type(obj), (sorted(obj, key=repr),))
        return super().reducer_override(obj)


# Memoized cells' call ids -> their store keys: a name a memoized cell bound (Dask key
# ``remote-take-<call id>-<name>``) counts by the cell's store key, so a chain of cached cells
# hits end to end in another kernel, where the call ids differ. Bounded: the oldest go.
_cells: collections.OrderedDict[str, str] = collections.OrderedDict()
_TAKE = re.compile(r"^remote-take-([0-9a-f]+)-(.+)$")


def alias_cell(call_id: str, store_key: str) -> None:
    """Count the names bound by the memoized cell ``call_id`` by ``store_key``."""
    _cells[call_id] = store_key
    while len(_cells) > 10_000:
        _cells.popitem(last=False)


def ref_identity(key: str) -> str:
    """What a remote value counts as: its store key when it came from the store (a memoized
    call's key is ``remote-memo-<store key>-<call id>``; a memoized cell's names count by the
    cell's store key and the name), else its Dask key."""
    if key.startswith("remote-memo-"):
        return "memo:" + key[len("remote-memo-"):].rpartition("-")[0]
    match = _TAKE.match(key)
    if match and match.group(1) in _cells:
        return f"memo:{_cells[match.group(1)]}:{match.group(2)}"
    return key


def value_digest(value: Any, seen: set[int] | None = None) -> str:
    """A digest of ``value``'s content (refs by key); equal values, equal digests."""
    hasher = xxhash.xxh3_128()
    try:
        _HashingPickler(hasher, seen if seen is not None else set()).dump(value)
    except Exception as exc:
        from jupyter_remote.exceptions import SerializationError

        raise SerializationError("<value to hash>", value, exc) from None
    return hasher.hexdigest()


def function_digest(fn: Any, seen: set[int] | None = None) -> str:
    """A digest of a function's code: source, defaults, closure, and the globals it uses."""
    fn = inspect.unwrap(fn)  # a RemoteFunction (functools.wraps) counts as its function
    if as_future(fn) is not None:  # a function that lives on the cluster: by its key
        return value_digest(fn)
    seen = set() if seen is None else seen
    if id(fn) in seen:  # recursion (a function calling itself, or two calling each other)
        return f"recursive:{getattr(fn, '__qualname__', '?')}"
    seen.add(id(fn))
    hasher = xxhash.xxh3_128()
    if isinstance(fn, type):
        hasher.update(_class_text(fn, seen).encode())
        return hasher.hexdigest()
    if not isinstance(fn, types.FunctionType):  # a builtin, a callable object: as a value
        return value_digest(fn, seen)
    hasher.update(_source(fn).encode())
    hasher.update(value_digest((fn.__defaults__, fn.__kwdefaults__), seen).encode())
    cells = tuple(c.cell_contents for c in fn.__closure__ or () if _filled(c))
    hasher.update(value_digest(cells, seen).encode())
    for name in sorted(global_names(fn.__code__)):
        if name in fn.__globals__:
            hasher.update(f"|{name}={_global_text(fn.__globals__[name], seen)}".encode())
    return hasher.hexdigest()


_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME"}


def global_names(code: types.CodeType) -> set[str]:
    """The global names a code object (and the code nested in it) reads.

    From the bytecode's global loads, not ``co_names``: that also holds attribute names and
    modules imported inside the function, which would make a key depend on whatever the
    notebook happens to have bound under those names.
    """
    names = {str(i.argval) for i in dis.get_instructions(code) if i.opname in _GLOBAL_OPS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def _source(fn: types.FunctionType) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # typed at a prompt with no file: its bytecode then
        return repr(_code_parts(fn.__code__))


def _code_parts(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_code_parts(c) if isinstance(c, types.CodeType) else repr(c)
                   for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames, code.co_argcount)


def _filled(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # a cell not yet assigned
        return False
    return True


def _global_text(value: Any, seen: set[int]) -> str:
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}:{getattr(value, '__version__', '')}"
    module = getattr(value, "__module__", None)
    if isinstance(value, (types.FunctionType, type)) and _installed(module):
        qualname = getattr(value, "__qualname__", "")
        if "<locals>" not in qualname:  # an installed function or class: by import path
            version = getattr(sys.modules[str(module).partition(".")[0]], "__version__", "")
            return f"import:{module}.{qualname}:{version}"
    if isinstance(value, (types.FunctionType, type)) or inspect.unwrap(value) is not value:
        return f"code:{function_digest(value, seen)}"
    return f"value:{value_digest(value, seen)}"


def _installed(module: str | None) -> bool:
    """Whether a module is installed (site-packages, the standard library), rather than the
    notebook's own or a file next to it, whose code may change between runs."""
    if not module or module == "__main__":
        return False
    top = sys.modules.get(module.partition(".")[0])
    path = getattr(top, "__file__", None)
    if path is None:  # builtin modules
        return top is not None
    path = os.path.realpath(path)
    roots = {os.path.realpath(p) for p in (sysconfig.get_paths()["stdlib"],
                                           sysconfig.get_paths()["purelib"],
                                           sysconfig.get_paths()["platlib"])}
    return "site-packages" in path or any(path.startswith(r + os.sep) for r in roots)


def _class_text(cls: type, seen: set[int]) -> str:
    """A notebook class: its source, else its methods' code and its other attributes."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    parts = [cls.__qualname__, *(b.__qualname__ for b in cls.__bases__)]
    for name, attr in sorted(vars(cls).items()):
        if name in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
            continue
        target = getattr(attr, "__func__", attr)  # classmethod / staticmethod
        if isinstance(target, types.FunctionType):
            parts.append(f"{name}:{function_digest(target, seen)}")
        else:
            try:
                parts.append(f"{name}:{value_digest(attr, seen)}")
            except Exception:
                parts.append(f"{name}:{type(attr).__qualname__}")
    return "|".join(parts)


def digest(*parts: str) -> str:
    """One digest of several (each part already a digest or plain text)."""
    hasher = xxhash.xxh3_128(f"v{VERSION}".encode())
    for part in parts:
        hasher.update(b"\x00" + part.encode())
    return hasher.hexdigest()
