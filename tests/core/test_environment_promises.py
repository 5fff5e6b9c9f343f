"""README promises of requirement specs (core/environments.py), checked on the spec the
notebook builds: nested ``-r`` files, project-folder exclusions in the shipped tarball, and
``pip-options`` taking part in the environment hash.
"""

from __future__ import annotations

import io
import tarfile

from jupyter_remote.core import environments


def test_nested_requirements_files_are_read_relative_to_the_file_that_names_them(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "reqs.txt").write_text("alpha==1.0\n-r sub/more.txt\n")
    (tmp_path / "sub" / "more.txt").write_text("beta>=2  # a comment\n--requirement deeper.txt\n")
    (tmp_path / "sub" / "deeper.txt").write_text("gamma\n-r ../reqs.txt\n")  # a loop is read once
    spec = environments.resolve(requirements_file="reqs.txt", base=str(tmp_path), pip_options=[])
    assert spec["requirements"] == ["alpha==1.0", "beta>=2", "gamma"]
    (tmp_path / "sub" / "deeper.txt").write_text("gamma==3\n")
    edited = environments.resolve(requirements_file="reqs.txt", base=str(tmp_path), pip_options=[])
    assert edited["hash"] != spec["hash"]  # an edit two files down makes another environment


def test_project_folder_ships_without_build_output_and_caches(tmp_path):
    project = tmp_path / "proj"
    (project / "proj").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\nversion = '0.1'\n")
    (project / "proj" / "__init__.py").write_text("X = 1\n")
    junk = [".git/HEAD", "proj/__pycache__/x.cpython-311.pyc", "build/lib/proj/__init__.py",
            "dist/proj-0.1.whl", ".venv/pyvenv.cfg", "node_modules/a.js", "proj.egg-info/PKG-INFO",
            ".ipynb_checkpoints/a.ipynb", "proj/stray.pyc"]
    for rel in junk:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("junk")
    spec = environments.resolve(["./proj"], base=str(tmp_path), pip_options=[])
    (entry,) = spec["local"]
    with tarfile.open(fileobj=io.BytesIO(entry["data"]), mode="r:gz") as tar:
        names = sorted(tar.getnames())
    assert names == ["proj/proj/__init__.py", "proj/pyproject.toml"]
    # junk changing does not make a new environment; a source file does
    (project / "build" / "lib" / "proj" / "__init__.py").write_text("other junk")
    assert environments.resolve(["./proj"], base=str(tmp_path), pip_options=[])["hash"] == spec["hash"]
    (project / "proj" / "__init__.py").write_text("X = 2\n")
    assert environments.resolve(["./proj"], base=str(tmp_path), pip_options=[])["hash"] != spec["hash"]


def test_pip_options_change_the_environment_hash(tmp_path):
    import dask

    plain = environments.resolve(["alpha==1.0"], pip_options=[])
    given = environments.resolve(["alpha==1.0"], pip_options="--index-url http://127.0.0.1:1/simple")
    assert given["pip_options"] == ["--index-url", "http://127.0.0.1:1/simple"]
    assert given["hash"] != plain["hash"]
    with dask.config.set({"jupyter-remote.pip-options": ["--index-url", "http://127.0.0.1:1/simple"]}):
        from_config = environments.resolve(["alpha==1.0"])
    assert from_config["hash"] == given["hash"]
    # an option line inside a requirements file counts as well
    (tmp_path / "reqs.txt").write_text("--extra-index-url http://127.0.0.1:2/simple\nalpha==1.0\n")
    in_file = environments.resolve(requirements_file="reqs.txt", base=str(tmp_path), pip_options=[])
    assert in_file["hash"] != plain["hash"]
