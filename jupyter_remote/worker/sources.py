"""Functions named by where their code is, loaded on the worker:
``"git+URL@REF#path/in/repo.py:func"``, ``"package.module:func"``.

A :class:`CodeRef` travels to the worker (a small object, never the code); when first called
there it finds the function: for git, the repository is cloned once per host and commit
(under the environments root, ``.git-cache/COMMIT``) by ``git`` run as a subprocess with an
argument list and a timeout (:mod:`jupyter_remote.worker.gitrepo`), and the file is imported
with the repository's root on the import path. Each failure (unreachable URL, unknown ref,
missing file or function) is one clear error naming the URL and ref.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import threading
from typing import Any

from jupyter_remote.worker import gitrepo

_loaded: dict[tuple[str, str | None], Any] = {}
_lock = threading.Lock()


class CodeRefError(ValueError):
    """The code a function name points at cannot be found or loaded."""


class CodeRef:
    """A function known by where its code is; calling it loads it (once) and calls it."""

    def __init__(self, target: str, *, url: str | None = None, ref: str | None = None,
                 path: str | None = None, module: str | None = None, name: str = "",
                 commit: str | None = None):
        self.target = target
        self.url, self.ref, self.path, self.module, self.name = url, ref, path, module, name
        self.commit = commit  # the commit ``ref`` named when the call was made (git only)
        self.__qualname__ = self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.target, self.url, self.ref, self.path, self.module, self.name,
                          self.commit)

    def __repr__(self) -> str:
        at = f" at {self.commit[:12]}" if self.commit else ""
        return f"<code {self.target}{at}>"

    def at(self, commit: str) -> CodeRef:
        """This code at ``commit`` (what its ref names now)."""
        return CodeRef(self.target, url=self.url, ref=self.ref, path=self.path,
                       module=self.module, name=self.name, commit=commit)

    def load(self) -> Any:
        with _lock:  # a moved branch is another commit: loaded again
            key = (self.target, self.commit)
            found = _loaded.get(key)
            if found is None:
                found = _loaded[key] = self._find()
            return found

    def _find(self) -> Any:
        if self.url is not None:
            assert self.ref is not None and self.path is not None
            root = checkout(self.url, self.commit or self.ref)
            module = _import_file(root, self.path, f"{self.url}@{self.ref}")
        else:
            assert self.module is not None
            try:
                module = importlib.import_module(self.module)
            except ImportError as exc:
                raise CodeRefError(f"{self.target}: module {self.module!r} cannot be imported on "
                                   f"the worker ({exc}); install it there or pass reqs=") from None
        fn = getattr(module, self.name, None)
        if fn is None:
            raise CodeRefError(f"{self.target}: {self.name!r} is not defined in it")
        return fn


def _rebuild(target: str, url: str | None, ref: str | None, path: str | None,
             module: str | None, name: str, commit: str | None = None) -> CodeRef:
    return CodeRef(target, url=url, ref=ref, path=path, module=module, name=name,
                   commit=commit)


def checkout(url: str, ref: str) -> str:
    """A checkout of ``url`` at ``ref`` on this host (cloned once per commit, under the
    environments' root)."""
    return gitrepo.checkout(url, ref, _cache_root())


def _cache_root() -> str:
    from jupyter_remote.worker import envstore

    return envstore.root()


def _import_file(root: str, path: str, what: str) -> Any:
    full = os.path.join(root, path)
    if not os.path.isfile(full):
        raise CodeRefError(f"{what}: there is no file {path!r} in the repository")
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)  # this checkout's modules first
    # Modules an earlier checkout (another commit) imported would be found in sys.modules
    # first: forget them (functions loaded from them keep what they imported).
    caches = os.path.dirname(root) + os.sep
    for key, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or ""
        if where.startswith(caches) and not where.startswith(root + os.sep):
            del sys.modules[key]
    name = "jupyter_remote_code_" + hashlib.sha256(full.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, full)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
