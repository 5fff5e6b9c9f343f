"""Runnables on a real cluster: steps while run() returns True, logs, Cancel, experiments
written in YAML (objects built on the worker, errors naming the file's line)."""

from __future__ import annotations

import textwrap

import pytest

import jupyter_remote
from jupyter_remote.core import jobs
from jupyter_remote.exceptions import RemoteCancelledError
from tests.conftest import wait_until
from tests.core.jobs_fixture import Counter, Forever


def test_a_runnable_steps_until_run_returns_false(local):
    ref = jupyter_remote.submit(Counter(4, "walk"), local)
    done = ref.get(timeout=60)
    assert isinstance(done, Counter) and done.count == 4
    job = next(j for j in jobs.jobs() if j.ref is ref)
    wait_until(lambda: job.state == "done", what="the job's log to say done")
    assert job.steps == 4
    texts = [line["text"] for line in job.call.log.lines]
    assert texts == [f"walk step {i}" for i in range(1, 5)]


def test_cancel_stops_a_runnable(local):
    ref = jupyter_remote.submit(Forever(), local)
    job = next(j for j in jobs.jobs() if j.ref is ref)
    wait_until(lambda: job.steps >= 3, what="a few steps")
    assert "cancelled" in ref.cancel()
    with pytest.raises(RemoteCancelledError):
        ref.get(timeout=60)
    wait_until(lambda: job.state == "cancelled", what="the job to end cancelled")


def test_submit_refuses_what_is_not_runnable(local):
    with pytest.raises(TypeError, match="run\\(\\) method"):
        jupyter_remote.submit(42, local)
    with pytest.raises(FileNotFoundError, match="cannot be read"):
        jupyter_remote.submit("/no/such/experiment.yaml", local)


def test_an_experiment_file_builds_nested_objects_on_the_worker(local, tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(textwrap.dedent("""\
        {}
        ---
        !tests.core.jobs_fixture.Counter
        until: 2
        label: outer
        inner: !tests.core.jobs_fixture.Counter {until: 9}
        """))
    done = jupyter_remote.submit(str(path), local).get(timeout=60)
    assert done.count == 2 and done.label == "outer"
    assert isinstance(done.inner, Counter) and done.inner.until == 9


@pytest.mark.parametrize(("body", "says"), [
    ("!nosuchmodule.Thing {}", "experiment.yaml line 3: module 'nosuchmodule'"),
    ("!tests.core.jobs_fixture.Nope {}", "line 3: module 'tests.core.jobs_fixture' has no 'Nope'"),
    ("!tests.core.jobs_fixture.Counter {speed: 3}", "line 3: !tests.core.jobs_fixture.Counter"),
])
def test_experiment_errors_name_the_line(local, tmp_path, body, says):
    path = tmp_path / "experiment.yaml"
    path.write_text("{}\n---\n" + body + "\n")
    with pytest.raises(ValueError, match=says.replace(".", "\\.").replace("!", "!")):
        jupyter_remote.submit(str(path), local).get(timeout=60)


def test_a_bad_extensions_document_fails_before_anything_is_sent(local, tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("- not a mapping\n---\n!x.Y {}\n")
    with pytest.raises(ValueError, match="line 1: the first document maps module names"):
        jupyter_remote.submit(str(path), local)


def test_percent_remote_submit_and_jobs(shell, run, tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text("{}\n---\n!tests.core.jobs_fixture.Counter {until: 2}\n")
    ref = shell.run_line_magic("remote", f"submit {path}")
    assert ref.get(timeout=60).count == 2
    wait_until(lambda: any(j.ref is ref and j.state == "done" for j in jobs.jobs()))
    shell.run_line_magic("remote", "jobs")
    out = capsys.readouterr().out
    assert "exp.yaml" in out and "done" in out
