"""Placeholders: $1 never eats $10's digit; a value is never substituted again."""

from __future__ import annotations

from pivot.jobs.substitute import Values, placeholders, substitute

GROUPS = tuple(f"g{i}" for i in range(1, 12))


def test_ten_is_not_one_followed_by_zero() -> None:
    v = Values(whole="W", groups=GROUPS)
    assert substitute("$1 $10 $11 ${1}0 $0", v) == "g1 g10 g11 g10 W"


def test_substituted_values_are_not_substituted_again() -> None:
    v = Values(groups=("$2", "secret"), names={"a": "${b}", "b": "B", "JOB_ID": "42"})
    assert substitute("$1|$a|${JOB_ID}", v) == "$2|${b}|42"


def test_names_braces_and_dollar_escape() -> None:
    v = Values(names={"error": "OOM", "JOB_ID": "7", "HOSTNAME": "n1"})
    assert substitute("OOM on ${JOB_ID}@${HOSTNAME}: $error costs $$5", v) == (
        "OOM on 7@n1: OOM costs $5"
    )
    assert substitute("${error}s and $errors", v) == "OOMs and $errors"


def test_unknown_placeholders_stay_visible() -> None:
    v = Values(groups=("a",))
    assert substitute("$2 $nope ${x}", v) == "$2 $nope ${x}"


def test_placeholders_listed() -> None:
    assert placeholders("$1 ${JOB_ID} $name $$ $10") == ["1", "JOB_ID", "name", "10"]
