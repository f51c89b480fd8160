"""The shared field types say in the OpenAPI document what their validators check."""

import re
from typing import Annotated, Any

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from app.core.types import MONEY_PATTERN, NUL_FREE_PATTERN, CleanStr, Money, NoNul

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
    for value in ("", "docs", "1.234", "1e3"):
        assert not re.search(MONEY_PATTERN, value), value
