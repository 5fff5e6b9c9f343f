"""Requirements from git on a real cluster: ``git+URL@REF`` pinned to the commit the ref
names (a moved branch builds a new environment, the same commit reuses one), and
``repo:PATH`` requirements files inside the repository of a function from git
(core/gitreqs.py, worker/envbuild.py). Repositories are local, served as file:// URLs; pip
and uv install offline from the suite's own wheelhouse."""

from __future__ import annotations

import subprocess

import dask
import pytest

import jupyter_remote
from jupyter_remote.core import environments
from jupyter_remote.exceptions import EnvironmentBuildError
from tests import wheelhouse

house, installer = wheelhouse.house, wheelhouse.installer
env_root, envs_cluster = wheelhouse.env_root, wheelhouse.envs_cluster


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _head(path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def package_repo(tmp_path):
    """A pip-installable package ``jrgit`` (hatchling) in a repository: tag v1 on main."""
    path = tmp_path / "jrgit-repo"
    (path / "jrgit").mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "jrgit"\nversion = "0.1"\n')
    (path / "jrgit" / "__init__.py").write_text("VALUE = 1\n")
    _git("init", "-q", "-b", "main", cwd=path)
    _git("add", ".", cwd=path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one", cwd=path)
    _git("tag", "v1", cwd=path)
    return path


def value_and_env():
    import jrgit

    return jrgit.VALUE, jupyter_remote.get_env()["hash"]


def test_a_moved_branch_builds_a_new_environment_and_a_commit_reuses_one(
        envs_cluster, house, package_repo):
    url = f"file://{package_repo}"
    options = ["--no-index", "--find-links", house, "--no-build-isolation"]
    with dask.config.set({"jupyter-remote.pip-options": options}):
        f = jupyter_remote.function(value_and_env, envs_cluster, reqs=[f"git+{url}@main"])
        one, h1 = f()
        assert one == 1 and f() == (1, h1)  # the same commit: the same environment
        first = _head(package_repo)
        (package_repo / "jrgit" / "__init__.py").write_text("VALUE = 2\n")
        _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two",
             cwd=package_repo)
        two, h2 = f()  # main moved: a new environment, with the new code
        assert (two, h2 != h1) == (2, True)
        # the tag names the first commit: the environment built for it is reused
        at_tag = jupyter_remote.function(value_and_env, envs_cluster, reqs=[f"git+{url}@v1"])
        assert at_tag() == (1, h1)
    spec = environments.resolve([f"git+{url}@v1#egg=jrgit", f"jrgit @ git+{url}",
                                 f"git+{url}@{first}"])
    local = f"file://localhost{package_repo}"  # NAME @ git+file:///: see the next test
    assert spec["args"] == [f"git+{url}@{first}#egg=jrgit",
                            f"jrgit @ git+{local}@{_head(package_repo)}",  # no ref: HEAD
                            f"git+{url}@{first}"]
    assert spec["requirements"][0] == f"git+{url}@v1#egg=jrgit"  # as written, for messages


def test_a_named_git_requirement_of_a_local_repository_installs(envs_cluster, house,
                                                               package_repo):
    """``NAME @ git+file:///PATH@REF``, which pip before 24 refuses as written."""
    options = ["--no-index", "--find-links", house, "--no-build-isolation"]
    with dask.config.set({"jupyter-remote.pip-options": options}):
        f = jupyter_remote.function(value_and_env, envs_cluster,
                                    reqs=[f"jrgit @ git+file://{package_repo}@v1"])
        assert f()[0] == 1


def test_a_git_requirement_that_cannot_be_resolved_fails_before_anything_runs(tmp_path,
                                                                              package_repo):
    with pytest.raises(ValueError, match="no branch or tag 'nosuch'") as info:
        environments.resolve([f"git+file://{package_repo}@nosuch"])
    assert f"file://{package_repo}@nosuch" in str(info.value)
    with pytest.raises(ValueError, match="git ls-remote failed"):
        environments.resolve([f"git+file://{tmp_path}/absent@main"])


@pytest.fixture
def code_repo(tmp_path):
    """A repository with a function and requirements.txt (jrtoy 1.0); main then moves to
    jrtoy 2.0."""
    path = tmp_path / "code-repo"
    path.mkdir()
    (path / "tools.py").write_text(
        "import jupyter_remote\n\n\ndef toy():\n    import jrtoy\n\n"
        "    return jrtoy.VERSION, jupyter_remote.get_env()['hash']\n")
    (path / "requirements.txt").write_text("jrtoy==1.0\n")
    _git("init", "-q", "-b", "main", cwd=path)
    _git("add", ".", cwd=path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one", cwd=path)
    return path


def test_repo_requirements_come_from_the_functions_repository(envs_cluster, code_repo):
    url = f"file://{code_repo}"
    f = jupyter_remote.function(f"git+{url}@main#tools.py:toy", envs_cluster,
                                reqs=["repo:requirements.txt"])
    version, h1 = f()
    assert version == "1.0"
    (code_repo / "requirements.txt").write_text("jrtoy==2.0\n")
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two",
         cwd=code_repo)
    version, h2 = f()  # read at the commit main names now
    assert version == "2.0" and h2 != h1
    missing = jupyter_remote.function(f"git+{url}@main#tools.py:toy", envs_cluster,
                                      reqs=["repo:nothere.txt"])
    with pytest.raises(EnvironmentBuildError) as info:
        missing()
    for part in (url, "@main", "'nothere.txt'"):
        assert part in str(info.value)


def test_repo_requirements_without_a_git_source_fail_at_once():
    with pytest.raises(ValueError, match="does not come from git"):
        jupyter_remote.function(len, reqs=["repo:requirements.txt"])
    with pytest.raises(ValueError, match="does not come from git"):
        environments.resolve(["repo:requirements.txt"])  # %%remote --reqs repo:...


@pytest.fixture
def served(tmp_path, package_repo):
    """``package_repo`` served by ``git daemon`` on 127.0.0.1 (a remote repository, here)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={package_repo.parent}", str(package_repo.parent)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://127.0.0.1:{port}/{package_repo.name}"
    try:
        from tests.conftest import wait_until

        def answers():
            return subprocess.run(["git", "ls-remote", url], capture_output=True,
                                  timeout=30).returncode == 0

        wait_until(answers, 30, "git daemon to serve the repository", every=0.1)
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def test_a_remote_refs_commit_is_reused_for_ref_ttl_seconds(served, package_repo):
    from jupyter_remote.core import gitreqs

    first = _head(package_repo)
    (package_repo / "jrgit" / "__init__.py").write_text("VALUE = 2\n")
    with dask.config.set({"jupyter-remote.git.ref-ttl": 3600}):
        assert gitreqs.resolve(served, "main") == first
        _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two",
             cwd=package_repo)
        moved = _head(package_repo)
        assert gitreqs.resolve(served, "main") == first  # not asked again within the TTL
        local = f"file://{package_repo}"
        assert gitreqs.resolve(local, "main") == moved  # a local repository: always asked
        spec = environments.resolve([f"git+{served}@main"])
        assert spec["args"] == [f"git+{served}@{first}"]
    with dask.config.set({"jupyter-remote.git.ref-ttl": 0}):
        assert gitreqs.resolve(served, "main") == moved  # 0: asked on every call
    with dask.config.set({"jupyter-remote.git.ref-ttl": 3600}):
        assert gitreqs.resolve(served, "main") == moved  # and remembered from then on
