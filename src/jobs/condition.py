"""Watcher conditions: a small expression language on Python's ``ast``, never ``eval``.

Allowed: literals (numbers, strings, booleans, None), names of captures and
built-in variables, comparisons (including chained and ``in``), ``and or not``,
``+ - * / // %`` and unary minus, ``x if c else y``, tuples and lists as
literals, and calls of ``float int str len abs min max`` with positional
arguments. Everything else (attribute access, subscripts, lambdas,
comprehensions, keyword arguments, ``**``, other functions) is rejected when
the watcher is defined, with the offending construct named.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Condition", "ConditionError", "compile_condition"]

MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 200
MAX_STRING = 10_000
MAX_INT_BITS = 256


class ConditionError(ValueError):
    """A condition that is not allowed, or that failed while evaluating."""


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "float": float,
    "int": int,
    "str": str,
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
}

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: operator.contains(b, a),
    ast.NotIn: lambda a, b: not operator.contains(b, a),
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Tuple,
    ast.List,
    *_BINOPS,
    *_CMPOPS,
)

_NICE_NAMES = {
    "Attribute": "attribute access",
    "Subscript": "subscripts",
    "Lambda": "lambda",
    "Pow": "the ** operator",
    "ListComp": "comprehensions",
    "GeneratorExp": "comprehensions",
    "DictComp": "comprehensions",
    "SetComp": "comprehensions",
    "NamedExpr": "assignment expressions",
    "Starred": "star arguments",
    "JoinedStr": "f-strings",
    "Dict": "dict literals",
    "Set": "set literals",
    "Await": "await",
    "Yield": "yield",
}


class Condition:
    """A validated condition; :meth:`evaluate` it over a watcher's variables."""

    def __init__(self, source: str, tree: ast.Expression) -> None:
        self.source = source
        self._tree = tree

    def evaluate(self, variables: Mapping[str, str]) -> bool:
        """True or False; raises :class:`ConditionError` when evaluation fails."""
        try:
            return bool(_Evaluator(variables).eval(self._tree.body))
        except ConditionError:
            raise
        except (ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
            raise ConditionError(f"condition {self.source!r} failed: {exc}") from None
        except (MemoryError, RecursionError):
            raise ConditionError(f"condition {self.source!r} needs too much memory") from None


def compile_condition(source: str, names: Sequence[str]) -> Condition:  # noqa: PLR0912
    """Parse and validate a condition; only ``names`` (and the functions) may appear."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ConditionError(f"condition longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {source!r} is not an expression: {exc.msg}") from None
    known = set(names)
    for count, node in enumerate(ast.walk(tree), start=1):
        if count > MAX_NODES:
            raise ConditionError(f"condition has more than {MAX_NODES} parts")
        if not isinstance(node, _ALLOWED_NODES):
            kind = type(node).__name__
            raise ConditionError(
                f"condition {source!r}: {_NICE_NAMES.get(kind, kind)} is not allowed"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
                raise ConditionError(
                    f"condition {source!r}: only {', '.join(sorted(_FUNCTIONS))} may be called"
                )
            if node.keywords:
                raise ConditionError(f"condition {source!r}: keyword arguments are not allowed")
        elif isinstance(node, ast.Name):
            if node.id not in known and node.id not in _FUNCTIONS:
                allowed = ", ".join(sorted(known)) or "none"
                raise ConditionError(
                    f"condition {source!r}: unknown name {node.id!r} (captures: {allowed})"
                )
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant | ast.JoinedStr)
            and isinstance(node.left.value if isinstance(node.left, ast.Constant) else "", str)
        ):
            raise ConditionError(f"condition {source!r}: string formatting with % is not allowed")
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mult)
            and isinstance(node.left, ast.Tuple | ast.List)
            | isinstance(node.right, ast.Tuple | ast.List)
        ):
            raise ConditionError(f"condition {source!r}: repeating a tuple is not allowed")
        elif isinstance(node, ast.Constant) and not isinstance(
            node.value, int | float | str | bool | type(None)
        ):
            raise ConditionError(f"condition {source!r}: constant {node.value!r} not allowed")
    # A function name used as a value (e.g. `max == 1`) would leak a builtin.
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _FUNCTIONS and id(node) not in callees:
            raise ConditionError(f"condition {source!r}: {node.id!r} can only be called")
    _fold_constants(source, tree)
    return Condition(source, tree)


def _fold_constants(source: str, tree: ast.Expression) -> None:
    # Parts without names (`'a' * 10000000`, `1 / 0`, a 300-digit literal) are
    # evaluated now, so an expression that can only blow up fails at definition.
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            try:
                _check_size(node.value)
            except ConditionError as exc:
                raise ConditionError(f"condition {source!r}: {exc}") from None
        if not isinstance(node, ast.BinOp | ast.UnaryOp | ast.Call):
            continue
        if any(isinstance(n, ast.Name) and n.id not in _FUNCTIONS for n in ast.walk(node)):
            continue
        try:
            _Evaluator({}).eval(node)
        except ConditionError as exc:
            raise ConditionError(f"condition {source!r}: {exc}") from None
        except (ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
            raise ConditionError(f"condition {source!r} always fails: {exc}") from None
        except (MemoryError, RecursionError):
            raise ConditionError(f"condition {source!r} needs too much memory") from None


def _weight(value: Any) -> int:
    """An upper bound on the characters ``str(value)`` takes, computed without building it.

    Nested tuples count every element at every level, so ``((s,) * n,) * m``
    weighs ``len(s) * n * m``, not ``m``. Strings count four per character
    (``repr`` inside a tuple may escape each one as ``\\xNN``).
    """
    if isinstance(value, str):
        return 4 * len(value) + 2
    if isinstance(value, tuple | list):
        total = 2
        for item in value:
            total += _weight(item) + 2
            if total > MAX_STRING * 4:
                break
        return total
    return 32  # numbers (at most MAX_INT_BITS bits), booleans, None


def _check_size(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ConditionError(f"integer larger than {MAX_INT_BITS} bits")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise ConditionError(f"value longer than {MAX_STRING}")
    if isinstance(value, tuple | list) and _weight(value) > MAX_STRING * 4:
        raise ConditionError(f"value longer than {MAX_STRING}")
    return value


class _Evaluator:
    def __init__(self, variables: Mapping[str, str]) -> None:
        self._vars = variables

    def eval(self, node: ast.expr) -> Any:  # noqa: PLR0911, PLR0912 - one branch per node type
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._vars.get(node.id, "")
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: Any = True
                for v in node.values:
                    result = self.eval(v)
                    if not result:
                        return result
                return result
            result = False
            for v in node.values:
                result = self.eval(v)
                if result:
                    return result
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            if isinstance(node.op, ast.USub):
                return _check_size(-operand)
            return _check_size(+operand)
        if isinstance(node, ast.BinOp):
            left = self.eval(node.left)
            right = self.eval(node.right)
            self._guard_repeat(node.op, left, right)
            return _check_size(_BINOPS[type(node.op)](left, right))
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.eval(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
        if isinstance(node, ast.Tuple | ast.List):
            return _check_size(tuple(self.eval(e) for e in node.elts))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            # Tuples are bounded before str() renders them; a long capture may
            # still be measured (len) or compared, only results are bounded.
            args = [self.eval(a) for a in node.args]
            for arg in args:
                if isinstance(arg, tuple | list):
                    _check_size(arg)
            if node.func.id == "int" and args and isinstance(args[0], str) and len(args[0]) > 100:
                raise ConditionError("int() of a string longer than 100 characters")
            return _check_size(_FUNCTIONS[node.func.id](*args))
        raise ConditionError(f"unsupported expression {type(node).__name__}")

    @staticmethod
    def _guard_repeat(op: ast.operator, left: Any, right: Any) -> None:
        # "x" * 10**9 would allocate before any size check could run.
        if isinstance(op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str)
                    and isinstance(n, int)
                    and len(seq) * max(n, 0) > MAX_STRING
                ):
                    raise ConditionError(f"value longer than {MAX_STRING}")
                if isinstance(seq, tuple) and isinstance(n, int):
                    raise ConditionError("repeating a tuple is not allowed")
        if (
            isinstance(op, ast.Add)
            and isinstance(left, tuple)
            and isinstance(right, tuple)
            and _weight(left) + _weight(right) > MAX_STRING * 4
        ):
            raise ConditionError(f"value longer than {MAX_STRING}")
        if isinstance(op, ast.Mod) and isinstance(left, str):
            raise ConditionError("string formatting with % is not allowed")
