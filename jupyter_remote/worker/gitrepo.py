"""Git, run as a subprocess: which commit a ref names, and a checkout of a commit.

Used on the worker (functions from git, :mod:`jupyter_remote.worker.sources`; the
``repo:`` requirements of such a function, :mod:`jupyter_remote.worker.envbuild`) and in the
notebook when a call's env spec is built (``git+URL@REF`` requirements are pinned to the
commit the ref names, :mod:`jupyter_remote.core.gitreqs`). It imports nothing of the package,
so every side can use it. ``git`` always runs with an argument list (never a shell), with a
timeout and without prompts; each failure is one :class:`GitError` naming the URL and ref.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

TIMEOUT = 120.0


class GitError(ValueError):
    """A repository, ref or file that git cannot reach (the message names URL and ref)."""


def run(args: list[str], what: str, cwd: str | None = None) -> str:
    """``git ARGS`` (its stdout); a :class:`GitError` about ``what`` if it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise GitError(f"{what}: git is not installed here") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{what}: git {args[0]} took more than {TIMEOUT:g} s") from None
    if done.returncode != 0:
        raise GitError(f"{what}: git {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def is_commit(ref: str) -> bool:
    return len(ref) == 40 and all(c in "0123456789abcdef" for c in ref)


def resolve(url: str, ref: str) -> str:
    """The commit ``ref`` (a branch, tag, ``HEAD`` or a full commit) names at ``url``."""
    what = f"{url}@{ref}"
    if is_commit(ref):
        return ref
    out = run(["ls-remote", url, ref, f"{ref}^{{}}"], what)
    lines = [line.split() for line in out.splitlines() if line.strip()]
    if not lines:
        raise GitError(f"{what}: no branch or tag {ref!r} in the repository")
    peeled = [sha for sha, name in lines if name.endswith("^{}")]  # an annotated tag's commit
    return peeled[0] if peeled else lines[0][0]


def checkout(url: str, ref: str, base: str) -> str:
    """A checkout of ``url`` at ``ref`` under ``base/.git-cache/COMMIT`` (cloned once per
    commit on this host; a concurrent clone of the same commit is harmless)."""
    commit = resolve(url, ref)
    cache = os.path.join(base, ".git-cache")
    path = os.path.join(cache, commit)
    if os.path.isdir(path):
        return path
    os.makedirs(cache, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    what = f"{url}@{ref}"
    try:
        run(["clone", "--quiet", "--no-checkout", url, tmp], what)
        run(["checkout", "--quiet", commit], what, cwd=tmp)
        os.rename(tmp, path)
    except OSError:  # another worker of this host finished the same checkout first
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return path
