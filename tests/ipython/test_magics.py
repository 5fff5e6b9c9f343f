"""%%remote and %remote in a real IPython InteractiveShell, on the embedded cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from IPython.core.error import UsageError

from jupyter_remote.core.functions import RemoteFunction
from jupyter_remote.core.refs import RemoteRef


def test_cell_binds_refs_and_shows_the_trailing_expression(shell, run):
    out = run("%%remote\nimport os\npid = os.getpid()\nvalue = base * 2\nvalue + 1\n", base=20)
    assert isinstance(shell.user_ns["value"], RemoteRef)
    assert "os" not in shell.user_ns or not isinstance(shell.user_ns["os"], RemoteRef)
    assert shell.user_ns["value"].get() == 40
    assert shell.user_ns["pid"].get() != os.getpid()
    assert repr(out) == "41"


def test_refs_flow_into_the_next_cell(shell, run):
    run("%%remote\nimport numpy as np\nmatrix = np.ones((100, 100))\n")
    run("%%remote\ntotal = matrix.sum()\n")
    assert shell.user_ns["total"].get() == 10_000.0


def test_functions_defined_remotely_are_callable(shell, run):
    run("%%remote\ndef cube(x):\n    return x ** 3\n")
    cube = shell.user_ns["cube"]
    assert isinstance(cube, RemoteFunction)
    assert cube(3) == 27
    assert cube.map([1, 2]) == [1, 8]
    run("%%remote\nc = cube(4)\n")
    assert shell.user_ns["c"].get() == 64


def test_notebook_functions_and_classes_travel_by_value(shell, run):
    shell.run_cell("class Point:\n    def __init__(self, x):\n        self.x = x\n"
                   "def make(x):\n    return Point(x)\n")
    run("%%remote\np = make(5)\nx = p.x\n")
    assert shell.user_ns["x"].get() == 5
    assert shell.user_ns["p"].get().x == 5


def test_local_modules_travel_by_value(shell, run, tmp_path, monkeypatch):
    (tmp_path / "helpers_next_to_notebook.py").write_text("def scale(v):\n    return v * 100\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    shell.run_cell("import helpers_next_to_notebook")
    run("%%remote\nscaled = helpers_next_to_notebook.scale(3)\n")
    assert shell.user_ns["scaled"].get() == 300


def test_out_get_and_no_wait(shell, run):
    run("%%remote --out keep\nkeep = 1\ndrop = 2\n")
    assert isinstance(shell.user_ns["keep"], RemoteRef)
    assert "drop" not in shell.user_ns
    run("%%remote --get\nplain = [1, 2, 3]\n")
    assert shell.user_ns["plain"] == [1, 2, 3]
    run("%%remote --no-wait\nimport time\ntime.sleep(0.5)\nlater = 9\n")
    assert shell.user_ns["later"].get(timeout=30) == 9


def test_remote_prints_appear_in_the_cell(run, capsys):
    run("%%remote\nprint('hello from the worker')\nimport sys\nprint('to stderr', file=sys.stderr)\n")
    captured = capsys.readouterr()
    assert "hello from the worker" in captured.out
    assert "to stderr" in captured.err


def test_cache_reuses_an_identical_cell(shell, run, capsys, tmp_path):
    import dask

    with dask.config.set({"jupyter-remote.store.url": str(tmp_path / "store")}):
        _cache_reuses_an_identical_cell(shell, run, capsys)


def _cache_reuses_an_identical_cell(shell, run, capsys):
    cell = "%%remote --cache\nimport time\nprint('computing')\nmade = (time.time_ns(), size)\nmade[1]\n"
    first = run(cell, size=10)
    value = shell.user_ns["made"].get()
    assert "computing" in capsys.readouterr().out
    again = run(cell, size=10)
    out, err = capsys.readouterr()
    assert "computing" not in out  # it did not run again
    reused = re.search(r"\[remote\] (?:cell In\[\d+\]|remote cell) reused the result of call (\w+).*"
                       r"`%remote logs \1`", err)
    assert reused, err
    assert shell.user_ns["made"].get() == value
    run(f"%remote logs {reused.group(1)}")  # the earlier run's output, as promised
    assert "computing" in capsys.readouterr().out
    assert repr(first) == repr(again) == "10"  # the trailing expression shows again
    run(cell, size=11)
    assert "computing" in capsys.readouterr().out
    run("%remote cache")
    listed = capsys.readouterr().out
    assert re.search(r"2 stored result\(s\) in .*store", listed), listed
    assert re.search(r"cell +import time +size=11", listed), listed  # most recent first
    assert re.search(r"cell +import time +size=10 +\d+ B", listed), listed
    run("%remote cache --clear")
    assert re.search(r"removed 2 stored result", capsys.readouterr().out)
    run("%remote cache")
    assert "no stored results" in capsys.readouterr().out
    run(cell, size=10)  # forgotten: it runs again
    assert "computing" in capsys.readouterr().out


def test_remote_exception_fails_the_cell_with_the_cells_lines(shell):
    result = shell.run_cell("%%remote\nx = 1\ny = x / 0\n")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    text = str(result.error_in_exec.__cause__)
    assert "line 3" in text and "y = x / 0" in text  # line 1 is the %%remote line


@pytest.mark.parametrize(
    "line, message",
    [
        ("%%remote --bogus", "unrecognized arguments"),
        ("%%remote --timeout -1", "--timeout must be a positive"),
        ("%%remote --timeout soon", "invalid float value"),
        ("%%remote --resources GPU", "KEY=N"),
        ("%%remote --get --no-wait", "cannot be combined"),
        ("%%remote no-such-cluster", "not known; known clusters: local"),
        ("%%remote --reqs ./no-such-1.0-py3-none-any.whl", "does not exist"),
        ("%%remote -r no-such-requirements.txt", "cannot be read"),
        ("%%remote --files no-such-data.csv", "not found"),
    ],
)
def test_bad_arguments_are_usage_errors(shell, line, message):
    result = shell.run_cell(f"{line}\nx = 1\n")
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert message in str(result.error_in_exec)


def test_empty_cell_and_unknown_names(shell):
    from jupyter_remote.exceptions import EmptyCellError, UnknownInputError

    assert isinstance(shell.run_cell("%%remote\n\n").error_in_exec, EmptyCellError)
    error = shell.run_cell("%%remote\nz = not_defined_anywhere\n").error_in_exec
    assert isinstance(error, UnknownInputError) and "not_defined_anywhere" in str(error)


def test_timeout_raises_timeout_error(shell):
    result = shell.run_cell("%%remote --timeout 1\nimport time\nwhile True:\n    time.sleep(0.05)\n")
    assert isinstance(result.error_in_exec, TimeoutError)
    assert "did not finish within 1 s" in str(result.error_in_exec)


def test_help_shows_usage(shell):
    doc = shell.find_cell_magic("remote").__doc__
    assert "--no-wait" in doc and "--timeout" in doc and "CLUSTER" in doc.upper()
    assert "%remote clusters" in shell.find_line_magic("remote").__doc__


def test_line_magic_subcommands(shell, run, capsys):
    run("%%remote\nlisted = list(range(10))\n")
    shell.run_line_magic("remote", "refs")
    out = capsys.readouterr().out
    assert "listed" in out and "list" in out and "tcp://" in out
    shell.run_line_magic("remote", "clusters")
    out = capsys.readouterr().out
    assert "local" in out and "running" in out
    shell.run_line_magic("remote", "get listed")
    assert shell.user_ns["listed"] == list(range(10))
    shell.run_line_magic("remote", "logs")
    listing = capsys.readouterr().out
    # (a test shell keeps no history, so its cells have no In[n] number)
    assert "call" in listing and ("cell In[" in listing or "remote cell" in listing)
    assert "done" in listing


def test_logs_replays_a_call(shell, run, capsys):
    run("%%remote\nfor i in range(3):\n    print('line', i)\n")
    capsys.readouterr()
    shell.run_line_magic("remote", "logs last")
    out = capsys.readouterr().out
    assert "line 0" in out and "line 2" in out


def test_publish_and_fetch(shell, run, capsys):
    run("%%remote\nshared_value = {'a': 1}\n")
    shell.run_line_magic("remote", "publish shared_value --as test-shared")
    shell.run_line_magic("remote", "fetch test-shared --as fetched")
    assert shell.user_ns["fetched"].get() == {"a": 1}
    assert shell.user_ns["fetched"].info["type"] == "dict"
    with pytest.raises(UsageError, match="nothing is published"):
        shell.run_line_magic("remote", "fetch never-published")


def test_cancel_and_use_and_connect_errors(shell, run, capsys):
    run("%%remote --no-wait\nimport time\nfor _ in range(400):\n    time.sleep(0.05)\nslow = 1\n")
    shell.run_line_magic("remote", "cancel slow")
    assert "cancelled" in capsys.readouterr().out
    assert shell.user_ns["slow"].status == "cancelled"
    with pytest.raises(UsageError, match="not a remote ref"):
        shell.run_line_magic("remote", "get nothing_here")
    with pytest.raises(UsageError, match="not known"):
        shell.run_line_magic("remote", "use nowhere")
    with pytest.raises(UsageError, match="unknown subcommand"):
        shell.run_line_magic("remote", "frobnicate")
    with pytest.raises(UsageError, match="not a scheduler address"):
        shell.run_line_magic("remote", "connect localhost")


def test_import_and_load_ext_are_cheap():
    code = (
        "import sys\n"
        "import jupyter_remote\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'jupyter_remote')\n"
        "heavy = [m for m in ('distributed', 'ipywidgets', 'jupyter_server', 'tornado') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_published_refs_outlive_the_client_that_made_them(shell, run, capsys):
    """Across a kernel restart: a new client of the same cluster fetches what was shared."""
    from distributed import LocalCluster

    from jupyter_remote.core import clusters

    with LocalCluster(n_workers=1, processes=True, dashboard_address="127.0.0.1:0") as lc:
        shell.run_line_magic("remote", f"connect {lc.scheduler_address} --name lasting")
        run("%%remote lasting\nresult_table = {'rows': 3}\n")
        shell.run_line_magic("remote", "publish result_table --as team-table")
        clusters.cluster("lasting").close()  # the kernel goes away, its client with it
        del shell.user_ns["result_table"]
        shell.run_line_magic("remote", f"connect {lc.scheduler_address} --name lasting")
        shell.run_line_magic("remote", "fetch team-table --as table --cluster lasting")
        assert shell.user_ns["table"].get() == {"rows": 3}
        clusters.cluster("lasting").close()
