from __future__ import annotations

import pytest

from jupyter_remote.core.analysis import analyze


def inputs(src: str) -> set[str]:
    return set(analyze(src).inputs)


def test_reads_before_binds_are_inputs():
    assert inputs("y = x + 1\nx = 2\nz = x") == {"x"}
    assert inputs("x = x + 1") == {"x"}
    assert inputs("a = 1\nb = a") == set()


def test_augmented_assignment_reads_its_target():
    assert inputs("total += 1") == {"total"}


def test_comprehension_scopes():
    # the loop variable is local to the comprehension; what it reads is an input
    assert inputs("out = [i * k for i in items if i > lo]") == {"k", "items", "lo"}
    assert inputs("d = {k: v for k, v in pairs}") == {"pairs"}
    assert inputs("g = sum(x for x in xs)") >= {"xs", "sum"}


def test_nested_functions_and_lambdas_read_globals():
    src = "def f(a, b=default):\n    return helper(a) + scale\nh = lambda q: q * factor\n"
    assert inputs(src) == {"default", "helper", "scale", "factor"}


def test_names_bound_later_in_the_cell_are_not_inputs_of_functions():
    src = "def f():\n    return g()\ndef g():\n    return 1\nr = f()\n"
    assert inputs(src) == set()


def test_class_bodies_decorators_and_bases():
    src = (
        "@register\n"
        "class Model(Base):\n"
        "    rate = default_rate\n"
        "    def fit(self):\n"
        "        return self.rate * data\n"
    )
    assert inputs(src) == {"register", "Base", "default_rate", "data"}


def test_closures_are_not_inputs():
    src = "def outer():\n    v = 1\n    def inner():\n        return v + w\n    return inner\n"
    assert inputs(src) == {"w"}


def test_other_binding_forms():
    src = (
        "import numpy as np\n"
        "from os import path\n"
        "with open(fn) as fh:\n"
        "    text = fh.read()\n"
        "for i in range(3):\n"
        "    pass\n"
        "try:\n"
        "    pass\n"
        "except ValueError as err:\n"
        "    pass\n"
        "if (n := compute()) > 0:\n"
        "    m = n\n"
        "r = (np, path, text, i, m)\n"
    )
    found = analyze(src)
    assert set(found.inputs) == {"open", "fn", "range", "ValueError", "compute"}
    assert {"fh", "text", "i", "err", "n", "m", "r"} <= set(found.outputs)
    # imported names are modules (or importable anyway): never outputs
    assert not {"np", "path"} & set(found.outputs)


def test_a_name_rebound_after_its_import_is_an_output():
    assert analyze("import json\njson = 3\n").outputs == ["json"]
    assert analyze("x = 1\nimport x\n").outputs == []


def test_match_statement_captures_bind():
    src = "match point:\n    case (x, y):\n        d = x + y\n    case {'k': v, **rest}:\n        d = v\n"
    found = analyze(src)
    assert set(found.inputs) == {"point"}
    assert {"x", "y", "d", "v", "rest"} <= set(found.outputs)


def test_trailing_expression_and_star_import():
    assert analyze("x = 1\nx").has_expression
    assert not analyze("x = 1").has_expression
    assert analyze("from math import *\ny = pi").star_import


def test_outputs_in_binding_order():
    assert analyze("b = 1\na = 2\nb = 3").outputs == ["b", "a"]


def test_syntax_error_keeps_cell_line_numbers():
    with pytest.raises(SyntaxError) as info:
        analyze("x = 1\ny = (\n", "<remote cell In[3]>")
    assert info.value.filename == "<remote cell In[3]>"
    assert info.value.lineno == 2
