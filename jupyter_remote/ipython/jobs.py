"""``%remote submit FILE [CLUSTER]`` and ``%remote jobs``: runnables from the notebook."""

from __future__ import annotations

import time
from typing import Any

from IPython.core.error import UsageError

from jupyter_remote.ipython import tables
from jupyter_remote.ipython.arguments import parse_words, parser


def submit_cmd(shell: Any, words: list[str]) -> Any:
    p = parser("submit", "run an experiment file's object on a cluster, step by step")
    p.add_argument("file", help="experiment YAML: extensions, then the object (!module.Class)")
    p.add_argument("cluster", nargs="?", default=None)
    args = parse_words(p, words)
    from jupyter_remote.core import jobs
    from jupyter_remote.ipython.arguments import cluster

    try:
        ref = jobs.submit(args.file, cluster(args.cluster))
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    print(f"submitted {args.file} as call {ref._call.id if ref._call else '?'}; "
          "`%remote jobs` lists it, the returned ref holds the object after its last step")
    return ref


def jobs_cmd(shell: Any, words: list[str]) -> None:
    parse_words(parser("jobs", "runnables submitted from this notebook"), words)
    from jupyter_remote.core import jobs

    found = jobs.jobs()
    if not found:
        print("no jobs submitted from this notebook (jupyter_remote.submit or %remote submit)")
        return
    rows = [[job.call.id, job.label, job.call.cluster.name, job.state, str(job.steps),
             f"{job.elapsed:.1f} s", time.strftime("%H:%M:%S", time.localtime(job.started))]
            for job in found]
    tables.show(rows, ["call", "job", "cluster", "state", "steps", "elapsed", "started"])
