"""Conditions: a restricted evaluator; every escape is rejected when defined."""

from __future__ import annotations

import pytest

from pivot.jobs.condition import ConditionError, compile_condition

NAMES = ["loss", "epoch", "msg"]
VARS = {"loss": "0.25", "epoch": "12", "msg": "CUDA out of memory"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("float(loss) < 0.5", True),
        ("float(loss) < 0.1", False),
        ("int(epoch) >= 10 and float(loss) < 0.3", True),
        ("not (int(epoch) % 2 == 0)", False),
        ("0 < float(loss) < 1", True),
        ("'memory' in msg", True),
        ("len(msg) > 5 or False", True),
        ("abs(-3) + min(1, 2) + max(3, 4) == 8", True),
        ("str(int(epoch) * 2) == '24'", True),
        ("msg if int(epoch) > 100 else loss", True),
        ("epoch in ('11', '12')", True),
        ("-int(epoch) // 5 == -3", True),
    ],
)
def test_allowed_expressions_evaluate(source: str, expected: bool) -> None:
    assert compile_condition(source, NAMES).evaluate(VARS) is expected


ESCAPES = [
    # attribute access and dunders
    "msg.__class__",
    "msg.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0]",
    "msg.upper()",
    "__builtins__",
    "__import__('os').system('id')",
    "loss.__len__()",
    # eval/exec/import and other callables
    "eval('1+1')",
    "exec('x=1')",
    "compile('1', 'f', 'eval')",
    "open('/etc/passwd')",
    "getattr(msg, 'upper')",
    "globals()",
    "type(msg)",
    "vars()",
    "breakpoint()",
    # builtins used as values
    "max == max",
    "float",
    # lambdas, comprehensions, walrus, star
    "(lambda: 1)()",
    "[x for x in range(10**9)]",
    "[[0] * 9 for _ in msg for _ in msg]",
    "{x: 1 for x in msg}",
    "{x for x in msg}",
    "sum(x for x in msg)",
    "(y := 1)",
    "max(*msg)",
    "min(msg, key=len)",
    # huge numbers and repetitions
    "2 ** 10000",
    "9 ** 9 ** 9",
    "'a' * 10000000",
    "('a',) * 100000000",
    "10000000 * 'x'",
    "9" * 200 + " > 1",
    "'x' * 20000 == msg",
    # subscripts, f-strings, % formatting, dict/set literals
    "msg[0]",
    "msg[::-1]",
    "f'{msg}'",
    "'%s' % msg",
    "{'a': 1}",
    "{1, 2}",
    # unknown names, statements, syntax
    "os",
    "import os",
    "x = 1",
    "loss <",
    "1 / 0",
    # memory blow-ups through tuples: repetition and str() of a nested tuple
    "len(str((('a' * 9999,) * 10000,) * 10000)) > 0",
    "len(str((1,) * 10000)) > 0",
    "len(str((msg,) * 100)) > 0",
    "len(str(((((('a' * 9000,) + ('a' * 9000,)) + ('a' * 9000,)),),))) > 0",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_corpus_rejected_at_definition(source: str) -> None:
    with pytest.raises(ConditionError):
        compile_condition(source, NAMES)


def test_error_names_the_construct() -> None:
    with pytest.raises(ConditionError, match="attribute access is not allowed"):
        compile_condition("msg.__class__", NAMES)
    with pytest.raises(ConditionError, match=r"unknown name 'os' \(captures: epoch, loss, msg\)"):
        compile_condition("os", NAMES)


def test_overlong_expression_rejected() -> None:
    with pytest.raises(ConditionError, match="longer than"):
        compile_condition(" + ".join(["1"] * 600), NAMES)


def test_growth_from_captured_values_is_bounded_at_evaluation() -> None:
    # The text comes from the job, so only evaluation can see its size.
    cond = compile_condition("msg * int(epoch) != ''", NAMES)
    with pytest.raises(ConditionError, match="longer than"):
        cond.evaluate({"msg": "x" * 1000, "epoch": "1000000"})
    big = compile_condition("int(epoch) * int(epoch) * int(epoch) > 0", NAMES)
    with pytest.raises(ConditionError, match="bits"):
        big.evaluate({"epoch": "9" * 90})
    with pytest.raises(ConditionError, match="longer than 100"):
        big.evaluate({"epoch": "9" * 5000})


def test_bad_value_is_an_error_not_a_crash() -> None:
    cond = compile_condition("float(loss) < 1", NAMES)
    with pytest.raises(ConditionError, match="failed"):
        cond.evaluate({"loss": "nan-ish"})


def test_tuples_built_from_captured_values_are_bounded_at_evaluation() -> None:
    cond = compile_condition("len(str((msg, msg, msg, msg, msg))) > 0", NAMES)
    with pytest.raises(ConditionError, match="longer than"):
        cond.evaluate({"msg": "x" * 9000})
    assert cond.evaluate({"msg": "x" * 100})


def test_long_captures_can_still_be_measured_and_compared() -> None:
    # Captures may be long lines; measuring or comparing them allocates nothing.
    cond = compile_condition("len(msg) > 20000 and 'OOM' in msg and min(len(msg), 5) == 5", NAMES)
    assert cond.evaluate({"msg": "x" * 30000 + "OOM"})
