"""Count the bytes this process receives over TCP, two independent ways.

1. ``TCP_INFO`` (Linux): ``tcpi_bytes_received`` of every TCP socket this process holds,
   read with ``getsockopt`` on a duplicate of each socket's fd (found with psutil).
   Sockets opened during the window count from zero; sockets closed during the window
   are reported (their bytes cannot be read any more).
2. Tornado: every ``IOStream.read_from_fd`` call (what distributed's TCP comm reads
   through) adds the bytes it returned to a counter.

Use :class:`Window` as a context manager around the code to measure.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

# struct tcp_info: tcpi_bytes_received is the u64 at offset 128 (Linux >= 4.1).
_BYTES_RECEIVED_OFFSET = 128
_TCP_INFO = getattr(socket, "TCP_INFO", 11)

_tornado_bytes = 0
_tornado_lock = threading.Lock()
_patched = False


def install_tornado_counter() -> None:
    """Wrap ``tornado.iostream.IOStream.read_from_fd`` to count received bytes."""
    global _patched
    if _patched:
        return
    from tornado.iostream import IOStream

    original = IOStream.read_from_fd

    def read_from_fd(self, buf):
        global _tornado_bytes
        n = original(self, buf)
        if n:
            with _tornado_lock:
                _tornado_bytes += n
        return n

    IOStream.read_from_fd = read_from_fd
    _patched = True


def tornado_bytes() -> int:
    return _tornado_bytes


def tcp_received() -> dict[tuple, int]:
    """``{(fd, laddr, raddr): bytes received}`` for every TCP socket of this process."""
    import psutil

    out: dict[tuple, int] = {}
    for conn in psutil.Process(os.getpid()).net_connections(kind="tcp"):
        if conn.fd < 0 or not conn.raddr:  # listening sockets receive nothing
            continue
        try:
            family = socket.AF_INET6 if ":" in conn.laddr.ip else socket.AF_INET
            sock = socket.fromfd(conn.fd, family, socket.SOCK_STREAM)  # a dup: ours to close
        except OSError:
            continue
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 256)
        except OSError:
            continue
        finally:
            sock.close()
        if len(info) >= _BYTES_RECEIVED_OFFSET + 8:
            (n,) = struct.unpack_from("Q", info, _BYTES_RECEIVED_OFFSET)
            out[(conn.fd, tuple(conn.laddr), tuple(conn.raddr))] = n
    return out


class Window:
    """Bytes received by this process between ``__enter__`` and ``__exit__``."""

    def __enter__(self) -> Window:
        self._before = tcp_received()
        self._tornado = tornado_bytes()
        return self

    def __exit__(self, *exc) -> None:
        after = tcp_received()
        self.tornado = tornado_bytes() - self._tornado
        self.tcp = sum(n - self._before.get(key, 0) for key, n in after.items())
        self.new_sockets = sum(1 for key in after if key not in self._before)
        self.closed_sockets = sum(1 for key in self._before if key not in after)

    def as_dict(self) -> dict:
        return {
            "tcp_info_bytes": self.tcp,
            "tornado_bytes": self.tornado,
            "new_sockets": self.new_sockets,
            "closed_sockets": self.closed_sockets,
        }
