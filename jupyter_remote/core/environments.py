"""Requirement specs -> content hash, in the notebook; the cluster's environments.

:func:`resolve` turns ``--reqs`` strings, ``-r`` files, local wheels, local project folders
and ``--files`` into a plain dict (an *env spec*, :mod:`jupyter_remote.wire.envspec`) that
carries the bytes of every local file, so workers on other hosts get them. Its hash covers
the normalized requirement text, the contents of every referenced local file and the pip
options.

On the workers, :mod:`jupyter_remote.worker.envstore` builds each spec's environment once per
host, and :mod:`jupyter_remote.worker.envexec` runs calls in a process of it.
:func:`cluster_envs` and :func:`prune_cluster` manage the environments of a whole cluster
from the notebook (:func:`merge_envs` is the one listing the Jupyter server shows too).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping
from typing import Any

from jupyter_remote import config
from jupyter_remote.core import gitreqs
from jupyter_remote.exceptions import EnvironmentBuildError
from jupyter_remote.wire.envspec import describe

_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "build", "dist", ".ipynb_checkpoints",
              ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "node_modules"}


# -- client side: specs --------------------------------------------------------------------
def resolve(
    reqs: list[str] | str | None = None,
    requirements_file: str | None = None,
    files: list[str] | str | None = None,
    *,
    base: str | None = None,
    pip_options: list[str] | str | None = None,
    repo: tuple[str, ...] | None = None,
) -> dict | None:
    """The env spec of a call, or ``None`` when it has no requirements and no files.

    Parameters
    ----------
    reqs
        pip requirement strings (``"pkg>=1.2"``), paths of local wheels, sdists and project
        folders (relative to ``base``, default the current directory), or ``"-r FILE"``.
    requirements_file
        A requirements file; its lines (and nested ``-r`` files, and local paths in it,
        relative to the file) are read here, on the client.
    files
        Files and folders to place in the call's working directory on the worker.
    pip_options
        Extra ``pip install`` options; default ``jupyter-remote.pip-options``.
    repo
        ``(url, ref[, commit])`` of the call's function when it comes from git: ``repo:PATH``
        requirements name files in it. ``git+URL@REF`` requirements are pinned to the commit
        the ref names now (:mod:`jupyter_remote.core.gitreqs`).
    """
    base = os.path.abspath(base or os.getcwd())
    options = _options(pip_options)
    items = _items([reqs] if isinstance(reqs, str) else list(reqs or ()), requirements_file,
                   base, options)
    if isinstance(files, str):
        files = [files]
    if not items and not files:
        return None
    pins = gitreqs.Pins(repo)
    requirements, args, local = _arguments(items, pins)
    shipped = _pack_files(list(files), base) if files else None
    digest = hashlib.sha256()
    digest.update(json.dumps([args, options]).encode())
    for entry in local:
        digest.update(f"\0{entry['name']}\0{entry['sha']}".encode())
    repo_files = pins.spec()
    if repo_files:  # repo:PATH files: what they hold is fixed by the repository's commit
        digest.update(f"\0repo\0{repo_files['url']}\0{repo_files['commit']}".encode())
    reqs_hash = digest.hexdigest()
    return {
        "requirements": requirements,
        "args": args,
        "local": local,
        "repo": repo_files,
        "pip_options": options,
        "reqs_hash": reqs_hash if items else None,
        "files": shipped,
        "hash": hashlib.sha256(
            f"{reqs_hash}\0{shipped['sha'] if shipped else ''}".encode()
        ).hexdigest()[:16],
    }


def _arguments(items: list[tuple[str, str]],
               pins: gitreqs.Pins) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The requirements as written, the installer's arguments for them (git pinned to a
    commit, local wheels/projects as ``{local:N}``) and those local entries."""
    requirements: list[str] = []
    args: list[str] = []
    local: list[dict[str, Any]] = []
    for text, where in items:
        requirements.append(text)
        pinned = pins.arg(text)
        if pinned is not None:  # git: at the commit its ref names now
            args.append(pinned)
            continue
        entry = _local_entry(text, where)
        if entry is None:
            args.append(text)
        else:
            args.append(f"{{local:{len(local)}}}")
            local.append(entry)
    return requirements, args, local


def _options(pip_options: list[str] | str | None) -> list[str]:
    """The pip options of a call: as given, else ``jupyter-remote.pip-options``."""
    if pip_options is None:
        pip_options = config.get("pip-options") or []
    if isinstance(pip_options, str):
        import shlex

        pip_options = shlex.split(pip_options)
    return [str(o) for o in pip_options]


def _items(reqs: list[str], requirements_file: str | None, base: str,
           options: list[str]) -> list[tuple[str, str]]:
    """``(requirement text, the folder it is relative to)`` of every requirement, with the
    lines of requirements files read (their option lines join ``options``)."""
    items: list[tuple[str, str]] = []
    for r in reqs:
        r = r.strip() if r else ""
        if r.startswith(("-r ", "--requirement ")):  # a requirements file among the specs
            items += _read_requirements(os.path.join(base, r.split(None, 1)[1]), options, set())
        elif r:
            items.append((r, base))
    if requirements_file:
        items += _read_requirements(os.path.join(base, requirements_file), options, set())
    return items


def _read_requirements(path: str, options: list[str], seen: set) -> list[tuple[str, str]]:
    path = os.path.abspath(path)
    if path in seen:
        return []
    seen.add(path)
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise FileNotFoundError(
            f"requirements file {path!r} cannot be read ({exc.strerror}); -r takes a path "
            "relative to the notebook's folder"
        ) from None
    where = os.path.dirname(path)
    out: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ", "--requirement=")):
            nested = line.split("=", 1)[1] if "=" in line.split()[0] else line.split(None, 1)[1]
            out += _read_requirements(os.path.join(where, nested.strip()), options, seen)
        elif line.startswith("-"):
            options.extend(line.split())
        else:
            out.append((line, where))
    return out


_file_cache: dict[str, tuple[tuple, dict]] = {}


def _local_entry(text: str, where: str) -> dict | None:
    """A local wheel/sdist/project named by ``text``, with its bytes; None for a requirement."""
    looks_local = text.startswith((".", "/", "~")) or text.endswith((".whl", ".tar.gz", ".zip"))
    path = os.path.abspath(os.path.join(where, os.path.expanduser(text)))
    if not os.path.exists(path):
        if looks_local and not any(c in text for c in "=<>!~;@["):
            raise FileNotFoundError(
                f"requirement {text!r} looks like a local path, but {path} does not exist"
            )
        return None
    if os.path.isdir(path):
        if not any(os.path.exists(os.path.join(path, f)) for f in ("pyproject.toml", "setup.py", "setup.cfg")):
            raise ValueError(
                f"requirement {text!r} is a folder without pyproject.toml or setup.py: "
                "pass a Python project folder, a wheel, or use --files for data"
            )
        data, sha = _tar([path], os.path.dirname(path))
        return {"name": os.path.basename(path), "kind": "project", "data": data, "sha": sha}
    st = os.stat(path)
    signature = (st.st_size, st.st_mtime_ns, st.st_ino)
    cached = _file_cache.get(path)
    if cached and cached[0] == signature:
        return cached[1]
    with open(path, "rb") as f:
        data = f.read()
    entry = {"name": os.path.basename(path), "kind": "file", "data": data,
             "sha": hashlib.sha256(data).hexdigest()}
    _file_cache[path] = (signature, entry)
    return entry


def _pack_files(paths: list[str], base: str) -> dict:
    full = [os.path.abspath(os.path.join(base, os.path.expanduser(p))) for p in paths]
    missing = [p for p, f in zip(paths, full) if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(
            f"--files: {', '.join(map(repr, missing))} not found (paths are relative to {base})"
        )
    data, sha = _tar(full, None)
    return {"names": [os.path.basename(f.rstrip(os.sep)) for f in full], "data": data, "sha": sha}


def _tar(paths: list[str], _parent: str | None) -> tuple[bytes, str]:
    """A gzipped tar of ``paths`` (each under its base name) and a hash of names + contents."""
    buf = io.BytesIO()
    digest = hashlib.sha256()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in paths:
            top = os.path.basename(path.rstrip(os.sep))
            for full, arc in _walk(path, top):
                with open(full, "rb") as f:
                    content = f.read()
                digest.update(f"\0{arc}\0{len(content)}\0".encode())
                digest.update(content)
                info = tarfile.TarInfo(arc)
                info.size = len(content)
                info.mode = os.stat(full).st_mode & 0o777
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue(), digest.hexdigest()


def _walk(path: str, top: str):
    if os.path.isfile(path):
        yield path, top
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        rel = os.path.relpath(dirpath, path)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            yield os.path.join(dirpath, name), os.path.normpath(os.path.join(top, rel, name))


INLINE_LIMIT = 64 * 1024  # local files above this travel as scattered data, once per cluster
_scattered: dict[tuple[str, str], Any] = {}  # (client id, sha) -> future: keeps the data alive


def detach(spec: dict, client) -> tuple[dict, list]:
    """Replace the big local files of ``spec`` by references to data scattered to the cluster.

    Returns the spec to ship and the futures it refers to (task dependencies, in the order of
    the spec's ``blob`` indices): a big wheel then crosses the network once per cluster (and
    per worker that needs it), not inside every task through the scheduler.
    """
    futures: list = []

    def ref(part: dict) -> dict:
        if part is None or part.get("data") is None or len(part["data"]) <= INLINE_LIMIT:
            return part
        key = (client.id, part["sha"])
        future = _scattered.get(key)
        if future is None or future.status != "finished":
            [future] = client.scatter([part["data"]], hash=False)
            _scattered[key] = future
        futures.append(future)
        return {**part, "data": None, "blob": len(futures) - 1}

    local = [ref(entry) for entry in spec["local"]]
    files = ref(spec["files"])
    if not futures:
        return spec, []
    return {**spec, "local": local, "files": files}, futures


# -- client side: the cluster's environments -----------------------------------------------
def cluster_envs(cluster: Any) -> list[dict[str, Any]]:
    """The environments on ``cluster``'s hosts, one row per hash (see :func:`merge_envs`)."""
    from jupyter_remote.worker import envstore

    return merge_envs(cluster.client.run(envstore.list_envs, on_error="return"))


def merge_envs(replies: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per hash from each worker's ``envstore.list_envs()`` (failures skipped).

    Each row: ``hash``, ``requirements``, ``hosts`` (sorted), ``size`` (bytes on the largest
    host), ``last_used`` (latest, epoch seconds), ``built``, ``in_use`` (on any host); most
    recently used first.
    """
    rows: dict[str, dict[str, Any]] = {}
    for records in replies.values():
        if isinstance(records, BaseException):
            continue  # a worker without jupyter_remote's store: nothing to show for it
        for record in records:
            row = rows.setdefault(str(record["hash"]), {
                "hash": str(record["hash"]),
                "requirements": [str(r) for r in record.get("requirements") or []],
                "hosts": [], "size": 0, "last_used": 0.0, "built": record.get("built"),
                "in_use": False,
            })
            if str(record.get("host")) not in row["hosts"]:
                row["hosts"].append(str(record.get("host")))
            row["size"] = max(row["size"], int(record.get("size") or 0))
            row["last_used"] = max(row["last_used"], float(record.get("last_used") or 0))
            row["in_use"] = row["in_use"] or bool(record.get("in_use"))
    for row in rows.values():
        row["hosts"].sort()
    return sorted(rows.values(), key=lambda r: -r["last_used"])


def prune_cluster(cluster: Any) -> list[str]:
    """Remove the environments no call uses on ``cluster``'s hosts; the hashes removed.

    Idle environment processes (no running call, no cell outputs waiting in them) are
    closed first on every worker, so what they held counts as unused; only then does each
    worker remove (workers of one host share the environments' folder: a process another
    worker had not closed yet would keep an environment that is unused a moment later).
    """
    from jupyter_remote.worker import envexec

    cluster.client.run(envexec.close_idle, on_error="return")
    replies = cluster.client.run(envexec.prune_here, on_error="return")
    removed: set[str] = set()
    for got in replies.values():
        if not isinstance(got, BaseException):
            removed.update(got)
    return sorted(removed)


__all__ = ["EnvironmentBuildError", "cluster_envs", "describe", "detach", "merge_envs",
           "prune_cluster", "resolve"]
