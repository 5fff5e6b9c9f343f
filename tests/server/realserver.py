"""A real ``jupyter server`` / ``jupyter lab`` process on loopback with a token, for the tests
that need what pytest-jupyter cannot give: a restart of the server, and a browser."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterProcess:
    """``jupyter {app}`` in its own directories, sharing ``registry_path`` with the test.

    Everything else comes from the run's pinned environment (tests/hermetic.py): HOME, Dask
    config, the Jupyter data folder with the suite's kernelspecs, the environment root.
    """

    def __init__(self, tmp_path, registry_path: str, app: str = "server"):
        self.app = app
        self.token = uuid.uuid4().hex
        self.port = free_port()
        self.root = tmp_path / "root"
        self.root.mkdir(exist_ok=True)
        home = tmp_path / "jupyter"
        self.log = tmp_path / f"{app}.log"
        self.env = {
            **os.environ,
            "DASK_JUPYTER_REMOTE__REGISTRY_PATH": registry_path,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "IPYTHONDIR": str(home / "ipython"),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> JupyterProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", self.app, "--no-browser",
                "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.root),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited: {self.log.read_text()[-3000:]}")
            try:
                if self.request("GET", "api/status")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"jupyter {self.app} did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def request(self, method: str, path: str, body=None, token: str | None = None):
        """(status, JSON) of ``method /path`` with the token (or ``token``)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/{path}", data=data, method=method)
        req.add_header("Authorization", f"token {self.token if token is None else token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as err:
            text = err.read().decode()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text


def kill_launchers(fn: str) -> None:
    """Stop whatever cluster processes a failed test left behind."""
    try:
        with open(fn) as f:
            entries = json.load(f).get("clusters", {})
    except (OSError, ValueError):
        return
    for entry in entries.values():
        pid = entry.get("pid")
        if entry.get("source") == "server" and isinstance(pid, int) and pid != os.getpid():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
