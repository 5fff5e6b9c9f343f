"""Requirements that name a git repository, pinned to a commit when the env spec is built.

- ``git+URL@REF`` (pip's own form, also ``NAME @ git+URL@REF``, with ``#egg=``/
  ``#subdirectory=`` fragments; no ``@REF`` means the default branch): the ref is resolved
  with ``git ls-remote`` now, and pip is given ``git+URL@COMMIT``. The commit is in the
  spec's arguments, so in its hash: a branch that moved builds a new environment, and the
  same commit reuses the one built for it.
- ``repo:PATH`` (only for a function from git, ``function("git+URL@REF#file.py:f",
  reqs=["repo:requirements.txt"])``): a requirements file inside that repository, read on the
  worker from its checkout at the commit the function's ref names now
  (:func:`jupyter_remote.worker.envbuild` expands ``{repo:PATH}`` to ``-r CHECKOUT/PATH``).

Git runs as :mod:`jupyter_remote.worker.gitrepo` runs it: an argument list, a timeout, one
clear error naming the URL and ref.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from typing import Any

from jupyter_remote import config
from jupyter_remote.worker import gitrepo
from jupyter_remote.worker.sources import CodeRef

REPO_PREFIX = "repo:"
# [NAME[extras] @ ]git+SCHEME://REST[#fragment][ ; marker]
_GIT = re.compile(r"^(?P<head>[A-Za-z0-9][A-Za-z0-9._\-\[\], ]*@\s*)?git\+"
                  r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>[^#;\s]*)(?P<tail>.*)$")


_seen: dict[tuple[str, str], tuple[float, str]] = {}  # (url, ref) -> (when, commit)
_seen_lock = threading.Lock()


def resolve(url: str, ref: str) -> str:
    """The commit ``ref`` names at ``url``: :func:`gitrepo.resolve`, reused for
    ``jupyter-remote.git.ref-ttl`` seconds for a remote repository (a loop of calls of a
    function from a git host asks the host once, not once per call)."""
    if gitrepo.is_commit(ref) or _is_local(url):
        return gitrepo.resolve(url, ref)
    ttl = float(config.get("git.ref-ttl", 10) or 0)
    now = time.monotonic()
    with _seen_lock:
        when, commit = _seen.get((url, ref), (float("-inf"), ""))
    if now - when < ttl:
        return commit
    commit = gitrepo.resolve(url, ref)
    with _seen_lock:
        _seen[(url, ref)] = (now, commit)
    return commit


def _is_local(url: str) -> bool:
    return url.startswith("file:") or "://" not in url


def repo_of(fn: Any) -> tuple[str, ...] | None:
    """``(url, ref)`` of a function from git (a ``CodeRef``, perhaps with bound keyword
    arguments), ``(url, ref, commit)`` once pinned for a call, else None."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    url, ref = getattr(fn, "url", None), getattr(fn, "ref", None)
    if isinstance(fn, CodeRef) and isinstance(url, str) and isinstance(ref, str):
        return (url, ref, fn.commit) if fn.commit else (url, ref)
    return None


def check_repo_reqs(reqs: list[str] | str | None, fn: Any) -> None:
    """Refuse ``repo:PATH`` requirements for a function that does not come from git."""
    texts = [reqs] if isinstance(reqs, str) else list(reqs or ())
    used = [t for t in texts if isinstance(t, str) and t.strip().startswith(REPO_PREFIX)]
    if used and repo_of(fn) is None:
        raise ValueError(_no_repo(used[0]))


def _no_repo(text: str) -> str:
    return (f"requirement {text!r} names a file in the repository of a function from git, "
            "but this call's function does not come from git; use it with "
            "function('git+URL@REF#path.py:func', reqs=['repo:requirements.txt']), or pass "
            "the requirements file itself: -r requirements.txt / reqs=['-r requirements.txt']")


class Pins:
    """Pins the git requirements of one env spec (see the module's docstring)."""

    def __init__(self, repo: tuple[str, ...] | None):
        # (url, ref), and the commit when the call already pinned its function's code
        self.repo = (repo[0], repo[1]) if repo else None
        self.repo_commit: str | None = repo[2] if repo and len(repo) > 2 else None

    def arg(self, text: str) -> str | None:
        """The installer's argument for requirement ``text`` if it names git, else None."""
        if text.startswith(REPO_PREFIX):
            return self._repo_file(text)
        found = _GIT.match(text)
        if found is None:
            return None
        head, scheme, rest, tail = (found["head"] or "", found["scheme"], found["rest"],
                                    found["tail"])
        netloc, slash, path = rest.partition("/")
        path, at, ref = path.rpartition("@") if "@" in path else (path, "", "HEAD")
        url = f"{scheme}://{netloc}{slash}{path}"
        commit = resolve(url, ref or "HEAD")
        if head and scheme == "file" and not netloc:
            # pip before 24 refuses NAME @ git+file:///PATH (a URL with no host in a PEP 508
            # requirement); file://localhost/PATH names the same repository for git and pip
            url = f"file://localhost{slash}{path}"
        return f"{head}git+{url}@{commit}{tail}"

    def _repo_file(self, text: str) -> str:
        path = text[len(REPO_PREFIX):].strip().lstrip("/")
        if self.repo is None:
            raise ValueError(_no_repo(text))
        if not path or ".." in path.split("/"):
            raise ValueError(f"requirement {text!r}: expected repo:PATH, a file inside the "
                             "repository, such as repo:requirements.txt")
        if self.repo_commit is None:
            self.repo_commit = resolve(*self.repo)
        return f"{{{REPO_PREFIX}{path}}}"

    def spec(self) -> dict[str, str] | None:
        """The repository ``repo:`` requirements read from (for the spec and its hash)."""
        if self.repo is None or self.repo_commit is None:
            return None
        return {"url": self.repo[0], "ref": self.repo[1], "commit": self.repo_commit}
