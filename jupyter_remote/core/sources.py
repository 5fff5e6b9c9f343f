"""A function named by a string: where its code is (see ``jupyter_remote.function``).

- ``"git+URL@REF#path/in/repo.py:func"`` and the web form
  ``"https://github.com/OWNER/REPO/blob/REF/path/in/repo.py:func"``: loaded on the worker
  from a checkout of the repository at the commit REF names when each call is made
  (:func:`pinned`: one ``git ls-remote`` a call, a map or a split), so a moved branch is
  followed by the next call and memoized results count by the commit
  (:mod:`jupyter_remote.worker.sources`);
- ``"package.module:func"``: imported on the worker (installed there, or through ``reqs=``);
- ``"./file.py:func"`` (a path ending in ``.py``): a file next to the notebook, loaded here
  and sent by value like a notebook function.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from jupyter_remote.core import gitreqs
from jupyter_remote.worker.sources import CodeRef

_WEB = re.compile(r"^https://(?P<host>[^/]+)/(?P<owner>[^/]+)/(?P<repo>[^/]+)/blob/"
                  r"(?P<ref>[^/]+)/(?P<path>.+)$")


def parse(text: str, base: str | None = None) -> Callable[..., Any]:
    """The function ``text`` names (a :class:`CodeRef` for code found on the worker)."""
    where, sep, name = text.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ValueError(
            f"{text!r} does not name a function: use 'git+URL@REF#path/in/repo.py:func', "
            "'https://github.com/OWNER/REPO/blob/REF/path.py:func', 'package.module:func' "
            "or './file.py:func'"
        )
    if where.startswith("git+"):
        repo, sep, path = where[4:].partition("#")
        url, at, ref = repo.rpartition("@")
        if not sep or not path or not at or not url or "://" not in url:
            raise ValueError(f"{text!r}: expected git+URL@REF#path/in/repo.py:func")
        return CodeRef(text, url=url, ref=ref, path=path, name=name)
    web = _WEB.match(where)
    if web:
        url = f"https://{web['host']}/{web['owner']}/{web['repo']}.git"
        return CodeRef(text, url=url, ref=web["ref"], path=web["path"], name=name)
    if where.endswith(".py"):
        return _local_file(where, name, base or os.getcwd())
    if all(part.isidentifier() for part in where.split(".")):
        return CodeRef(text, module=where, name=name)
    raise ValueError(f"{text!r}: {where!r} is neither a git URL, a module name nor a .py file")


def _local_file(path: str, name: str, base: str) -> Callable[..., Any]:
    import cloudpickle

    full = os.path.abspath(os.path.join(base, os.path.expanduser(path)))
    if not os.path.isfile(full):
        raise FileNotFoundError(f"{path!r}: no such file (paths are relative to {base})")
    module_name = "jupyter_remote_file_" + hashlib.sha256(full.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, full)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # the workers do not have this file
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"{path!r} defines no function {name!r}")
    return fn


def pinned(fn: Any) -> Any:
    """``fn`` with code from git pinned to the commit its ref names now (keyword arguments
    bound with ``functools.partial`` kept); anything else as it is."""
    if isinstance(fn, functools.partial):
        inner = pinned(fn.func)
        return fn if inner is fn.func else functools.partial(inner, *fn.args, **fn.keywords)
    if isinstance(fn, CodeRef) and fn.url is not None and fn.ref is not None:
        return fn.at(gitreqs.resolve(fn.url, fn.ref))
    return fn
