"""Simulated hosts on this machine: a network namespace per host, joined by veth pairs to a
bridge in the root namespace (where the notebook, the test process, runs).

Every name made here starts with ``jrh`` and carries the PID of the test process that made
it, so a run removes what it made (also on failure) and, at start, what an earlier run whose
process is gone left behind, never anything of another live run. Addresses are in
``10.213.X.0/24`` (X from the PID), assigned only to interfaces made here: traffic goes only
to loopback and to those addresses; no route, NAT or forwarding is added.

Faults: :meth:`Network.cut` sets a host's link down (its processes keep running, unreachable,
as behind a pulled cable); :meth:`Network.delay` adds latency with ``tc netem``.
"""

from __future__ import annotations

import os
import re
import subprocess

PREFIX = "jrh"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """An ``ip``/``tc`` command; bounded in time (a stuck command fails the test)."""
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def can_make_namespaces() -> str | None:
    """None if namespaces can be made here, else why not (the skip reason)."""
    if os.geteuid() != 0:
        return ("tests/hosts needs root to make network namespaces (ip netns); run as root, "
                "as .ci/run does")
    try:
        run("ip", "netns", "list")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns` does not work here: {exc}"
    return None


def remove_stale() -> None:
    """Remove namespaces and links of earlier runs whose test process is gone."""
    def stale(name: str) -> bool:
        m = re.match(rf"{PREFIX}(\d+)", name)
        return bool(m) and not os.path.exists(f"/proc/{m.group(1)}")

    for line in run("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if stale(name):
            _kill_pids_in(name)
            run("ip", "netns", "delete", name, check=False)
    for line in run("ip", "-o", "link", "show").stdout.splitlines():
        m = re.match(r"\d+: ([^:@]+)", line)
        if m and stale(m.group(1)):
            run("ip", "link", "delete", m.group(1), check=False)


def _kill_pids_in(ns: str) -> None:
    """Kill the processes left in a namespace this suite made (by their PIDs)."""
    for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass


class Network:
    """A bridge and the hosts joined to it; :meth:`close` removes all of it."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.tag = f"{PREFIX}{pid % 100000}"
        self.subnet = f"10.213.{20 + pid % 200}"
        self.bridge = f"{self.tag}br"
        self.hosts: dict[str, str] = {}  # host name -> its address
        self._made: list[tuple[str, str]] = []  # ("netns"|"link", name), in order
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")

    def namespace(self, host: str) -> str:
        return f"{self.tag}{host}"

    def link(self, host: str) -> str:
        return f"{self.tag}{host}v"  # the root side of the host's veth

    def add_host(self, host: str) -> str:
        """A namespace with one interface on the bridge; its address."""
        ns, link = self.namespace(host), self.link(host)
        address = f"{self.subnet}.{10 + len(self.hosts)}"
        run("ip", "netns", "add", ns)
        self._made.append(("netns", ns))
        run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._made.append(("link", link))
        run("ip", "link", "set", link, "master", self.bridge)
        run("ip", "link", "set", link, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        self.hosts[host] = address
        return address

    def cut(self, host: str) -> None:
        run("ip", "link", "set", self.link(host), "down")

    def mend(self, host: str) -> None:
        run("ip", "link", "set", self.link(host), "up")

    def has_netem(self) -> bool:
        """Whether this kernel has ``tc netem`` (``sch_netem``); tried on the bridge."""
        done = run("tc", "qdisc", "replace", "dev", self.bridge, "root", "netem", "delay", "0ms",
                   check=False)
        run("tc", "qdisc", "delete", "dev", self.bridge, "root", check=False)
        return done.returncode == 0

    def delay(self, host: str, ms: int) -> None:
        """Add ``ms`` of latency each way on the host's link."""
        run("tc", "qdisc", "replace", "dev", self.link(host), "root", "netem", "delay", f"{ms}ms")
        run("ip", "netns", "exec", self.namespace(host), "tc", "qdisc", "replace", "dev", "eth0",
            "root", "netem", "delay", f"{ms}ms")

    def close(self) -> None:
        for kind, name in reversed(self._made):
            if kind == "netns":
                _kill_pids_in(name)
                run("ip", "netns", "delete", name, check=False)
            else:
                run("ip", "link", "delete", name, check=False)
        self._made.clear()
