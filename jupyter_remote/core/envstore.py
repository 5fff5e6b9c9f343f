"""The environments built on one host: build once, under a lock, atomically; list; prune.

A spec (see :func:`jupyter_remote.core.environments.resolve`) becomes a virtual environment
under the environments root (``jupyter-remote.environments.root``), keyed by the spec's hash
plus this worker's Python version, platform and interpreter. It is built once per host and
key: under a file lock, into a temporary folder renamed into place on success; a failed build
leaves nothing. The venv is layered over the worker's own packages by a ``.pth`` file
processed after its own site-packages, so what the env pins shadows what the worker has.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid

from jupyter_remote import config
from jupyter_remote.core.environments import EnvironmentBuildError, describe

RECORD = "jupyter-remote-env.json"
PIP_LOG = "pip.log"


# -- worker side: building -----------------------------------------------------------------
def root() -> str:
    """The folder holding this host's environments (``jupyter-remote.environments.root``)."""
    configured = config.get("environments.root")
    if configured:
        return os.path.abspath(os.path.expanduser(str(configured)))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "jupyter_remote", "envs")


def env_key(spec: dict) -> str:
    """The spec's requirements hash for this host's interpreter and platform."""
    tag = "\0".join([
        spec["reqs_hash"] or "", sys.implementation.name, "{}.{}".format(*sys.version_info[:2]),
        sys.platform, platform.machine(), os.path.realpath(sys.executable),
    ])
    return hashlib.sha256(tag.encode()).hexdigest()[:16]


class Env:
    """A built environment (or the worker's own interpreter, for files without requirements)."""

    def __init__(self, key: str, path: str | None, python: str, record: dict):
        self.key = key
        self.path = path
        self.python = python
        self.record = record


_ready: dict[str, Env] = {}
_ready_lock = threading.Lock()


def ensure(spec: dict, on_line=None, on_building=None) -> Env:
    """The environment of ``spec`` on this host, built now if it is not there yet.

    ``on_building()`` runs once if this call builds (or waits for another call building
    it); ``on_line(text)`` receives pip's output lines as they come.
    """
    if not spec.get("reqs_hash"):
        return Env("base", None, sys.executable, {"requirements": []})
    key = env_key(spec)
    env = _ready.get(key)
    if env is not None and os.path.exists(env.python):
        _touch(env.path)
        return env
    base = root()
    path = os.path.join(base, key)
    record_path = os.path.join(path, RECORD)
    if not os.path.exists(record_path):
        if on_building is not None:
            on_building()
        os.makedirs(os.path.join(base, ".locks"), exist_ok=True)
        with _file_lock(os.path.join(base, ".locks", f"{key}.lock")):
            if not os.path.exists(record_path):  # another process may have built it meanwhile
                for stale in os.listdir(base):  # left by a worker killed mid-build
                    if stale.startswith(f".build-{key}-"):
                        shutil.rmtree(os.path.join(base, stale), ignore_errors=True)
                _build(spec, key, base, on_line)
    with open(record_path) as f:
        record = json.load(f)
    env = Env(key, path, os.path.join(path, "bin", "python"), record)
    with _ready_lock:
        _ready[key] = env
    _touch(path)
    return env


@contextlib.contextmanager
def _file_lock(path: str):
    import fcntl

    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _touch(path: str | None) -> None:
    """Mark an env used now (the ``last used`` of ``%remote envs`` and of the size cap)."""
    if path:
        marker = os.path.join(path, ".last-used")
        try:
            if time.time() - os.stat(marker).st_mtime < 30:
                return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            with open(marker, "w") as f:
                f.write(str(time.time()))


def _build(spec: dict, key: str, base: str, on_line) -> None:
    tmp = os.path.join(base, f".build-{key}-{uuid.uuid4().hex[:8]}")
    log_lines: list[str] = []

    def emit(text: str) -> None:
        log_lines.append(text)
        if on_line is not None:
            on_line(text)

    started = time.time()
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp], check=True,
                       capture_output=True, text=True)
        python = os.path.join(tmp, "bin", "python")
        site, *own = subprocess.run(
            [python, "-c", "import sys, sysconfig; print(sysconfig.get_paths()['purelib']); "
             "print(*sys.path, sep='\\n')"],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()
        _layer_over_worker(site, own)
        args = _materialize(spec, os.path.join(tmp, ".sources"))
        code = _run_logged([*installer(python), *spec["pip_options"], *args], emit)
        with open(os.path.join(tmp, PIP_LOG), "w") as f:
            f.write("\n".join(log_lines) + "\n")
        if code != 0:
            raise EnvironmentBuildError(_failure_message(spec, code, log_lines))
        shutil.rmtree(os.path.join(tmp, ".sources"), ignore_errors=True)
        record = {
            "hash": key,
            "spec_hash": spec["reqs_hash"],
            "requirements": spec["requirements"],
            "pip_options": spec["pip_options"],
            "python": "{}.{}.{}".format(*sys.version_info[:3]),
            "base_python": os.path.realpath(sys.executable),
            "host": socket.gethostname(),
            "built": time.time(),
            "build_seconds": round(time.time() - started, 3),
            "build_id": uuid.uuid4().hex,
            "pip_log": PIP_LOG,
        }
        with open(os.path.join(tmp, RECORD), "w") as f:
            json.dump(record, f, indent=1)
        final = os.path.join(base, key)
        _fix_scripts(tmp, final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _enforce_cap(base, keep=key)


def _find_uv() -> str | None:
    """uv on PATH, or beside this interpreter (``pip install uv`` into the worker's venv,
    whose bin folder need not be on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    return shutil.which("uv") or (beside if os.access(beside, os.X_OK) else None)


def installer_name() -> str:
    """"uv" or "pip": what builds environments on this worker (labels its log lines)."""
    return "uv" if os.path.basename(installer(sys.executable)[0]) == "uv" else "pip"


def installer(python: str) -> list[str]:
    """The install command for ``python``'s environment, up to its options and requirements:
    ``uv pip install`` when uv is installed (``jupyter-remote.environments.installer: auto``),
    else this worker's pip, run for that interpreter."""
    choice = config.get("environments.installer", "auto") or "auto"
    uv = _find_uv() if choice in ("auto", "uv") else None
    if choice == "uv" and uv is None:
        raise EnvironmentBuildError(
            "jupyter-remote.environments.installer is 'uv', but uv is not installed on this "
            "worker: install it, or set the installer to 'auto' or 'pip'"
        )
    if uv is not None:
        return [uv, "pip", "install", "--python", python]
    return [sys.executable, "-m", "pip", "--python", python, "install",
            "--disable-pip-version-check", "--no-input"]


def _layer_over_worker(site: str, own: list[str]) -> None:
    """Put the worker's own import path after the env's site-packages (a ``.pth`` file).

    ``own`` is the env's python's own path (its standard library): left out.
    """
    skip = {os.path.realpath(p) for p in own if p}
    paths: list[str] = []
    for p in sys.path:
        if not p or not os.path.isdir(p):
            continue
        real = os.path.realpath(p)
        if real not in skip and real not in paths:
            paths.append(real)
    # One line of code (site.addpackage exec's it); addsitedir skips paths already there.
    line = f"import site; list(map(site.addsitedir, {paths!r}))\n"
    # 'zz': after any .pth the env's own packages bring, so they are set up first.
    with open(os.path.join(site, "zz_jupyter_remote_worker.pth"), "w") as f:
        f.write(line)


def _materialize(spec: dict, where: str) -> list[str]:
    """pip's arguments, with the shipped local wheels/projects written under ``where``."""
    os.makedirs(where, exist_ok=True)
    paths = []
    for i, entry in enumerate(spec["local"]):
        folder = os.path.join(where, str(i))
        os.makedirs(folder)
        if entry["kind"] == "project":
            with tarfile.open(fileobj=io.BytesIO(entry["data"]), mode="r:gz") as tar:
                tar.extractall(folder, filter="data")
        else:
            with open(os.path.join(folder, entry["name"]), "wb") as f:
                f.write(entry["data"])
        paths.append(os.path.join(folder, entry["name"]))
    out = []
    for arg in spec["args"]:
        if arg.startswith("{local:"):
            out.append(paths[int(arg[7:-1])])
        else:
            out.append(arg)
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _run_logged(cmd: list[str], emit) -> int:
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for line in proc.stdout:
        emit(_ANSI.sub("", line.rstrip("\n")))
    return proc.wait()


def _failure_message(spec: dict, code: int, lines: list[str]) -> str:
    errors = [ln for ln in lines if ln.lstrip().lower().startswith(("error", "×", "╰─>"))]
    tail = lines[-25:]
    shown = tail if len("\n".join(tail)) < 4000 else tail[-8:]
    text = "\n".join(shown)
    first = errors[0].strip() if errors else (lines[-1] if lines else "")
    return (
        f"installing requirements [{describe(spec)}] on {socket.gethostname()} failed "
        f"(pip exited with {code}): {first}\n--- pip output (last lines) ---\n{text}\n"
        "Nothing was kept; fix the requirement (or jupyter-remote.pip-options, e.g. "
        "--find-links for a wheelhouse) and run again."
    )


def _fix_scripts(tmp: str, final: str) -> None:
    """Console scripts name their venv's python by path: point them at the final folder."""
    bindir = os.path.join(tmp, "bin")
    old, new = f"#!{tmp}/".encode(), f"#!{final}/".encode()
    for name in os.listdir(bindir):
        path = os.path.join(bindir, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            head = f.read(len(old))
            if head != old:
                continue
            data = head + f.read()
        with open(path, "wb") as f:
            f.write(new + data[len(old):])


# -- worker side: files --------------------------------------------------------------------
def workdir(spec: dict) -> str | None:
    """The folder holding the spec's shipped files on this host (unpacked once)."""
    files = spec.get("files")
    if not files:
        return None
    base = os.path.join(root(), ".files")
    path = os.path.join(base, files["sha"][:16])
    if os.path.isdir(path):
        return path
    os.makedirs(base, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tarfile.open(fileobj=io.BytesIO(files["data"]), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    try:
        os.rename(tmp, path)
    except OSError:  # another worker won the race: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return path


# -- worker side: listing and pruning ------------------------------------------------------
def _size(path: str) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _last_used(path: str) -> float:
    try:
        return os.stat(os.path.join(path, ".last-used")).st_mtime
    except OSError:
        return os.stat(path).st_mtime


def in_use(path: str) -> bool:
    """Whether a live env process on this host holds ``path`` (a shared lock on it)."""
    import fcntl

    marker = os.path.join(path, ".in-use")
    try:
        f = open(marker, "a+")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def list_envs() -> list[dict]:
    """The environments on this host, with size, last use and whether one is in use."""
    base = root()
    out: list[dict] = []
    if not os.path.isdir(base):
        return out
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        record_path = os.path.join(path, RECORD)
        if name.startswith(".") or not os.path.isfile(record_path):
            continue
        try:
            with open(record_path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        record.update(path=path, size=_size(path), last_used=_last_used(path), in_use=in_use(path),
                      host=socket.gethostname())
        out.append(record)
    return out


def remove(path: str) -> bool:
    """Delete one environment unless an env process uses it; True if it is gone."""
    if in_use(path):
        return False
    key = os.path.basename(path)
    trash = os.path.join(os.path.dirname(path), f".trash-{key}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)  # gone for new calls at once; deleted at leisure
    except OSError:
        return False
    with _ready_lock:
        _ready.pop(key, None)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune(keys: list[str] | None = None) -> list[str]:
    """Remove this host's environments that no env process uses (only ``keys``, if given)."""
    removed = []
    for record in list_envs():
        if keys is not None and record["hash"] not in keys:
            continue
        if not record["in_use"] and remove(record["path"]):
            removed.append(record["hash"])
    return removed


def _enforce_cap(base: str, keep: str = "") -> None:
    """Remove the oldest-unused environments while the total is above the size cap."""
    cap = config.get("environments.max-size")
    if not cap:
        return
    import dask.utils

    limit = dask.utils.parse_bytes(cap) if isinstance(cap, str) else int(cap)
    envs = sorted(list_envs(), key=lambda r: r["last_used"])
    total = sum(r["size"] for r in envs)
    for record in envs:
        if total <= limit:
            break
        if record["hash"] != keep and not record["in_use"] and remove(record["path"]):
            total -= record["size"]
