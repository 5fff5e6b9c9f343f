"""Functions named by where their code is: a git repository at a ref (file:// URLs of
repositories the test makes), an installed module, a file next to the notebook."""

from __future__ import annotations

import subprocess

import pytest

import jupyter_remote


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A repository with tag v1 (double) and, on main after it, a change (triple)."""
    path = tmp_path / "repo"
    (path / "pkg").mkdir(parents=True)
    (path / "pkg" / "__init__.py").write_text("")
    (path / "pkg" / "helpers.py").write_text("FACTOR = 2\n")
    (path / "tools.py").write_text("from pkg.helpers import FACTOR\n\n"
                                   "def scale(x):\n    return x * FACTOR\n")
    _git("init", "-q", "-b", "main", cwd=path)
    _git("add", ".", cwd=path)
    _git("commit", "-q", "-m", "v1", cwd=path)
    _git("tag", "v1", cwd=path)
    (path / "pkg" / "helpers.py").write_text("FACTOR = 3\n")
    _git("commit", "-q", "-am", "triple", cwd=path)
    return f"file://{path}"


def test_a_function_from_git_at_a_tag_and_at_a_branch(local, repo):
    at_tag = jupyter_remote.function(f"git+{repo}@v1#tools.py:scale", local)
    assert at_tag.name == "scale"
    assert at_tag(5) == 10  # the repository's root is on the import path: pkg imports
    assert at_tag.map(range(4)) == [0, 2, 4, 6]
    assert jupyter_remote.function(f"git+{repo}@main#tools.py:scale", local)(5) == 15


def test_a_moved_branch_is_followed_by_the_next_call(local, repo, tmp_path):
    """Each call pins the commit its ref names then: the same function, on the same worker
    processes, runs the new code once the branch moved (and a memoized call misses)."""
    import dask

    path = repo[len("file://"):]
    f = jupyter_remote.function(f"git+{repo}@main#tools.py:scale", local)
    with dask.config.set({"jupyter-remote.store.url": str(tmp_path / "store")}):
        cached = jupyter_remote.function(f"git+{repo}@main#tools.py:scale", local, cache=True)
        assert f(5) == 15 and f.map([1, 2]) == [3, 6] and cached(5) == 15
        (tmp_path / "repo" / "pkg" / "helpers.py").write_text("FACTOR = 4\n")
        _git("commit", "-q", "-am", "quadruple", cwd=path)
        assert f(5) == 20 and f.map([1, 2]) == [4, 8]
        assert cached(5) == 20  # another commit: another key


@pytest.mark.parametrize(("where", "says"), [
    ("@nosuchref#tools.py:scale", "no branch or tag 'nosuchref'"),
    ("@v1#missing.py:scale", "there is no file 'missing.py'"),
    ("@v1#tools.py:nothing", "'nothing' is not defined"),
])
def test_git_failures_name_the_url_and_ref(local, repo, where, says):
    f = jupyter_remote.function(f"git+{repo}{where}", local)
    with pytest.raises(ValueError, match=says):
        f(1)


def test_an_unreachable_repository_says_so(local, tmp_path):
    f = jupyter_remote.function(f"git+file://{tmp_path}/absent@v1#a.py:f", local)
    with pytest.raises(ValueError, match="git ls-remote failed"):
        f(1)


def test_module_and_file_forms(local, tmp_path, monkeypatch):
    assert jupyter_remote.function("os.path:basename", local)("/a/b.txt") == "b.txt"
    (tmp_path / "nearby.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    monkeypatch.chdir(tmp_path)
    assert jupyter_remote.function("./nearby.py:shout", local)("hi") == "HI!"
    with pytest.raises(ValueError, match="does not name a function"):
        jupyter_remote.function("no colon here", local)
    with pytest.raises(ValueError, match="nosuchmod.sub"):
        jupyter_remote.function("nosuchmod.sub:f", local)(1)
