"""The result store: bytes by key in a folder or an object store, through fsspec.

One small interface (:meth:`Store.get`, :meth:`~Store.put`, :meth:`~Store.has`,
:meth:`~Store.list`, :meth:`~Store.delete`) over any fsspec URL (a local folder, ``file://``,
``s3://bucket/prefix``, ``gcs://...``, ``memory://``), used by the worker side only: the
notebook sends the URL with each call (``jupyter-remote.store.url``) and never needs the
store's credentials. ``~`` in a URL is the home of the process that opens it (a worker's).

Layout under the root: ``objects/KEY`` holds an entry, ``meta/KEY.json`` what it is (kind,
label, a short input summary, size, created, last used: what ``%remote cache`` lists and what
least-recently-used eviction reads).

Why entries can be trusted:

- each entry opens with a header (magic, body length, SHA-256 of the body): a truncated or
  corrupt entry, or one another program wrote, reads as a miss, never as a wrong value;
- a write is atomic: on a local file system to a temporary name in the same folder and then
  ``os.replace`` (readers see the old entry or the new one, and of two workers writing the
  same key at once, one whole copy stays); on other file systems one ``pipe`` per file, which
  object stores make visible whole or not at all.

``max_size`` (``jupyter-remote.store.max-size``) caps the entries' total size: after a put,
the least recently used entries go until the rest fits.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import time
import uuid
from typing import Any

import fsspec

MAGIC = b"JRSTORE1"
_HEADER = len(MAGIC) + 8 + 32
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@=+-]{0,200}$")


def pack(body: bytes) -> bytes:
    """An entry: the header (magic, length, SHA-256) and the body."""
    return MAGIC + len(body).to_bytes(8, "little") + hashlib.sha256(body).digest() + body


def unpack(data: bytes) -> bytes | None:
    """The body of an entry, or None if it is truncated, corrupt or not an entry."""
    if len(data) < _HEADER or data[: len(MAGIC)] != MAGIC:
        return None
    size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little")
    body = data[_HEADER:]
    if len(body) != size or hashlib.sha256(body).digest() != data[len(MAGIC) + 8 : _HEADER]:
        return None
    return body


class Store:
    """Entries by key under one fsspec URL.

    Parameters
    ----------
    url
        A folder (``~`` expanded here) or any fsspec URL.
    max_size
        Total bytes the entries may take (an int, or a string such as ``"20GB"``); None: no cap.
    storage_options
        Passed to fsspec (credentials, an ``endpoint_url`` in ``client_kwargs``, ...).
    """

    def __init__(
        self, url: str, max_size: int | str | None = None, **storage_options: Any
    ) -> None:
        if "://" not in url:
            url = os.path.expanduser(url)
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocols or "local" in protocols
        self.max_size = _bytes(max_size)

    def __repr__(self) -> str:
        return f"<Store {self.url}>"

    # -- paths ---------------------------------------------------------------------------
    def _object(self, key: str) -> str:
        return f"{self.root}/objects/{_checked(key)}"

    def _meta(self, key: str) -> str:
        return f"{self.root}/meta/{_checked(key)}.json"

    # -- the interface ---------------------------------------------------------------------
    def put(self, key: str, body: bytes, meta: dict[str, Any] | None = None) -> None:
        """Store ``body`` under ``key`` (replacing an entry of that key) with ``meta``."""
        now = time.time()
        record = {**(meta or {}), "key": key, "size": len(body), "created": now, "used": now}
        self._write(self._object(key), pack(body))
        self._write(self._meta(key), json.dumps(record).encode())
        if self.max_size is not None:
            self.evict(keep=key)

    def get(self, key: str) -> bytes | None:
        """The body stored under ``key``; None if there is none, or it is not whole."""
        try:
            data = self.fs.cat_file(self._object(key))
        except (FileNotFoundError, OSError):
            return None
        body = unpack(bytes(data))
        if body is not None:
            self._touch(key)
        return body

    def has(self, key: str) -> bool:
        """Whether a whole entry is stored under ``key`` (its length matches its header)."""
        path = self._object(key)
        try:
            head = self.fs.cat_file(path, start=0, end=_HEADER)
            size = self.fs.size(path)
        except (FileNotFoundError, OSError):
            return False
        if len(head) < _HEADER or head[: len(MAGIC)] != MAGIC:
            return False
        return int(size or 0) == _HEADER + int.from_bytes(head[len(MAGIC) : len(MAGIC) + 8], "little")

    def list(self) -> list[dict[str, Any]]:
        """What is stored: one record per entry (``key``, ``size``, ``created``, ``used`` and
        the meta given to :meth:`put`), least recently used first."""
        self.fs.invalidate_cache(f"{self.root}/meta")  # other processes write here too
        try:
            paths = self.fs.find(f"{self.root}/meta")
        except (FileNotFoundError, OSError):
            return []
        records = []
        for path in paths:
            if not path.endswith(".json"):
                continue
            try:
                records.append(json.loads(self.fs.cat_file(path)))
            except (FileNotFoundError, OSError, ValueError):
                continue  # removed meanwhile, or being replaced
        return sorted(records, key=lambda r: float(r.get("used", 0)))

    def delete(self, key: str) -> bool:
        """Remove the entry of ``key``; whether there was one."""
        found = False
        for path in (self._object(key), self._meta(key)):
            self.fs.invalidate_cache(path)
            try:
                # an object store deletes a missing key without complaint: ask first
                if self.fs.exists(path):
                    self.fs.rm_file(path)
                    found = True
            except (FileNotFoundError, OSError):
                pass
        return found

    def clear(self) -> int:
        """Remove every entry; how many there were."""
        records = self.list()
        for record in records:
            self.delete(str(record["key"]))
        return len(records)

    def evict(self, keep: str | None = None) -> builtins.list[str]:
        """Remove least recently used entries until the total fits ``max_size``."""
        if self.max_size is None:
            return []
        records = self.list()
        total = sum(int(r.get("size", 0)) for r in records)
        gone: builtins.list[str] = []  # (`list` here is the method)
        for record in records:
            if total <= self.max_size:
                break
            key = str(record["key"])
            if key == keep:
                continue
            self.delete(key)
            total -= int(record.get("size", 0))
            gone.append(key)
        return gone

    # -- writing ---------------------------------------------------------------------------
    def _write(self, path: str, data: bytes) -> None:
        if not self.local:
            self.fs.pipe_file(path, data)  # one put: whole or not at all
            return
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as f:
                f.write(data)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def _touch(self, key: str) -> None:
        """Mark an entry used now (for eviction); best effort: a reader never fails on it."""
        try:
            record = json.loads(self.fs.cat_file(self._meta(key)))
            record["used"] = time.time()
            self._write(self._meta(key), json.dumps(record).encode())
        except (FileNotFoundError, OSError, ValueError):
            pass


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(
            f"a store key is letters, digits and _.@=+- (at most 201), got {key!r}; "
            "keys come from content hashes and function names"
        )
    return key


def _bytes(size: int | str | None) -> int | None:
    if size is None or size == "":
        return None
    if isinstance(size, int):
        return size
    from dask.utils import parse_bytes

    return int(parse_bytes(size))


def open_store(spec: dict[str, Any]) -> Store:
    """The store a call's spec names (``url``, ``max_size``, ``options``), one per spec and
    process: opening an fsspec file system may cost a connection."""
    key = json.dumps(spec, sort_keys=True, default=str)
    found = _open.get(key)
    if found is None:
        found = _open[key] = Store(
            str(spec["url"]), spec.get("max_size"), **dict(spec.get("options") or {})
        )
    return found


_open: dict[str, Store] = {}
