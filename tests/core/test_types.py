"""The shared field types say in the OpenAPI document what their validators check."""

import re
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from app.core.types import MONEY_PATTERN, NUL_FREE_PATTERN, CleanStr, Money, MoneyInput, NoNul

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5), NoNul]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3), NoNul]


def _agree(kind: Any, value: str) -> bool:
    """Whether the documented pattern and the validator give the same answer for `value`."""
    schema = TypeAdapter(kind).json_schema()
    forms = [schema, *schema.get("anyOf", [])]
    [pattern] = [form["pattern"] for form in forms if form.get("type") == "string"]
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


def test_money_documents_the_form_it_is_written_in() -> None:
    forms = TypeAdapter(Money).json_schema(mode="serialization")
    assert forms == {"type": "string", "pattern": MONEY_PATTERN}
    for value in ("12.5", "7", "0.05", "1000000"):
        written = TypeAdapter(Money).dump_json(Decimal(value)).decode().strip('"')
        assert re.search(MONEY_PATTERN, written), written


MONEY_TEXT = [
    *("12.50", "7", "0.5", "0.05", "0.01", "999999.99", "1000000", "1000000.0", "1000000.00"),
    *("0", "0.0", "0.00", "-5", "-0.01", "1000000.01", "1000001", "99999999", "1.005", "01"),
    *("1e5", "1E2", "\uff11\uff12", "\u0661\u0662", "\u0967", " 12", "12 ", "+5", "12.", ".5"),
    *("", "NaN", "Infinity", "12,50", "0x10", "1_000"),
]


@pytest.mark.parametrize("above_zero", [True, False])
@pytest.mark.parametrize("value", MONEY_TEXT)
def test_money_input_accepts_exactly_the_text_it_documents(above_zero: bool, value: str) -> None:
    kind = Annotated[Decimal, MoneyInput(maximum=Decimal(1_000_000), above_zero=above_zero)]
    assert _agree(kind, value), repr(value)


@pytest.mark.parametrize("above_zero", [True, False])
def test_money_input_documents_its_number_form(above_zero: bool) -> None:
    kind = Annotated[Decimal, MoneyInput(maximum=Decimal(1_000_000), above_zero=above_zero)]
    [number] = [
        form for form in TypeAdapter(kind).json_schema()["anyOf"] if form["type"] == "number"
    ]
    assert number["multipleOf"] == 0.01
    assert number["maximum"] == 1_000_000
    bound = "exclusiveMinimum" if above_zero else "minimum"
    assert number[bound] == 0
    for refused in (12.345, True, 1_000_000.01, -1):
        with pytest.raises(ValidationError):
            TypeAdapter(kind).validate_python(refused)
    assert TypeAdapter(kind).validate_python(12.5) == Decimal("12.5")
