"""A map's batch on the worker (``kinds.run_batch``), run in this process with a sink that
keeps what it sends: the items run in strides consumed by ``list.extend``, so errors must
land on the item that raised, every line must carry the item that wrote it, and a batch cut short by its
time must return exactly the items it ran."""

from __future__ import annotations

import time

from jupyter_remote.exceptions import RemoteTaskError
from jupyter_remote.wire.events import unpack
from jupyter_remote.wire.failures import unpack_exception
from jupyter_remote.worker import capture, kinds


def _sink() -> tuple[capture.Sink, list, list]:
    events: list = []
    scheduled: list = []  # flushes run after the batch, as the worker's loop would
    return capture.Sink("call-1", events.append, scheduled.append), events, scheduled


def _lines(sink: capture.Sink, events: list, scheduled: list) -> list:
    sink.close()
    for flush in scheduled:
        flush()
    return [line for event in events if "packed" in event for line in unpack(event["packed"])]


def _batch(fn, args, *, start=0, star=False, seconds=None) -> dict:
    return {"kind": "batch", "fn": fn, "args": args, "start": start, "star": star, "batch": 3,
            "seconds": seconds}


def test_errors_stay_on_their_items_and_every_line_names_its_item():
    sink, events, scheduled = _sink()
    failing = {0, 1, 2, 777, 778, 2_048, 4_999}  # first, in a row, mid-stride, last

    def item(x):
        sink.write("stdout", f"item {x}\n")
        if x in failing:
            raise ValueError(f"bad {x}")
        return 2 * x

    result = kinds.run_batch(_batch(item, list(range(5_000)), start=100), sink)
    assert sorted(result.errors) == sorted(failing)
    assert all(b"bad" in result.errors[pos] for pos in failing)
    assert result.values == [None if x in failing else 2 * x for x in range(5_000)]
    lines = _lines(sink, events, scheduled)
    assert [(line["index"], line["text"]) for line in lines] == [
        (100 + x, f"item {x}") for x in range(5_000)]
    assert sink.index is None  # after the batch, lines are no map item's


def test_starmap_items_of_any_sequence():
    sink, events, scheduled = _sink()
    pairs = tuple((x, x + 1) for x in range(300))
    result = kinds.run_batch(_batch(lambda a, b: a * b, pairs, star=True), sink)
    assert result.values == [a * b for a, b in pairs] and result.errors == {}
    result = kinds.run_batch(_batch(lambda x: -x, range(10, 400, 7)), sink)
    assert result.values == [-x for x in range(10, 400, 7)]


def test_a_batch_out_of_time_returns_exactly_the_items_it_ran():
    sink, events, scheduled = _sink()
    ran: list[int] = []

    def slow(x):
        ran.append(x)
        time.sleep(0.01)
        if x % 4 == 1:
            raise KeyError(x)
        return x

    result = kinds.run_batch(_batch(slow, list(range(1_000)), seconds=0.1), sink)
    done = len(result.values)
    assert 0 < done < 1_000 and ran == list(range(done))
    assert result.values == [None if x % 4 == 1 else x for x in range(done)]
    assert sorted(result.errors) == [x for x in range(done) if x % 4 == 1]
    progress = [e for e in events if e.get("state") == "running"]
    assert progress[-1]["done"] == done and progress[-1]["failed"] == len(result.errors)


def test_an_item_raising_stopiteration_fails_that_item_only():
    """``map`` would take an item's StopIteration for the end of the items (the batch then
    ran that item again and again); it must fail that item, and a RuntimeError the function
    raises itself must stay one."""
    sink, events, scheduled = _sink()

    def item(x):
        if x == 3:
            return next(iter([]))  # StopIteration, as an empty iterator's next() raises
        if x == 5:
            raise RuntimeError("mine") from StopIteration()
        return x

    result = kinds.run_batch(_batch(item, list(range(8)), seconds=5), sink)
    assert result.values == [0, 1, 2, None, 4, None, 6, 7]
    assert sorted(result.errors) == [3, 5]
    assert type(unpack_exception(RemoteTaskError(result.errors[3]))) is StopIteration
    mine = unpack_exception(RemoteTaskError(result.errors[5]))
    assert type(mine) is RuntimeError and "mine" in str(mine)
