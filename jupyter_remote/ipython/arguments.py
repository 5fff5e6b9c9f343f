"""Argument helpers shared by ``%%remote`` and the ``%remote`` subcommands: every bad input
becomes a :class:`UsageError` (a short message with the usage, no traceback)."""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from jupyter_remote.exceptions import UnknownClusterError


def parse(magic: Any, line: str) -> Any:
    """``parse_argstring`` whose argparse exits become a ``UsageError`` with the usage."""
    from IPython.core.magic_arguments import parse_argstring

    try:
        return parse_argstring(magic, line)
    except UsageError:
        raise
    except (SystemExit, ValueError) as exc:  # argparse's own exits on bad input
        raise UsageError(f"{exc}\n{magic.parser.format_usage()}") from None


def resources(items: list[str] | None) -> dict[str, float]:
    """``--resources KEY=N ...`` as a dict."""
    out: dict[str, float] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            raise UsageError(
                f"--resources takes KEY=N pairs such as GPU=1 or MEMORY=4e9, got {item!r}"
            ) from None
    return out


def cluster(name: str | None) -> Any:
    """The cluster named ``name`` (None: the default); an unknown name is a UsageError."""
    from jupyter_remote.core import clusters

    try:
        return clusters.cluster(name)
    except UnknownClusterError as exc:
        raise UsageError(str(exc)) from None


def env_spec(reqs: list[str] | None, requirements_file: str | None,
             files: list[str] | None) -> dict[str, Any] | None:
    """The env spec of --reqs/-r/--files (None without them); a bad path is a UsageError."""
    if not (reqs or requirements_file or files):
        return None
    from jupyter_remote.core import environments

    try:
        return environments.resolve(reqs, requirements_file, files)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


class Parser(argparse.ArgumentParser):
    """A ``%remote`` subcommand's parser: bad arguments raise ``UsageError`` with the usage,
    as IPython's magics do."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message}\n{self.format_usage()}")


def parser(name: str, description: str) -> Parser:
    return Parser(prog=f"%remote {name}", description=description, add_help=False)


def parse_words(p: Parser, words: list[str]) -> argparse.Namespace:
    return p.parse_args(words)


def on_cluster(name: str, description: str, flag: str, flag_help: str,
               words: list[str]) -> tuple[bool, Any]:
    """Parse ``%remote NAME [CLUSTER] [--FLAG]``; return the flag and the cluster."""
    p = parser(name, description)
    p.add_argument("cluster", nargs="?", default=None)
    p.add_argument(f"--{flag}", action="store_true", help=flag_help)
    args = parse_words(p, words)
    return getattr(args, flag), cluster(args.cluster)
