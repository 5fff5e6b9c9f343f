"""What a %%remote cell says it bound, in the text view (a real InteractiveShell, the
embedded cluster); the widget view is tested through a kernel in tests/widgets/test_seen.py."""

from __future__ import annotations

from jupyter_remote.ipython import render


def test_the_text_view_lists_what_a_cell_bound_and_warns_of_a_replaced_variable(shell, run, capsys):
    shell.user_ns["step"] = 3  # a plain notebook variable the cell will replace
    run("%%remote\nimport numpy as np\ngrid = np.zeros((100, 100))\nstep = 4\nname = 'x'\n")
    err = capsys.readouterr().err
    assert "[remote] bound grid: ndarray 100×100 float64, 78.12 kiB; step: int; name: str" in err
    assert "[remote] warning: step was a local int and is now a remote ref" in err
    run("%%remote\nstep = 5\n")  # a ref replacing a ref: the ordinary case, no warning
    assert "warning" not in capsys.readouterr().err


def test_the_starting_line_names_the_cluster_and_its_workers(local):
    from jupyter_remote.core.clusters import Cluster

    assert render.starting_words(local).startswith("starting local cluster (")
    assert render.starting_words(Cluster("lab-9", address="tcp://10.0.0.9:8786")) == (
        "connecting to cluster lab-9…"
    )
