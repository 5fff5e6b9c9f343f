"""Building one environment: a venv layered over the worker's packages, then the installer.

:func:`build` makes the venv in a temporary folder next to its final place, installs the
spec's requirements with uv (when the worker has it, or as configured) or pip, writes the
build record and renames the folder into place: a failed build leaves nothing behind.
The caller (:func:`jupyter_remote.worker.envstore.ensure`) holds the host's lock for the key.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from jupyter_remote import config
from jupyter_remote.exceptions import EnvironmentBuildError
from jupyter_remote.wire.envspec import describe
from jupyter_remote.worker.context import current_worker

RECORD = "jupyter-remote-env.json"
PIP_LOG = "pip.log"


def build(spec: dict[str, Any], key: str, base: str,
          on_line: Callable[[str], None] | None) -> None:
    """Build ``spec``'s environment as ``base/key``; the installer's lines go to ``on_line``."""
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
            "scheduler": asking_scheduler(),  # the sidebar marks it on that cluster's card
        }
        with open(os.path.join(tmp, RECORD), "w") as f:
            json.dump(record, f, indent=1)
        final = os.path.join(base, key)
        _fix_scripts(tmp, final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def asking_scheduler() -> str | None:
    """The address of the scheduler of the worker building now (the cluster whose call asked
    for the build), or ``None`` outside a worker."""
    worker = current_worker()
    return str(worker.scheduler.address) if worker is not None else None


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


def _materialize(spec: dict[str, Any], where: str) -> list[str]:
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
        elif arg.startswith("{repo:"):
            out += ["-r", _repo_file(spec, arg[6:-1], where)]
        else:
            out.append(arg)
    return out


def _repo_file(spec: dict[str, Any], path: str, where: str) -> str:
    """A requirements file in the repository of a function from git (``repo:PATH``), from a
    checkout at the spec's commit under ``where`` (pip reads it, nested ``-r`` included)."""
    from jupyter_remote.worker import gitrepo

    repo = spec["repo"]
    what = f"{repo['url']}@{repo['ref']} (commit {repo['commit'][:12]})"
    try:
        root = gitrepo.checkout(repo["url"], repo["commit"], where)
    except gitrepo.GitError as exc:
        raise EnvironmentBuildError(f"repo:{path}: {exc}") from None
    full = os.path.join(root, path)
    if not os.path.isfile(full):
        raise EnvironmentBuildError(
            f"repo:{path}: there is no file {path!r} in {what}; repo:PATH names a "
            "requirements file inside the function's repository (such as "
            "repo:requirements.txt)"
        )
    return full


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _run_logged(cmd: list[str], emit: Callable[[str], None]) -> int:
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for line in proc.stdout:
        emit(_ANSI.sub("", line.rstrip("\n")))
    return proc.wait()


def _failure_message(spec: dict[str, Any], code: int, lines: list[str]) -> str:
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
