"""Waiting on a call: nothing its log stream carried is lost, however early it came."""

from __future__ import annotations

import time

from jupyter_remote.core import calls


def early(n):
    for i in range(n):
        print("line", i)
    return n


def test_lines_that_arrive_before_the_wait_still_reach_it(local):
    # A fast call's first lines can reach the client before the code that submitted it
    # starts waiting (a map's first batch while the others are being submitted).
    call = calls.Call(local, "early()", "call")
    future = call.submit({"kind": "call", "fn": early, "args": (3,), "kwargs": {}})
    deadline = time.monotonic() + 30
    while len(call.log.lines) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(call.log.lines) == 3, "the call's lines never arrived"
    seen: list = []
    [value] = calls.wait(call, [], fetch=[future], on_lines=seen.extend)
    call.finish("done")
    assert value == 3
    assert [line["text"] for line in seen] == ["line 0", "line 1", "line 2"]

