"""Requirement environments on a real LocalCluster with worker processes.

Wheels come from a wheelhouse the tests write themselves; pip installs with ``--no-index
--find-links`` into an environments root under a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import dask
import pytest

import jupyter_remote
from jupyter_remote.core import cells, environments, versions, views
from jupyter_remote.worker import envbuild, envstore
from tests import wheelhouse
from tests.conftest import IGNORES_INTERRUPT, wait_until

# Fixtures shared with the other environment tests.
house, installer = wheelhouse.house, wheelhouse.installer
env_root, envs_cluster = wheelhouse.env_root, wheelhouse.envs_cluster


def toy_version():
    import jrtoy

    return jrtoy.VERSION


def report():
    import sys

    import jrtoy

    return {"version": jrtoy.VERSION, "python": sys.executable, "env": jupyter_remote.get_env(),
            "imported": sorted(m for m in sys.modules if m.startswith("jrtoy"))}


def record_of(env: dict) -> dict:
    with open(os.path.join(env["path"], envbuild.RECORD)) as f:
        return json.load(f)


def test_side_by_side_versions_and_the_workers_own(envs_cluster, house):
    one = jupyter_remote.function(report, envs_cluster, reqs=["jrtoy==1.0"])()
    two = jupyter_remote.function(report, envs_cluster, reqs=["jrtoy==2.0"])()
    assert (one["version"], two["version"]) == ("1.0", "2.0")
    assert one["env"]["hash"] != two["env"]["hash"]
    assert one["python"].startswith(one["env"]["path"])
    assert one["env"]["requirements"] == ["jrtoy==1.0"]
    # Without requirements: the workers' own packages, where jrtoy is not installed.
    with pytest.raises(ModuleNotFoundError, match="jrtoy"):
        jupyter_remote.function(toy_version, envs_cluster)()


def test_an_env_shadows_a_version_the_worker_process_already_imported(envs_cluster, house, tmp_path):
    # Give every worker process jrtoy 1.0 of its own, imported, then ask for 2.0.
    import zipfile

    base = tmp_path / "base"
    zipfile.ZipFile(os.path.join(house, "jrtoy-1.0-py3-none-any.whl")).extractall(base)
    client = envs_cluster.client

    def import_base(path):
        import sys

        sys.path.insert(0, path)
        import jrtoy

        return jrtoy.VERSION

    def forget_base(path):
        import sys

        sys.path.remove(path)
        sys.modules.pop("jrtoy", None)

    assert set(client.run(import_base, str(base)).values()) == {"1.0"}
    try:
        pinned = jupyter_remote.function(toy_version, envs_cluster, reqs=["jrtoy==2.0"])
        assert pinned() == "2.0"
        assert jupyter_remote.function(toy_version, envs_cluster)() == "1.0"  # the worker's own
    finally:
        client.run(forget_base, str(base))


def test_second_call_is_a_cache_hit_proven_by_the_build_record(envs_cluster, env_root, installer):
    f = jupyter_remote.function(report, envs_cluster, reqs=["jrtoy==1.0", "jrtoy"])
    first = f()
    record = record_of(first["env"])
    again = [f() for _ in range(3)]
    assert {r["env"]["hash"] for r in again} == {first["env"]["hash"]}
    assert {record_of(r["env"])["build_id"] for r in again} == {record["build_id"]}
    assert record["requirements"] == ["jrtoy==1.0", "jrtoy"]
    with open(os.path.join(first["env"]["path"], envbuild.PIP_LOG)) as log:
        assert wheelhouse.INSTALLED[installer] in log.read()
    assert not [d for d in os.listdir(env_root) if d.startswith(".build-")]


def test_concurrent_calls_on_one_host_build_once(envs_cluster):
    f = jupyter_remote.function(report, envs_cluster, reqs=["jrtoy==2.0", "jrtoy>=2"])
    refs = [f.remote() for _ in range(4)]
    got = jupyter_remote.get(refs)
    assert {r["env"]["hash"] for r in got} == {got[0]["env"]["hash"]}
    assert len({record_of(r["env"])["build_id"] for r in got}) == 1
    assert {r["version"] for r in got} == {"2.0"}


def test_a_changed_wheel_with_the_same_name_gets_a_new_environment(envs_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = wheelhouse.wheel(str(tmp_path), "jrtoy", "1.0")
    name = "./" + os.path.basename(path)
    f = jupyter_remote.function(report, envs_cluster, reqs=[name])
    before = f()
    wheelhouse.wheel(str(tmp_path), "jrtoy", "1.0", body="VERSION = '1.0, rebuilt'\n")
    after = f()
    assert before["version"] == "1.0" and after["version"] == "1.0, rebuilt"
    assert before["env"]["hash"] != after["env"]["hash"]


def test_a_failed_build_names_the_requirement_leaves_nothing_and_is_retried(
    envs_cluster, house, env_root, tmp_path
):
    project = wheelhouse.broken_project(str(tmp_path))
    with pytest.raises(environments.EnvironmentBuildError) as info:
        jupyter_remote.function(toy_version, envs_cluster, reqs=[project])()
    text = str(info.value)
    assert "jrbroken" in text and "fails on purpose" in text and "pip exited with" in text

    # Missing from the wheelhouse: fails, and once the wheel is there the same call works.
    def later_version():
        import jrlater

        return jrlater.VERSION

    later = jupyter_remote.function(later_version, envs_cluster, reqs=["jrlater==0.5"])
    with pytest.raises(environments.EnvironmentBuildError, match="jrlater==0.5"):
        later()
    assert not [d for d in os.listdir(env_root) if d.startswith(".build-")]
    assert not [r for r in environments.cluster_envs(envs_cluster)
                if "jrlater==0.5" in r["requirements"]]
    wheelhouse.wheel(house, "jrlater", "0.5", body="VERSION = '0.5'\n")
    try:
        assert later() == "0.5"
    finally:
        os.remove(os.path.join(house, "jrlater-0.5-py3-none-any.whl"))


def test_files_are_in_the_working_directory_and_get_env_lists_them(envs_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "settings.ini").write_text("[x]\ny = 3\n")
    source = (
        "import jupyter_remote, os\n"
        "info = jupyter_remote.get_env()\n"
        "rows = open('data.csv').read().splitlines()\n"
        "conf = open(os.path.join('conf', 'settings.ini')).read()\n"
        "cwd = os.getcwd()\n"
    )
    env = environments.resolve(files=["data.csv", "conf"])
    result = cells.run_cell(source, {}, envs_cluster, get=True, env=env)
    values = result.values
    assert values["rows"] == ["a,b", "1,2"] and "y = 3" in values["conf"]
    info = values["info"]
    assert info["files"] == ["data.csv", "conf"] and info["workdir"] == values["cwd"]
    assert info["hash"] is None and info["requirements"] == []
    workers = sorted(envs_cluster.client.scheduler_info()["workers"])
    assert info["workers"] == workers


def test_cell_values_made_in_an_env_stay_there_and_feed_the_next_cell(envs_cluster):
    env = environments.resolve(["jrtoy==2.0"])
    first = cells.run_cell("import jrtoy\nthing = jrtoy.Thing()\nlabel = 'v' + jrtoy.VERSION\n",
                           {}, envs_cluster, env=env)
    assert first.refs["label"].get() == "v2.0"  # plain values download as usual
    ns = {"thing": first.refs["thing"]}
    second = cells.run_cell("seen = thing.version\n", ns, envs_cluster, env=env)
    assert second.refs["seen"].get() == "2.0"
    # The worker process never opened it: jrtoy is not installed there.
    with pytest.raises(ModuleNotFoundError) as info:
        first.refs["thing"].get()
    assert "requirements environment" in "".join(getattr(info.value, "__notes__", []))


def test_logs_from_the_env_process_reach_the_notebook(envs_cluster, capsys):
    def noisy():
        import logging
        import sys

        import jrtoy

        print("stdout from", jrtoy.VERSION)
        print("stderr line", file=sys.stderr)
        logging.getLogger("toy").warning("a warning record")
        return 1

    assert jupyter_remote.function(noisy, envs_cluster, reqs=["jrtoy==1.0"])() == 1
    out = capsys.readouterr()
    assert "stdout from 1.0" in out.out
    assert "stderr line" in out.err and "a warning record" in out.err


def test_map_and_exceptions_in_an_env(envs_cluster):
    def version_plus(x):
        import jrtoy

        if x == 3:
            raise ValueError(f"bad item {x} under {jrtoy.VERSION}")
        return f"{jrtoy.VERSION}+{x}"

    f = jupyter_remote.function(version_plus, envs_cluster, reqs=["jrtoy==2.0"])
    got = f.map(range(5), errors="return", batch_size=2)
    assert got[:3] == ["2.0+0", "2.0+1", "2.0+2"] and got[4] == "2.0+4"
    assert isinstance(got[3], ValueError) and "under 2.0" in str(got[3])


def test_list_prune_and_size_cap(envs_cluster, env_root):
    rows = environments.cluster_envs(envs_cluster)
    assert rows and all(r["hosts"] and r["size"] > 0 for r in rows)
    assert any(r["requirements"] == ["jrtoy==1.0"] for r in rows)
    # The cap, applied on this host to the same root: what live env processes use stays.
    with dask.config.set({"jupyter-remote.environments.root": env_root,
                          "jupyter-remote.environments.max-size": 1}):
        envstore._enforce_cap(env_root)
        left = envstore.list_envs()
    assert left and all(r["in_use"] for r in left)
    removed = environments.prune_cluster(envs_cluster)
    # what is left is held by something alive (a running call, or cell outputs waiting in
    # an environment's process from an earlier test of the session)
    assert removed and all(r["in_use"] for r in environments.cluster_envs(envs_cluster))
    # Removed environments are rebuilt on the next call.
    assert jupyter_remote.function(toy_version, envs_cluster, reqs=["jrtoy==1.0"])() == "1.0"


def test_resolve_hashes_contents_and_reads_requirement_files(tmp_path):
    wheel = wheelhouse.wheel(str(tmp_path / "w"), "jrtoy", "1.0")
    (tmp_path / "reqs.txt").write_text(
        f"# comment\njrtoy==1.0  # pinned\n--find-links {tmp_path}\n./w/{os.path.basename(wheel)}\n"
    )
    spec = environments.resolve(requirements_file="reqs.txt", base=str(tmp_path), pip_options=[])
    assert spec["requirements"][0] == "jrtoy==1.0" and len(spec["local"]) == 1
    assert spec["pip_options"] == ["--find-links", str(tmp_path)]
    same = environments.resolve(requirements_file="reqs.txt", base=str(tmp_path), pip_options=[])
    assert same["hash"] == spec["hash"]
    shutil.copy(wheel, str(tmp_path))  # unrelated file: same hash
    wheelhouse.wheel(str(tmp_path / "w"), "jrtoy", "1.0", body="VERSION = 'edited'\n")
    edited = environments.resolve(requirements_file="reqs.txt", base=str(tmp_path), pip_options=[])
    assert edited["hash"] != spec["hash"]
    assert environments.resolve(None, None, None) is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        environments.resolve(["./missing-1.0-py3-none-any.whl"], base=str(tmp_path))


def test_version_check_names_mismatches(envs_cluster):
    assert versions.check(envs_cluster.client, "envs-test") == []  # same interpreter
    fake = {
        "client": {"packages": {"python": "3.11.7.final.0", "dask": "2026.8.0",
                                "distributed": "2026.8.0", "cloudpickle": "3.1.2",
                                "jupyter_remote": "0.1.0"}},
        "workers": {"tcp://w1:1": {"packages": {"python": "3.12.1.final.0", "dask": "2026.8.0",
                                                "distributed": "2026.8.0", "cloudpickle": "3.0.0",
                                                "jupyter_remote": None}}},
    }
    lines = versions.mismatches(fake)
    assert lines == [
        "python: notebook has 3.11, tcp://w1:1 3.12",
        "cloudpickle: notebook has 3.1.2, tcp://w1:1 3.0.0",
        "jupyter_remote: notebook has 0.1.0, tcp://w1:1 not installed",
    ]


def test_the_cell_shows_building_then_the_call_runs(envs_cluster, installer):
    states: list[str] = []
    lines: list[str] = []

    class Recorder(views.TextFunctionView):
        def start(self, call):
            call.log.listen(lambda log, new: states.append(log.state))

        def on_lines(self, new):
            lines.extend(line["text"] for line in new)

    views.set_function_view(Recorder)
    try:
        assert jupyter_remote.function(toy_version, envs_cluster, reqs=["jrtoy==1.0", "jrtoy<3"])() == "1.0"
    finally:
        views.set_function_view(None)
    assert "building" in states
    assert any(text.startswith(f"[{installer}] ") and wheelhouse.INSTALLED[installer] in text
               for text in lines)


def test_interrupting_a_call_in_an_env_stops_it_and_the_env_keeps_working(envs_cluster, tmp_path):
    ticks = tmp_path / "ticks"
    ticks.write_text("")
    stopped = tmp_path / "stopped"

    def slow(path, stopped):
        import time

        import jrtoy

        print("started", jrtoy.VERSION, flush=True)
        try:
            for _ in range(6000):  # 5 minutes unless interrupted
                with open(path, "a") as f:
                    f.write(".")
                time.sleep(0.05)
        except BaseException as err:
            with open(stopped, "w") as f:
                f.write(type(err).__name__)
            raise
        return "never"

    f = jupyter_remote.function(slow, envs_cluster, reqs=["jrtoy==2.0"])
    ref = f.remote(str(ticks), str(stopped))
    wait_until(lambda: len(ticks.read_text()) >= 3, 60, "the call to tick in its env")
    what = ref.cancel()
    assert "interrupted" in what, what
    # The env process's thread really stopped: the loop was left by an exception.
    wait_until(stopped.exists, 30, "the loop in the env process to be interrupted")
    stopped_at = len(ticks.read_text())
    assert stopped.read_text() and len(ticks.read_text()) == stopped_at
    assert jupyter_remote.function(toy_version, envs_cluster, reqs=["jrtoy==2.0"])() == "2.0"


def test_a_dying_env_process_is_reported_and_replaced(envs_cluster):
    from jupyter_remote.exceptions import WorkerLostError

    def die():
        import os

        os._exit(3)

    with pytest.raises(WorkerLostError, match="exited with code 3"):
        jupyter_remote.function(die, envs_cluster, reqs=["jrtoy==2.0"])()
    assert jupyter_remote.function(toy_version, envs_cluster, reqs=["jrtoy==2.0"])() == "2.0"


def test_enqueue_and_to_carry_requirements(envs_cluster):
    f = jupyter_remote.function(toy_version, envs_cluster, reqs=["jrtoy==1.0"], name="toy-queue")
    refs = [f.enqueue() for _ in range(3)]
    assert jupyter_remote.get(refs) == ["1.0", "1.0", "1.0"]
    assert f.to(envs_cluster, reqs=["jrtoy==2.0"])() == "2.0"


def test_a_local_project_folder_is_built_and_an_edit_makes_a_new_environment(
    envs_cluster, house, tmp_path, monkeypatch
):
    project = tmp_path / "jrproject"
    (project / "jrproject").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "jrproject"\nversion = "0.1"\n'
    )
    (project / "jrproject" / "__init__.py").write_text("GREETING = 'hello'\n")
    monkeypatch.chdir(tmp_path)

    def greeting():
        import jrproject

        return jrproject.GREETING, jupyter_remote.get_env()["hash"]

    # Offline, the build backend comes from the workers' own packages (no isolation).
    options = ["--no-index", "--find-links", house, "--no-build-isolation"]
    with dask.config.set({"jupyter-remote.pip-options": options}):
        f = jupyter_remote.function(greeting, envs_cluster, reqs=["./jrproject"])
        first, h1 = f()
        (project / "jrproject" / "__init__.py").write_text("GREETING = 'edited'\n")
        second, h2 = f()
    assert (first, second) == ("hello", "edited") and h1 != h2


def test_a_big_local_wheel_travels_once_as_scattered_data(envs_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    padding = "x" * (2 * environments.INLINE_LIMIT)  # the wheel zip stores it uncompressed
    path = wheelhouse.wheel(str(tmp_path), "jrbig", "1.0", body=f"VERSION = 'big'\nPAD = {padding!r}\n")
    assert os.path.getsize(path) > environments.INLINE_LIMIT
    spec = environments.resolve([f"./{os.path.basename(path)}"])
    shipped, blobs = environments.detach(spec, envs_cluster.client)
    assert len(blobs) == 1 and shipped["local"][0]["data"] is None
    again, blobs_again = environments.detach(spec, envs_cluster.client)
    assert blobs_again[0].key == blobs[0].key  # scattered once, reused

    def big_version():
        import jrbig

        return jrbig.VERSION, len(jrbig.PAD)

    f = jupyter_remote.function(big_version, envs_cluster, reqs=[f"./{os.path.basename(path)}"])
    assert f() == ("big", len(padding))
    assert f() == ("big", len(padding))


def test_the_installer_is_uv_when_found_else_pip(monkeypatch):
    def chosen(setting: str) -> list[str]:
        with dask.config.set({"jupyter-remote.environments.installer": setting}):
            return envbuild.installer("/env/bin/python")

    monkeypatch.setattr(envbuild, "_find_uv", lambda: None)  # a worker without uv
    assert chosen("auto")[:3] == [sys.executable, "-m", "pip"]
    with pytest.raises(environments.EnvironmentBuildError, match="uv is not installed"):
        chosen("uv")
    monkeypatch.setattr(envbuild, "_find_uv", lambda: "/usr/bin/uv")
    assert chosen("auto") == ["/usr/bin/uv", "pip", "install", "--python", "/env/bin/python"]
    assert chosen("pip")[:3] == [sys.executable, "-m", "pip"]


def test_uv_is_found_beside_the_interpreter_when_not_on_path(monkeypatch, tmp_path):
    import shutil as sh

    monkeypatch.setattr(sh, "which", lambda name: None)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    monkeypatch.setattr(sys, "executable", str(fake_bin / "python"))
    assert envbuild._find_uv() is None
    (fake_bin / "uv").write_text("#!/bin/sh\n")
    (fake_bin / "uv").chmod(0o755)
    assert envbuild._find_uv() == str(fake_bin / "uv")


def kept_here():
    """In an environment's process: the cells whose values wait there, and those ended."""
    from jupyter_remote.worker import state

    return sorted(state._kept), list(state._ended)


def test_values_a_cancelled_cell_bound_in_an_env_are_dropped(envs_cluster):
    import time

    # The cell swallows the interrupt and binds its names anyway, after its task was
    # cancelled: the environment's process must not keep them once the task is gone.
    env = environments.resolve(["jrtoy==1.0"])
    result = cells.run_cell(IGNORES_INTERRUPT, {}, envs_cluster, wait=False, env=env)
    deadline = time.monotonic() + 60
    while result.call.log.state != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    worker = result.call.log.worker
    result.call.cancel()
    probe = jupyter_remote.function(kept_here, envs_cluster, reqs=["jrtoy==1.0"])
    while True:
        with dask.annotate(workers=[worker]):  # the process of that worker
            kept, ended = probe()
        if result.call.id in ended and result.call.id not in kept:
            break
        assert time.monotonic() < deadline, f"still kept after the cell ended: {kept}"
        time.sleep(0.1)
