"""``%%remote --reqs/-r/--files`` and ``%remote envs`` in a real InteractiveShell."""

from __future__ import annotations

import os

import pytest

from jupyter_remote.core import environments
from tests import wheelhouse

# Fixtures shared with the other environment tests.
house, installer = wheelhouse.house, wheelhouse.installer
env_root, envs_cluster = wheelhouse.env_root, wheelhouse.envs_cluster


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_two_cells_pin_two_versions_and_a_third_sees_the_workers_own(shell, run, envs_cluster, house, here):
    name = envs_cluster.name
    run(f"%%remote {name} --reqs jrtoy==1.0\nimport jrtoy\nold = jrtoy.VERSION\n")
    wheel = wheelhouse.wheel(str(here), "jrtoy", "2.0")
    run(f"%%remote {name} --reqs ./{os.path.basename(wheel)}\nimport jrtoy\nnew = jrtoy.VERSION\n")
    assert shell.user_ns["old"].get() == "1.0" and shell.user_ns["new"].get() == "2.0"
    with pytest.raises(ModuleNotFoundError, match="jrtoy"):
        run(f"%%remote {name}\nimport jrtoy\n")
    # A ref made before still reads fine afterwards: no worker was restarted.
    assert shell.user_ns["old"].get() == "1.0"


def test_requirements_file_and_files(shell, run, envs_cluster, here):
    (here / "requirements.txt").write_text("jrtoy==2.0\n")
    (here / "table.csv").write_text("x\n1\n")
    run(
        f"%%remote {envs_cluster.name} -r requirements.txt --files table.csv --get\n"
        "import jrtoy, jupyter_remote\n"
        "info = jupyter_remote.get_env()\n"
        "got = (jrtoy.VERSION, open('table.csv').read())\n"
    )
    assert shell.user_ns["got"] == ("2.0", "x\n1\n")
    info = shell.user_ns["info"]
    assert info["requirements"] == ["jrtoy==2.0"] and info["files"] == ["table.csv"]
    assert info["hash"] and os.path.isdir(info["path"])


def test_a_failed_install_fails_the_cell_with_pips_error(shell, envs_cluster, here):
    result = shell.run_cell(f"%%remote {envs_cluster.name} --reqs jrnowhere==9\nx = 1\n")
    assert isinstance(result.error_in_exec, environments.EnvironmentBuildError)
    assert "jrnowhere==9" in str(result.error_in_exec)


def test_remote_envs_lists_and_prunes(shell, run, envs_cluster, capsys):
    run(f"%%remote {envs_cluster.name} --reqs jrtoy==1.0\nimport jrtoy\n")
    capsys.readouterr()
    shell.run_line_magic("remote", f"envs {envs_cluster.name}")
    out = capsys.readouterr().out
    assert "jrtoy==1.0" in out and "hash" in out and "last used" in out
    shell.run_line_magic("remote", f"envs {envs_cluster.name} --prune")
    out = capsys.readouterr().out
    assert "removed" in out and "no requirement environments" in out


def test_a_function_defined_in_an_env_cell_runs_in_that_env(shell, run, envs_cluster, here):
    (here / "requirements.txt").write_text("jrtoy==1.0\n")
    run(
        f"%%remote {envs_cluster.name} -r requirements.txt\n"
        "import jrtoy\n"
        "def toy_version(suffix):\n"
        "    return jrtoy.VERSION + suffix\n"
    )
    assert shell.user_ns["toy_version"]("!") == "1.0!"
    assert shell.user_ns["toy_version"].map(["a", "b"]) == ["1.0a", "1.0b"]


def test_no_wait_cell_in_an_env_fills_its_refs_in(shell, run, envs_cluster):
    run(f"%%remote {envs_cluster.name} --no-wait --reqs jrtoy==2.0\nimport jrtoy\nlater = jrtoy.VERSION * 2\n")
    assert shell.user_ns["later"].get(timeout=60) == "2.02.0"
