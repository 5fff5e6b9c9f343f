"""``%remote`` subcommands for what outlives a call: results in the result store
(``cache``), saved functions (``functions``), freeing remote values (``free``) and shutting
down clusters (``shutdown``). Each parses, calls core, prints; the logic is in
:mod:`jupyter_remote.core.memo`, :mod:`~jupyter_remote.core.saved` and
:mod:`~jupyter_remote.core.cleanup`.
"""

from __future__ import annotations

from IPython.core.error import UsageError

from jupyter_remote.ipython import tables
from jupyter_remote.ipython.arguments import cluster, on_cluster, parse_words, parser


def cache_cmd(shell, words: list[str]) -> None:
    clear, found = on_cluster(
        "cache", "list the results kept in the result store (jupyter-remote.store.url) by "
        "function(..., cache=True) and `%%remote --cache`, or remove them",
        "clear", "remove them from the store (saved functions stay)", words,
    )
    from jupyter_remote.core import memo

    url = memo.store_spec()["url"]
    if clear:
        print(f"removed {memo.clear(found)} stored result(s) from {url}")
        return
    rows = [r for r in memo.entries(found) if r.get("kind") in ("function", "cell")]
    if not rows:
        print(f"no stored results in {url} (calls with cache=True and --cache cells store theirs)")
        return
    print(f"{len(rows)} stored result(s) in {url}, most recently used first:")
    tables.show(  # HTML in JupyterLab, text in a terminal
        [[r["kind"], r.get("label", ""), r.get("inputs", "") or "-", tables.size(r["size"]),
          memo.age(r["created"]), memo.age(r["used"])] for r in reversed(rows)],
        ["what", "function or cell", "inputs", "size", "stored", "last used"],
    )


def functions_cmd(shell, words: list[str]) -> None:
    only_latest, found = on_cluster(
        "functions", "list the functions saved in the result store (function(...).save())",
        "latest", "only the latest version of each name", words,
    )
    from jupyter_remote.core import memo, saved

    rows = saved.listing(found)
    url = memo.store_spec()["url"]
    if not rows:
        print(f"no saved functions in {url} (save one with jupyter_remote.function(fn, "
              "name='prep').save())")
        return
    latest = {r["name"]: r["version"] for r in rows}  # rows come by name, then version
    if only_latest:
        rows = [r for r in rows if latest[r["name"]] == r["version"]]
    tables.show(
        [[f"{r['name']}@{r['version']}" + (f" ({r['name']})" if latest[r["name"]] == r["version"]
                                          else ""),
          memo.age(r["saved"]), r.get("notebook", "-"), r.get("reqs", "-")] for r in rows],
        ["function", "saved", "from notebook", "requirements"],
    )


def free_cmd(shell, words: list[str]) -> None:
    p = parser("free", "drop remote values from the cluster now and their names from the notebook")
    p.add_argument("names", nargs="+", metavar="NAME", help="names of refs, or `all`")
    args = parse_words(p, words)
    from jupyter_remote.core import cleanup, share

    try:
        freed = cleanup.free(shell.user_ns, args.names)
    except (KeyError, TypeError) as exc:
        raise UsageError(str(exc.args[0])) from None
    if args.names == ["all"]:
        share.release_held()  # the large inputs shared automatically go too
    print(f"freed {len(freed)} remote value(s)" + (f": {', '.join(freed)}" if freed else ""))


def shutdown_cmd(shell, words: list[str]) -> None:
    from jupyter_remote.core.cleanup import NotOwnerError

    p = parser("shutdown", "shut down a cluster this notebook started (or disconnect from one "
                "it connected to)")
    p.add_argument("cluster", nargs="?", default=None)
    found = cluster(parse_words(p, words).cluster)
    try:
        print(found.shutdown())
    except NotOwnerError as exc:
        raise UsageError(str(exc)) from None
