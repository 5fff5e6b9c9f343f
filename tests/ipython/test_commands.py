"""`%remote` subcommands in a real InteractiveShell on the embedded cluster: a few rows of a
ref cut on the worker, Cancel of finished work, and the text form of the tables."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from jupyter_remote.worker import preview


def test_head_and_sample_are_cut_on_the_worker(shell, run):
    # The last item cannot be pickled at all: the whole list can never leave the worker,
    # so rows that arrive prove the cut happened there.
    run("%%remote\nimport threading\nrows = list(range(100_000)) + [threading.Lock()]\n")
    rows = shell.user_ns["rows"]
    assert shell.run_line_magic("remote", "get rows --head 3") == [0, 1, 2]
    assert rows.head(0) == []
    picked = rows.sample(5, seed=7)
    assert len(picked) == 5 and picked == sorted(picked) and rows.sample(5, seed=7) == picked
    assert shell.user_ns["rows"] is rows  # a preview never replaces the ref
    # Last: a failed download can leave Dask marking the key failed, which a cut before it
    # would then report (seen once in a fresh-clone run).
    with pytest.raises(Exception):  # noqa: B017 (any failure to serialise will do)
        rows.get()


def test_head_of_an_array_and_a_dict(shell, run):
    run("%%remote\nimport numpy as np\ngrid = np.arange(1000).reshape(100, 10)\n"
        "table = {k: k * k for k in range(50)}\n")
    head = shell.user_ns["grid"].head(2)
    assert head.shape == (2, 10) and head[1, 0] == 10
    assert shell.user_ns["grid"].sample(3, seed=1).shape == (3, 10)
    assert shell.run_line_magic("remote", "get table --head 2") == {0: 0, 1: 1}
    both = shell.run_line_magic("remote", "get grid table --sample 1")
    assert set(both) == {"grid", "table"} and len(both["table"]) == 1


def test_rows_of_a_value_without_rows_is_a_usage_error(shell, run):
    run("%%remote\nsingle = 42\n")
    with pytest.raises(UsageError, match="cannot take rows of a builtins.int"):
        shell.run_line_magic("remote", "get single --head 2")
    with pytest.raises(UsageError, match="not allowed with argument"):
        shell.run_line_magic("remote", "get single --head 2 --sample 2")


def test_cancel_of_finished_work_says_there_is_nothing_to_stop(shell, run, capsys):
    run("%%remote\nkept = [1, 2, 3]\n")
    shell.user_ns["kept"].get()
    capsys.readouterr()
    shell.run_line_magic("remote", "cancel kept")
    out = capsys.readouterr().out
    assert "nothing to stop for kept: already finished" in out and "cancelled" not in out
    assert shell.user_ns["kept"].get() == [1, 2, 3]  # and the value is still there


def test_tables_print_as_text_in_a_terminal(shell, run, capsys):
    run("%%remote\nshown = bytes(3000)\n")
    capsys.readouterr()
    shell.run_line_magic("remote", "refs")
    out = capsys.readouterr().out
    assert "shown" in out and "2.93 kiB" in out and "<table" not in out


def test_preview_text():
    assert preview.preview(list(range(1000))) == "[0, 1, 2, 3, 4]\n(first 5 of 1,000)"
    assert preview.preview(42) is None and preview.preview("text") is None
    assert preview.preview([1, 2]) == "[1, 2]"


def test_functions_lists_saved_versions(shell, run, capsys, tmp_path):
    import re

    import dask

    with dask.config.set({"jupyter-remote.store.url": str(tmp_path / "store")}):
        shell.run_line_magic("remote", "functions")
        assert "no saved functions in" in capsys.readouterr().out
        run("import jupyter_remote\ndef prep(x):\n    return x\n"
            "jupyter_remote.function(prep, name='prep').save()\n"
            "jupyter_remote.function(prep, name='prep', reqs=['pkg==1']).save()\n")
        capsys.readouterr()
        shell.run_line_magic("remote", "functions")
        out = capsys.readouterr().out
        assert re.search(r"prep@1 +\d+ s ago +- +-", out), out
        assert re.search(r"prep@2 \(prep\) +\d+ s ago +- +pkg==1", out), out
        shell.run_line_magic("remote", "functions --latest")
        out = capsys.readouterr().out
        assert "prep@2" in out and "prep@1" not in out


def test_free_and_shutdown(shell, run, capsys, registry_path):
    import os
    import time

    from jupyter_remote.core import registry

    run("%%remote\nfreed_a = 1\nfreed_b = 2\n")
    capsys.readouterr()
    shell.run_line_magic("remote", "free freed_a freed_b")
    assert "freed 2 remote value(s): freed_a, freed_b" in capsys.readouterr().out
    assert "freed_a" not in shell.user_ns and "freed_b" not in shell.user_ns
    with pytest.raises(UsageError, match="'freed_a' is not bound"):
        shell.run_line_magic("remote", "free freed_a")
    registry.change("sidebars", lambda old: {
        "address": "tcp://127.0.0.1:1", "source": "server", "pid": os.getpid(),
        "created": time.time(), "status": "running"})
    with pytest.raises(UsageError, match="belongs to the Remote clusters sidebar"):
        shell.run_line_magic("remote", "shutdown sidebars")


def test_head_and_sample_of_a_dataframe(shell, run):
    run("%%remote\nimport pandas as pd\nframe = pd.DataFrame({'a': range(1000), 'b': range(1000)})\n")
    frame = shell.user_ns["frame"]
    head = frame.head(3)
    assert list(head["a"]) == [0, 1, 2] and list(head.columns) == ["a", "b"]
    picked = frame.sample(4, seed=3)
    assert len(picked) == 4 and picked.equals(frame.sample(4, seed=3))
    assert list(shell.run_line_magic("remote", "get frame --head 2")["b"]) == [0, 1]
