"""Constrained field types shared by every domain's schemas."""

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

# JSON Schema patterns (ECMA-262, unanchored unless anchored) for what the validators check.
NUL_FREE_PATTERN = "^[^\\x00]*$"


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; rejecting it here makes that a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class _NoNul(AfterValidator):
    """The NUL check, stated in the OpenAPI document as a pattern so clients see it."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        # A type that states a stricter pattern of its own (the password's) keeps it.
        if "pattern" not in schema:
            schema["pattern"] = _pattern(core_schema.get("schema", core_schema), schema)
        return schema


def _pattern(checked: Any, schema: JsonSchemaValue) -> str:
    if not checked.get("strip_whitespace"):
        return NUL_FREE_PATTERN
    # The lengths count what is left after stripping, so they move from minLength and
    # maxLength (which count every character sent) into the pattern: a first and a last
    # character that are not spaces, and between them what makes up the length.
    schema.pop("minLength", None)
    schema.pop("maxLength", None)
    shortest, longest = checked.get("min_length", 0), checked.get("max_length")
    edge = "[^\\s\\x00]"
    if longest == 1:
        text = edge
    else:
        inner = f"[^\\x00]{{{max(shortest - 2, 0)},{'' if longest is None else longest - 2}}}"
        text = f"{edge}(?:{inner}{edge})?" if shortest <= 1 else f"{edge}{inner}{edge}"
    if shortest == 0:
        text = f"(?:{text})?"
    return f"^\\s*{text}\\s*$"


NoNul = _NoNul(_reject_nul)
CleanStr = Annotated[str, NoNul]
# Where whitespace is stripped, put the StringConstraints before NoNul:
# `Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), NoNul]`. Placed
# after a validator, pydantic checks the lengths before stripping, so "   " would pass
# min_length=1 and be stored empty.

# The largest value of a BIGINT primary key (and of SQLite's INTEGER): an id beyond it can
# name no row, and sending it to the database would overflow its parameter type.
MAX_ID = 2**63 - 1
# PostgreSQL INTEGER, the type of counts such as stock.
MAX_INT32 = 2**31 - 1

_CENT = Decimal("0.01")
# At most ten digits before the point and two after: NUMERIC(12, 2). No sign: money a client
# sends is never negative, and the parser (`MoneyInput`) reads exactly this form.
MONEY_PATTERN = "^\\d{1,10}(\\.\\d{1,2})?$"


class _MoneyString:
    """States the form of money as a string; the bounds, a JSON Schema puts on numbers only."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        for form in [schema, *schema.get("anyOf", [])]:
            if form.get("type") == "string":
                form["pattern"] = MONEY_PATTERN
        return schema


def _two_places(value: Decimal) -> str:
    return str(value.quantize(_CENT))


# The form a client may write: ASCII digits, then optionally a point and more digits; how
# many of each (ten, then two) the decimal checks that follow count, naming the limit. Python's
# Decimal would also read exponents ("1e5"), signs, spaces, underscores and the digits of
# every script (fullwidth, Arabic-Indic), none of which the documented form allows.
_MONEY_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _parse_money(value: Any) -> Any:
    """A money string in the documented form, as a Decimal; numbers go on to the checks."""
    if isinstance(value, str):
        if _MONEY_TEXT.fullmatch(value) is None:
            raise PydanticCustomError(
                "decimal_parsing",
                "Input should be ASCII digits with at most two decimal places, such as '12.50'",
            )
        return Decimal(value)
    if isinstance(value, bool):
        # A bool is an int to Python; true is not a price.
        raise PydanticCustomError("decimal_type", "Input should be a number or a string")
    return value


# Money in the API: a decimal with at most two places, written as a string with exactly
# two ("12.50") so no client parses it into a binary float. NaN and infinities are refused.
Money = Annotated[
    Decimal,
    Field(max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
    _MoneyString(),
]

# What makes money sent by a client exact: a string must be ASCII digits with an optional
# point and up to two places, a number any finite one with at most two places; both then
# meet the field's bounds. It goes last, after the bounds:
# `Annotated[Money, Field(gt=0, le=MAX_PRICE), MoneyInput]`. Placed before them, the bounds
# would still be checked, but pydantic could no longer state them in the JSON Schema.
MoneyInput = BeforeValidator(_parse_money)

# A sum of many Money values (what a customer spent in all): the same rendering, without the
# NUMERIC(12, 2) bound that each stored amount has.
MoneyTotal = Annotated[
    Decimal,
    Field(decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
]
