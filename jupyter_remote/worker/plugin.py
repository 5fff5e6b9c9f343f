"""The one worker plugin: what every worker needs before it runs a call of ours.

The notebook registers it when it connects to a cluster (``Client.register_plugin``); the
scheduler hands it to every worker that joins later, a restarted one included. On each
worker it

- routes stdout, stderr and log records to the sinks of the calls running there
  (:func:`jupyter_remote.worker.capture.install`), once, when the worker starts;
- drops a cell's kept values when the cell's task leaves the worker's memory: the worker
  keeps the cell's task while any ``take`` of it may still run (they depend on it); once it
  is released, takes that never ran (cancelled, or their refs dropped before they ran) never
  will, and their values would otherwise stay until the worker restarts;
- adds the handler that takes a map's batches straight from the notebook
  (:mod:`jupyter_remote.worker.lane`);
- closes the worker's environment processes when the worker closes.
"""

from __future__ import annotations

import re
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from jupyter_remote.wire import payload
from jupyter_remote.worker import capture, lane, state

NAME = "jupyter-remote"
_CELL_KEY = re.compile(r"^remote-cell-([0-9a-f]+)-\d+$")


class RemotePlugin(WorkerPlugin):
    """Output capture and cleanup of jupyter_remote's calls on one worker."""

    name = NAME
    idempotent = True  # a second notebook registering it changes nothing

    def setup(self, worker: Any) -> None:
        """When the worker starts (or when the plugin is registered on a running worker)."""
        capture.install()
        payload.register_sizeof()
        lane.install(worker)

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        """On every task transition: forget the values of a cell no take will collect."""
        # The worker forgets a task only once it no longer runs (a cancelled one first
        # ends, perhaps binding names anyway) and none of its takes can run.
        done_with = finish == "forgotten" or (start, finish) == ("memory", "released")
        if done_with and isinstance(key, str):
            match = _CELL_KEY.match(key)
            if match:
                state.drop(match.group(1))

    def teardown(self, worker: Any) -> None:
        """When the worker closes: its environment processes go with it."""
        lane.uninstall(worker)
        state.close()
