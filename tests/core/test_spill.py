"""The kernel's log memory budget: floods past ``jupyter-remote.logs.max-bytes`` spill to
files, replays still show every line in order, and the cell is told once."""

from __future__ import annotations

import gc
import os

import dask

import jupyter_remote
from jupyter_remote.core import spill
from jupyter_remote.core.logs import LogLines


def flood(n):
    for i in range(n):
        print(f"line {i:06d} " + "x" * 40)
    return n


def test_a_flood_past_the_budget_spills_and_replays_whole(local, run, capsys):
    cap = 300_000
    with dask.config.set({"jupyter-remote.logs.max-bytes": cap}):
        seen: list = []
        fn = jupyter_remote.function(flood, local)
        assert fn(20_000) == 20_000
        log = local.router.calls()[-1]
        log.listen(lambda _log, lines: seen.extend(lines), replay=True)
        assert log.lines.spilled > 0, "nothing was spilled: the test proves nothing"
        assert spill.BUDGET.held <= cap + max(log.lines._sizes), spill.BUDGET.held
        texts = [line["text"] for line in log.lines if line["stream"] == "stdout"]
        assert len(texts) == 20_000
        assert texts[0].startswith("line 000000") and texts[-1].startswith("line 019999")
        assert texts == sorted(texts)  # in order, disk part first
        notes = [line["text"] for line in seen if line["stream"] == "log"]
        assert len(notes) == 1 and f"%remote logs {log.call}" in notes[0]
        # `%remote logs CALL` replays all of it, the spilled part included.
        capsys.readouterr()
        run(f"%remote logs {log.call}")
        out = capsys.readouterr().out
        assert "line 000000" in out and "line 019999" in out


def test_a_dropped_log_gives_its_bytes_back_and_removes_its_file():
    with dask.config.set({"jupyter-remote.logs.max-bytes": 10_000}):
        before = spill.BUDGET.held
        lines = LogLines(name="test")
        for i in range(50):
            lines.extend([{"stream": "stdout", "text": f"{i} " + "y" * 200, "t": 0.0}] * 10)
        assert lines.spilled > 0 and lines._file is not None
        path = lines._file.path
        assert os.path.exists(path)
        assert [line["text"].split()[0] for line in lines][::10] == [str(i) for i in range(50)]
        del lines
        gc.collect()
        assert not os.path.exists(path)
        assert spill.BUDGET.held <= before
