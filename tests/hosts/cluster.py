"""A Dask cluster on the simulated hosts of :mod:`tests.hosts.network`: the scheduler in one
namespace, each worker in its own with its own HOME, TMPDIR, XDG folders, environment root
and working directory (its "disk"), started as a user would (``python -m distributed.cli.*``)
with the suite's hermetic environment (tests/hermetic.py) plus its own home.

The scheduler drops a silent worker after ``WORKER_TTL`` (the knobs are Dask's own, set as
``DASK_DISTRIBUTED__...`` variables), so a cut link is noticed in seconds. Every process is started in a session of its own and ended
by its process group's id, also when a test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.hosts.network import Network

# How fast the scheduler gives up on a silent host: it checks every WORKER_TTL and drops a
# worker not heard from for that long, after a restart attempt through the worker's nanny
# that fails within CONNECT_TIMEOUT when the host is cut off (Dask's defaults, 5 minutes and
# 30 s, let a cut host hold its calls for minutes).
WORKER_TTL = "5s"
CONNECT_TIMEOUT = "3s"
PORT = 8786


class Host:
    """One worker host: its namespace, address, folders and worker process."""

    def __init__(self, name: str, address: str, root: Path):
        self.name = name
        self.address = address
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env_root(self) -> Path:
        return self.root / "envs"

    def folders(self) -> dict[str, str]:
        """The host's own disk, through the variables everything on it reads."""
        home = self.root / "home"
        paths = {
            "HOME": home, "TMPDIR": self.root / "tmp", "XDG_CACHE_HOME": home / ".cache",
            "XDG_CONFIG_HOME": home / ".config", "XDG_DATA_HOME": home / ".local" / "share",
            "DASK_JUPYTER_REMOTE__ENVIRONMENTS__ROOT": self.env_root,
            "PIP_CACHE_DIR": home / ".cache" / "pip", "UV_CACHE_DIR": home / ".cache" / "uv",
        }
        for path in paths.values():
            Path(path).mkdir(parents=True, exist_ok=True)
        (self.root / "work").mkdir(exist_ok=True)
        return {k: str(v) for k, v in paths.items()}


class HostCluster:
    """The scheduler host and worker hosts; ``close`` stops every process it started."""

    def __init__(self, network: Network, root: Path, workers: int = 2, log_dir: Path | None = None):
        self.network = network
        self.root = root
        self.log_dir = log_dir or root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.scheduler_ip = network.add_host("s")
        self.address = f"tcp://{self.scheduler_ip}:{PORT}"
        self.hosts: dict[str, Host] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._scheduler = self._start("s", [
            "-m", "distributed.cli.dask_scheduler", "--host", self.scheduler_ip,
            "--port", str(PORT), "--no-dashboard"], self._env({}), root)
        for i in range(1, workers + 1):
            name = f"w{i}"
            self.hosts[name] = Host(name, network.add_host(name), root / name)
            self.start_worker(name)

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)  # the suite's hermetic pins, inherited
        env.update({
            "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": WORKER_TTL,
            "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": CONNECT_TIMEOUT,
            "DASK_LOGGING__DISTRIBUTED": "info",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env

    def _start(self, host: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{host}.log", "ab")  # noqa: SIM115 (the process keeps it)
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.network.namespace(host), sys.executable, *args],
            env=env, cwd=str(cwd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._processes.append(process)
        return process

    def start_worker(self, name: str) -> None:
        host = self.hosts[name]
        host.process = self._start(name, [
            "-m", "distributed.cli.dask_worker", self.address, "--host", host.address,
            "--name", name, "--nthreads", "2", "--nworkers", "1", "--no-dashboard",
            "--resources", f"{name}=1", "--local-directory", str(host.root / "tmp")],
            self._env(host.folders()), host.root / "work")

    def kill_worker(self, name: str) -> None:
        """SIGKILL the host's worker (nanny and worker: its whole process group)."""
        host = self.hosts[name]
        if host.process is not None:
            _kill_group(host.process)
            host.process = None

    def wipe(self, name: str) -> None:
        """An empty disk: the host's folders are removed (then made again on start)."""
        shutil.rmtree(self.hosts[name].root, ignore_errors=True)

    def log(self, host: str) -> str:
        path = self.log_dir / f"{host}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for process in reversed(self._processes):
            _kill_group(process)
        self._processes.clear()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
