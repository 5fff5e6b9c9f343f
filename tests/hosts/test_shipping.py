"""What travels to a worker host that shares no working folder with the notebook: files
named with --files, and modules imported from files next to the notebook."""

from __future__ import annotations

import sys


def test_files_and_local_modules_reach_a_host_without_the_notebook_folder(
        hosts, run, tmp_path, monkeypatch):
    cluster, found = hosts
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    (notebook / "hostmod.py").write_text("VALUE = 'from the notebook folder'\n")
    (notebook / "data.txt").write_text("shipped data\n")
    monkeypatch.chdir(notebook)
    monkeypatch.syspath_prepend(str(notebook))
    import hostmod  # imported in the notebook, as a user would; the cell uses it

    try:
        run(f"%%remote {found.name} --files data.txt --get --out seen\n"
            "import os, sys\n"
            "seen = {'data': open('data.txt').read(), 'module': hostmod.VALUE,\n"
            "        'cwd': os.getcwd(), 'path': sys.path}\n", hostmod=hostmod)
        seen = run("seen")
    finally:
        sys.modules.pop("hostmod", None)
    assert seen["data"] == "shipped data\n"
    assert seen["module"] == "from the notebook folder"
    assert str(notebook) not in seen["cwd"] and str(notebook) not in seen["path"]
