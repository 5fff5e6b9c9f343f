"""A TCP relay that adds latency: the fallback of ``tc netem`` on kernels built without it.

``tc qdisc ... netem`` needs the kernel's ``sch_netem``; where it is missing (this suite's
Firecracker VMs: "Specified qdisc kind is unknown"), a relay in the notebook's namespace
listens on the bridge address and forwards to the scheduler, holding every chunk for
``delay`` seconds in each direction, in order. Clients and workers that connect through it
see a slow link to the scheduler; the connections the scheduler opens to workers do not (a
qdisc would delay those too), which the tests using it accept and say.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time


class Relay:
    """``listen`` (host, port) -> ``target`` (host, port), ``delay`` seconds each way."""

    def __init__(self, listen_host: str, target: tuple[str, int], delay: float):
        self.target = target
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, args=(listen_host,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the latency relay did not start within 10 s")

    def _run(self, host: str) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._serve, host, 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), 10)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, data))
        finally:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
            writer.close()

    def close(self) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)
