"""Saved functions in the result store, on the worker side: save a version, load one, list.

A saved function is one store entry per version, keyed ``function.NAME@N`` (N = 1, 2, ...),
its body the function pickled by value in the notebook (with its requirements and resources)
and its meta ``kind: saved-function``, the name, the version, when and from which notebook.
``NAME`` alone means the highest version. Saving never overwrites: a new save is the next
version, so ``NAME@1`` stays reachable after ``NAME`` moved on. Two notebooks saving one name
at the same instant may pick the same number: the later write wins that version.
"""

from __future__ import annotations

import re
from typing import Any

from jupyter_remote.worker.store import open_store

KIND = "saved-function"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,100}$")


def key_of(name: str, version: int) -> str:
    return f"function.{name}@{version}"


def versions(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every saved version's record, by name then version."""
    records = [r for r in open_store(spec).list() if r.get("kind") == KIND]
    return sorted(records, key=lambda r: (str(r.get("name")), int(r.get("version", 0))))


def save(spec: dict[str, Any], name: str, body: bytes, meta: dict[str, Any]) -> int:
    """Store ``body`` as the next version of ``name``; that version."""
    if not _NAME.match(name):
        raise ValueError(
            f"a saved function's name is a Python-like name (letters, digits, _ . -), got "
            f"{name!r}; e.g. function(fn, name='prep').save()"
        )
    taken = [int(r["version"]) for r in versions(spec) if r.get("name") == name]
    version = max(taken, default=0) + 1
    record = {**meta, "kind": KIND, "name": name, "version": version}
    open_store(spec).put(key_of(name, version), body, record)
    return version


def load(spec: dict[str, Any], name: str, version: int | None) -> tuple[bytes | None, list[str]]:
    """The body of ``name`` (its highest version, or ``version``), or None and the names of
    what is saved (for the error)."""
    records = versions(spec)
    mine = [int(r["version"]) for r in records if r.get("name") == name]
    if mine:
        chosen = max(mine) if version is None else version
        if chosen in mine:
            body = open_store(spec).get(key_of(name, chosen))
            if body is not None:
                return body, []
    known = sorted({f"{r['name']}@{r['version']}" for r in records})
    return None, known
