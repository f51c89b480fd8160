"""The shared field types say in the OpenAPI document what their validators check."""

import re
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from app.core.types import MONEY_PATTERN, NUL_FREE_PATTERN, CleanStr, Money, MoneyInput, NoNul

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5), NoNul]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3), NoNul]


def _agree(kind: Any, value: str) -> bool:
    """Whether the documented pattern and the validator give the same answer for `value`."""
    pattern = TypeAdapter(kind).json_schema()["pattern"]
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        valid = False
    else:
        valid = True
    return valid == bool(re.search(pattern, value))


def test_text_documents_that_it_refuses_nul() -> None:
    assert TypeAdapter(CleanStr).json_schema()["pattern"] == NUL_FREE_PATTERN
    for value in ("", "plain", "a\x00b"):
        assert _agree(CleanStr, value), repr(value)


@pytest.mark.parametrize(
    "value", ["a", " a ", "abcde", "  abcde\t", "abcdef", "   ", "\u00a0", "", "a\x00", "a b"]
)
def test_stripped_lengths_are_documented_as_the_validator_counts_them(value: str) -> None:
    schema = TypeAdapter(Name).json_schema()
    # Raw lengths would count the spaces the validator strips first.
    assert "minLength" not in schema
    assert "maxLength" not in schema
    assert _agree(Name, value)


@pytest.mark.parametrize("value", ["abc", " abc ", "a b", "ab", "  ab  ", "a\x00c"])
def test_a_longer_stripped_minimum_is_documented_too(value: str) -> None:
    assert _agree(Code, value)


def test_money_documents_the_string_form_it_accepts() -> None:
    forms = TypeAdapter(Money).json_schema(mode="validation")["anyOf"]
    assert {"type": "string", "pattern": MONEY_PATTERN} in forms
    for value in ("12.50", "7", "0.5"):
        TypeAdapter(Money).validate_python(value)
        assert re.search(MONEY_PATTERN, value)
    # ECMA-262's \d, the one the document's readers use, is ASCII only.
    for value in ("", "docs", "1.234", "1e3", "-2", "+2", " 2", "\uff12"):
        assert not re.search(MONEY_PATTERN, value, re.ASCII), value


Amount = Annotated[Money, Field(gt=0, le=Decimal("1000000.00")), MoneyInput]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("12.50", "12.50"),
        ("7", "7"),
        ("0.5", "0.5"),
        ("1000000.00", "1000000.00"),
        (12.5, "12.5"),
        (100000, "100000"),
        (1e5, "100000.0"),
        (Decimal("3.10"), "3.10"),
    ],
)
def test_client_money_reads_digits_and_numbers(value: object, parsed: str) -> None:
    assert TypeAdapter(Amount).validate_python(value) == Decimal(parsed)


@pytest.mark.parametrize(
    "value",
    [
        "1e5",
        "1E+2",
        "\uff11\uff12",
        "\u0661\u0662",
        "\u0967\u0968",
        "+5",
        "-5",
        "-0",
        " 5",
        "5 ",
        "5\n",
        "1_000",
        "12.",
        ".5",
        "1.005",
        "",
        "12345678901",
        True,
        0,
        -1,
        0.001,
        1000000.01,
        float("nan"),
        float("inf"),
    ],
)
def test_client_money_refuses_every_other_form(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Amount).validate_python(value)


def test_client_money_still_documents_its_bounds() -> None:
    number, string = TypeAdapter(Amount).json_schema()["anyOf"]
    assert number == {"type": "number", "exclusiveMinimum": 0.0, "maximum": 1000000.0}
    assert string == {"type": "string", "pattern": MONEY_PATTERN}
