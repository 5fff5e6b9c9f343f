"""A real IPython kernel driven through jupyter_client, with its iopub stream recorded.

One thread drains iopub into ``messages`` (each stamped with the time it was received) and
keeps the state of every widget model up to date from ``comm_open``/``comm_msg``, the way a
frontend would. Tests then ask which widget a cell displayed and what it showed when.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable

from tests import hermetic

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class Kernel:
    def __init__(self, env: dict[str, str] | None = None, cwd: str | None = None):
        self.km = hermetic.kernel_manager()  # the suite's kernelspec, never a user's python3
        self.km.start_kernel(env={**os.environ, **(env or {})}, cwd=cwd)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: list[tuple[float, dict]] = []
        self.models: dict[str, dict] = {}  # comm id -> current widget state
        self.updates: dict[str, list[tuple[float, dict]]] = {}  # comm id -> (t, state delta)
        self._cond = threading.Condition()
        self._stop = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- iopub -----------------------------------------------------------------------------
    def _read(self) -> None:
        while not self._stop:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:
                if self._stop:
                    return
                raise
            now = time.monotonic()
            with self._cond:
                kind = msg["msg_type"]
                content = msg["content"]
                if kind == "comm_open":
                    state = dict(content.get("data", {}).get("state", {}))
                    self.models[content["comm_id"]] = state
                elif kind == "comm_msg":
                    data = content.get("data", {})
                    if data.get("method") == "update":
                        delta = data.get("state", {})
                        self.models.setdefault(content["comm_id"], {}).update(delta)
                        self.updates.setdefault(content["comm_id"], []).append((now, delta))
                self.messages.append((now, msg))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], object], timeout: float = 30.0, what: str = ""):
        """Wait until ``predicate()`` (called under the lock) is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
                self._cond.wait(left)

    # -- shell -----------------------------------------------------------------------------
    def submit(self, code: str) -> str:
        # stop_on_error=False: after a failing cell, ipykernel aborts the requests that reach
        # it before its "stop aborting" marker does, so a test's next cell, sent as soon as
        # the failure's reply came, could come back 'aborted' without running.
        return self.kc.execute(code, store_history=True, stop_on_error=False)

    def reply(self, msg_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no execute_reply within {timeout:g} s")
            msg = self.kc.get_shell_msg(timeout=left)
            if msg["parent_header"].get("msg_id") == msg_id:
                # Outputs travel on iopub: the cell's are all in once its 'idle' status is.
                self.wait_for(lambda: self.replied(msg_id), timeout, f"idle after {msg_id}")
                return msg

    def execute(self, code: str, timeout: float = 60.0) -> dict:
        """Run a cell; fail the test if it raised. Returns the reply."""
        msg_id = self.submit(code)
        reply = self.reply(msg_id, timeout)
        if reply["content"]["status"] != "ok":
            raise AssertionError(
                f"cell failed: {reply['content'].get('ename')}: {reply['content'].get('evalue')}\n"
                + self.text(msg_id)
            )
        return reply

    def replied(self, msg_id: str) -> bool:
        """Whether the kernel went idle after ``msg_id`` (its reply is sent just before)."""
        return any(
            m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
            and m["parent_header"].get("msg_id") == msg_id
            for _, m in self.messages
        )

    def of(self, msg_id: str, kind: str) -> list[dict]:
        with self._cond:
            return [m for _, m in self.messages if m["msg_type"] == kind
                    and m["parent_header"].get("msg_id") == msg_id]

    def text(self, msg_id: str) -> str:
        out = []
        for m in self.of(msg_id, "stream"):
            out.append(m["content"]["text"])
        for m in self.of(msg_id, "error"):
            out.append("\n".join(m["content"]["traceback"]))
        for m in self.of(msg_id, "execute_result"):
            out.append(m["content"]["data"].get("text/plain", ""))
        return "".join(out)

    # -- widgets ---------------------------------------------------------------------------
    def call_widget(self, msg_id: str, timeout: float = 30.0) -> CallWidgetModels:
        """The ids of the parts of the call widget that cell ``msg_id`` displayed."""

        def find():
            for _, m in self.messages:
                if m["msg_type"] != "display_data" or m["parent_header"].get("msg_id") != msg_id:
                    continue
                model = m["content"]["data"].get(WIDGET_MIME, {}).get("model_id")
                state = self.models.get(model, {})
                if "jupyter-remote-call" in state.get("_dom_classes", ()):
                    return model
            return None

        root = self.wait_for(find, timeout, f"the call widget of {msg_id}")
        return CallWidgetModels(self, root)

    def close(self) -> None:
        self._stop = True
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        self._reader.join(timeout=2)


def _ref(value: str) -> str:
    return value.removeprefix("IPY_MODEL_")


class CallWidgetModels:
    """The comm ids of one CallWidget's parts, from its VBox's children."""

    def __init__(self, kernel: Kernel, root: str):
        self.kernel = kernel
        self.root = root
        children = [_ref(c) for c in kernel.models[root]["children"]]
        header = [_ref(c) for c in kernel.models[children[0]]["children"]]
        self.status, self.cancel, self.message = header
        self.progress, self.progress_text = [_ref(c) for c in kernel.models[children[1]]["children"]]
        self.hidden = children[2]
        self.lines = children[3]

    def value(self, part: str) -> str:
        with self.kernel._cond:
            return self.kernel.models.get(getattr(self, part), {}).get("value", "")

    def updates(self, part: str) -> list[tuple[float, dict]]:
        with self.kernel._cond:
            return list(self.kernel.updates.get(getattr(self, part), []))

    def wait_value(self, part: str, text: str, timeout: float = 30.0) -> float:
        """Wait until the ``part`` widget shows ``text``; return when that update arrived."""
        kernel = self.kernel
        comm = getattr(self, part)

        def seen():
            if text in kernel.models.get(comm, {}).get("value", ""):
                for t, delta in kernel.updates.get(comm, []):
                    if text in str(delta.get("value", "")):
                        return t
                return time.monotonic()
            return None

        return kernel.wait_for(seen, timeout, f"{text!r} in the {part} widget")
