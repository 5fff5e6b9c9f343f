"""A cell's inputs and outputs, from its AST.

Inputs are the names the cell reads before it binds them: at top level in execution order,
and inside functions, lambdas, comprehensions and class bodies as the globals those scopes
read (found with :mod:`symtable`, which knows Python's scoping rules exactly). Outputs are
the names the cell binds at top level.
"""

from __future__ import annotations

import ast
import builtins
import functools
import symtable
from dataclasses import dataclass, field

from jupyter_remote._compat import parse

_BUILTINS = frozenset(dir(builtins))


@dataclass
class CellAnalysis:
    """What a cell reads from the notebook and what it binds."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    star_import: bool = False
    has_expression: bool = False


class _TopLevel(ast.NodeVisitor):
    """Walks top-level statements in execution order, noting reads before binds."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.inputs: dict[str, None] = {}  # ordered set
        self.outputs: dict[str, None] = {}
        self.imported: set[str] = set()  # names bound only by import statements
        self.star_import = False

    # -- helpers -------------------------------------------------------------------------
    def _read(self, name: str) -> None:
        if name not in self.bound:
            self.inputs.setdefault(name, None)

    def _bind(self, name: str, by_import: bool = False) -> None:
        self.bound.add(name)
        self.outputs.setdefault(name, None)
        if by_import:
            self.imported.add(name)
        else:
            self.imported.discard(name)

    def _visit_all(self, nodes) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    # -- names ---------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
        else:
            self._bind(node.id)

    # -- statements whose value is evaluated before the target ---------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        self._visit_all(node.targets)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._visit_all([node.value, node.annotation])
        self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._read(node.target.id)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        self._visit_all(node.body)
        self._visit_all(node.orelse)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        self._visit_all(node.body)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name)
        self._visit_all(node.body)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.split(".")[0], by_import=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star_import = True
            else:
                self._bind(alias.asname or alias.name, by_import=True)

    def visit_Global(self, node: ast.Global) -> None:  # no effect at module level
        pass

    # -- new scopes: evaluate what runs now, bind the name, leave bodies to symtable -----
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._visit_all(node.decorator_list)
        args = node.args
        self._visit_all(args.defaults + [d for d in args.kw_defaults if d is not None])
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                self.visit(a.annotation)
        if node.returns is not None:
            self.visit(node.returns)
        self._bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all(node.decorator_list + node.bases + [k.value for k in node.keywords])
        self._bind(node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_all(node.args.defaults + [d for d in node.args.kw_defaults if d is not None])

    def _comprehension(self, node) -> None:
        # Only the first iterable is evaluated in the enclosing scope.
        self.visit(node.generators[0].iter)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    # -- match statements bind capture names ---------------------------------------------
    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._bind(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._visit_all(node.keys + node.patterns)
        if node.rest:
            self._bind(node.rest)


def _nested_global_reads(table: symtable.SymbolTable) -> set[str]:
    """Globals read by every scope nested in ``table`` (functions, classes, comprehensions)."""
    names: set[str] = set()
    for child in table.get_children():
        for sym in child.get_symbols():
            if sym.is_referenced() and sym.is_global():
                names.add(sym.get_name())
            elif (
                child.get_type() == "class"
                and sym.is_referenced()
                and not sym.is_assigned()
                and not sym.is_free()
            ):
                names.add(sym.get_name())
        names |= _nested_global_reads(child)
    return names


@functools.lru_cache(maxsize=256)
def analyze(source: str, filename: str = "<cell>") -> CellAnalysis:
    """Return the inputs and outputs of ``source`` (cached: treat the result as read-only).

    Raises ``SyntaxError`` when the source does not parse, with the cell's own line numbers.
    """
    tree = parse(source, filename=filename)
    walker = _TopLevel()
    for stmt in tree.body:
        walker.visit(stmt)

    table = symtable.symtable(source, filename, "exec")
    nested = _nested_global_reads(table) - walker.bound

    # Builtins stay in the list: the notebook may shadow one (``input = ...``). The caller
    # ships what the notebook defines and leaves the rest to the worker's builtins.
    inputs = list(walker.inputs) + sorted(nested - set(walker.inputs))
    inputs = [n for n in inputs if not (n.startswith("__") and n.endswith("__"))]
    return CellAnalysis(
        inputs=inputs,
        # Modules are never outputs; a name bound only by imports is (almost surely) one.
        outputs=[
            n for n in walker.outputs if not n.startswith("__") and n not in walker.imported
        ],
        star_import=walker.star_import,
        has_expression=bool(tree.body) and isinstance(tree.body[-1], ast.Expr),
    )


def is_builtin(name: str) -> bool:
    return name in _BUILTINS
