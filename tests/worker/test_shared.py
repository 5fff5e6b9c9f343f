"""A split's shared output (jupyter_remote.worker.shared) on a tmpfs of a few MB that this
test mounts, so that running out of room happens for real: the piece falls back to a copy,
never crashes its worker (a write through a map would be a SIGBUS), and the paste is right."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from jupyter_remote.wire import pieces
from jupyter_remote.worker import shared


@pytest.fixture
def shm(tmp_path, monkeypatch):
    """A 4 MiB tmpfs as the workers' /dev/shm (root mounts it; the tests run as root)."""
    where = tmp_path / "shm"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], check=True)
    monkeypatch.setattr(shared, "DIR", str(where))
    monkeypatch.setattr(shared, "ROOM", 2**18)  # the 64 MiB to spare, scaled down
    monkeypatch.setattr(shared, "MIN_RUN", 0)  # small arrays, every layout
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _write(name, x, axis, index, parts, fn=lambda a: a):
    total = pieces.length_along(x, axis)
    start, stop = pieces.bounds(total, index, parts)
    return shared.write(name, fn(pieces.cut(x, axis, index, parts)), axis, start, stop, total)


def test_pieces_written_in_any_order_map_as_the_whole(shm):
    x = np.arange(6 * 7 * 5, dtype="f4").reshape(6, 7, 5)
    for axis in (0, 1, -1):
        name = f"order{axis % 3}"
        parts = [_write(name, x, axis, index, 3) for index in (2, 0, 1)]
        assert all(isinstance(part, shared.Written) for part in parts)
        whole = shared.whole([parts[1], parts[2], parts[0]])
        assert np.array_equal(whole, x) and whole.dtype == x.dtype
        assert not os.listdir(shm)  # the paste unlinked it; the map keeps the memory
        whole += 1  # writable, and still there
        assert whole[0, 0, 0] == 1


def test_no_room_means_a_copy_and_no_file_left(shm):
    x = np.ones((2, 2**19))  # 8 MiB: more than the tmpfs
    assert _write("big", x, -1, 0, 2) is None
    assert not os.listdir(shm)


def test_dev_shm_filling_up_during_the_writes_is_a_copy_not_a_crash(shm, monkeypatch):
    monkeypatch.setattr(shared, "ROOM", 0)
    x = np.arange(2 * 196608, dtype="f8").reshape(2, 196608)  # 3 MiB
    first = _write("full", x, -1, 0, 2)
    assert isinstance(first, shared.Written)
    (shm / "other").write_bytes(b"\0" * 2 * 2**20)  # 2 of the 2.5 MiB left: 1.5 no longer fit
    second = pieces.cut(x, -1, 1, 2)
    assert _write("full", x, -1, 1, 2) is None  # ENOSPC from pwrite: the caller keeps it
    assert np.array_equal(shared.whole([first, second]), x)
    assert sorted(os.listdir(shm)) == ["other"]


def test_a_write_cut_short_by_a_full_dev_shm_is_a_copy(shm, monkeypatch):
    """One block of 1.5 MiB where 0.5 MiB is left: the kernel writes what fits and says
    so; the rest must not be left as zeros."""
    monkeypatch.setattr(shared, "ROOM", 0)
    x = np.arange(2 * 196608, dtype="f8")
    first = _write("short", x, 0, 0, 2)
    (shm / "other").write_bytes(b"\0" * 2 * 2**20)
    assert _write("short", x, 0, 1, 2) is None
    assert np.array_equal(shared.whole([first, pieces.cut(x, 0, 1, 2)]), x)


def test_a_piece_of_another_dtype_or_length_is_pasted_by_copy(shm):
    x = np.arange(40.0).reshape(4, 10)
    first = _write("mixed", x, -1, 0, 2)
    as_int = _write("mixed", x, -1, 1, 2, fn=lambda a: a.astype("i8"))
    shorter = _write("mixed", x, -1, 1, 2, fn=lambda a: a[:, :2])
    assert isinstance(first, shared.Written) and as_int is None and shorter is None
    second = pieces.cut(x, -1, 1, 2).astype("i8")
    assert np.array_equal(shared.whole([first, second]), np.concatenate([x[:, :5], second], 1))
    assert _write("objects", np.array([[None, 1]]), -1, 0, 2) is None
    assert not os.listdir(shm)


def test_a_paste_that_cannot_find_the_pieces_says_what_to_do(shm):
    x = np.arange(10.0).reshape(1, 10)
    parts = [_write("lost", x, -1, index, 2) for index in range(2)]
    os.unlink(shared.path_of("lost"))  # as seen from another host, or after a lost paste
    with pytest.raises(RuntimeError, match="split.shared-memory to false"):
        shared.whole(parts)


def _segments(shm):
    return sorted(f for f in os.listdir(shm) if not f.endswith(shared.GONE))


def test_a_discarded_split_is_never_written_again(shm):
    x = np.arange(10.0).reshape(1, 10)
    assert isinstance(_write("late", x, -1, 0, 2), shared.Written)
    shared.discard("late")
    assert _write("late", x, -1, 1, 2) is None  # a piece that ends after a cancel
    assert not _segments(shm)


def test_a_late_piece_in_another_process_sees_the_discard(shm, monkeypatch):
    """A piece of a split with requirements runs in the environment's process, where the
    worker's discard (and its ``_gone``) does not reach: the tombstone on the filesystem
    does, before it writes and after."""
    x = np.arange(10.0).reshape(1, 10)
    shared.discard("env")
    monkeypatch.setattr(shared, "_gone", set())  # the environment's process knew nothing
    assert _write("env", x, -1, 1, 2) is None
    assert not _segments(shm)
    # discarded while it wrote: what it wrote goes
    real_claim = shared._claim

    def claim_then_discarded(*args):
        inode = real_claim(*args)
        with open(shared.path_of("race") + shared.GONE, "w"):
            pass
        return inode

    monkeypatch.setattr(shared, "_claim", claim_then_discarded)
    assert _write("race", x, -1, 0, 2) is None
    assert not _segments(shm)
    # a put for a discarded split is not made either
    assert shared.put("env-in-1", np.ones((4, 1024))) is None
    assert not _segments(shm)


def test_tombstones_go_an_hour_later_and_a_pasted_split_leaves_none(shm):
    x = np.arange(10.0).reshape(1, 10)
    parts = [_write("ok", x, -1, i, 2) for i in range(2)]
    assert np.array_equal(shared.whole(parts), x)
    assert os.listdir(shm) == []  # a paste: every piece has ended, no tombstone needed
    shared.discard("old")
    old = shared.path_of("old") + shared.GONE
    os.utime(old, (0, 0))
    shared.discard("new")
    assert sorted(os.listdir(shm)) == [os.path.basename(shared.path_of("new") + shared.GONE)]


def test_only_plain_numbers_in_long_runs_are_shared(shm, monkeypatch):
    """Dates, records and foreign byte order would not read back as written; runs of a
    few bytes (a tall array cut by columns) cost more in writes than the paste's copy."""
    dates = np.arange(0, 10, dtype="datetime64[D]").reshape(1, 10)
    records = np.zeros((1, 10), dtype=[("a", "i4"), ("b", "f8")])
    swapped = np.arange(10, dtype=">i4").reshape(1, 10)
    for value in (dates, records, swapped):
        assert _write("odd", value, -1, 0, 2) is None
        assert shared.put("odd-in-1", value) is None
    monkeypatch.setattr(shared, "MIN_RUN", 4096)
    tall = np.ones((1000, 20))  # 10 columns of a row: 80 bytes a run
    assert _write("tall", tall, -1, 0, 2) is None
    assert shared.put("tall-in-1", pieces.cut(tall, -1, 1, 2)) is None
    assert isinstance(_write("rows", tall, 0, 0, 2), shared.Written)  # one run
    shared.discard("rows")
    assert not _segments(shm)


def test_a_cut_run_again_never_truncates_a_put_piece(shm):
    x = np.arange(40.0).reshape(4, 10)
    placed = shared.put("again-in-1", x[2:])
    taken = shared.take(placed)
    assert shared.put("again-in-1", x[2:]) is None  # sent as usual instead
    assert np.array_equal(taken, x[2:])
    shared.discard("again")
    assert not _segments(shm)


def test_a_put_piece_maps_as_it_was_and_goes_with_its_split(shm):
    x = np.arange(4 * 6 * 5, dtype="i4").reshape(4, 6, 5)
    for axis in (0, 1, 2):
        piece = pieces.cut(x, axis, 1, 3)  # a strided view, but for axis 0
        placed = shared.put(f"call{axis}-in-1", piece)
        taken = shared.take(placed)
        assert np.array_equal(taken, piece) and taken.dtype == piece.dtype
        taken[...] = -1  # copy-on-write: neither the file nor the value change
        assert np.array_equal(shared.take(placed), piece)
        shared.discard(f"call{axis}")  # the split's end takes its pieces with it
    assert not _segments(shm)
    assert shared.put("call0-in-2", pieces.cut(x, 0, 2, 3)) is None  # discarded: never again
    assert shared.put("big-in-1", np.ones((2, 2**19))) is None  # no room: sent as usual
    assert shared.put("list-in-1", [1, 2]) is None
    assert not _segments(shm)


def test_identity_tells_two_dev_shm_apart(shm, monkeypatch):
    """What the notebook compares across workers before sharing: another tmpfs (another
    container's /dev/shm) gives another identity, the same one the same."""
    mine = shared.identity()
    assert shared.identity() == mine
    monkeypatch.setattr(shared, "DIR", "/dev/shm")
    assert shared.identity() != mine
