"""How a remote exception renders in IPython (its ``_render_traceback_``): the remote frames
once, then the exception, none of the package's frames."""

from __future__ import annotations

import re

from jupyter_remote.wire.failures import pack_exception, unpack_exception

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _raise_in_user_code():
    namespace: dict = {}
    exec(compile("def f(v):\n    return v / 0\nf(1)\n", "<remote cell In[4]>", "exec"), namespace)


def test_an_exception_renders_as_its_remote_traceback_then_the_exception():
    try:
        _raise_in_user_code()
    except ZeroDivisionError as exc:
        packed = pack_exception(exc)
    exc = unpack_exception(packed, "cell In[4]")
    assert isinstance(exc, ZeroDivisionError)
    lines = [ANSI.sub("", line) for line in exc._render_traceback_()]
    assert lines[1].startswith("ZeroDivisionError") and lines[1].endswith(
        "Remote traceback in cell In[4] (most recent call last)"
    )
    assert 'File "<remote cell In[4]>", line 3, in <module>' in "\n".join(lines)
    assert 'File "<remote cell In[4]>", line 2, in f' in "\n".join(lines)
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert not any("Traceback (most recent call last):" == line for line in lines)
    assert not any("jupyter_remote" in line for line in lines)


def test_an_exception_of_a_class_made_in_a_function_renders_too():
    class Local(Exception):  # not importable by name: it travels by value
        pass

    try:
        raise Local("odd")
    except Local as exc:
        packed = pack_exception(exc)
    exc = unpack_exception(packed)
    assert ANSI.sub("", exc._render_traceback_()[-1]).endswith("Local: odd")
