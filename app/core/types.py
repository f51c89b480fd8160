"""Constrained field types shared by every domain's schemas."""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

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


def _a_json_number(value: object) -> object:
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# In a JSON body, integers and booleans are taken as JSON has them: `"5"` for a count, or
# `0`, `"no"` or `"off"` for a flag, is a client's mistake to report, not to guess at. A
# boolean is `StrictBool`; an integer is marked `JsonNumber`, so that it is a JSON number
# without a fraction (5 or 5.0: JSON has one number type, and a JSON Schema `integer` is
# exactly that), never a string or a boolean. The mark goes after the bounds, which then
# stay on the integer and in its schema: `Annotated[int, Field(ge=0), JsonNumber]`. Query
# parameters, which are all text, stay lax.
JsonNumber = BeforeValidator(_a_json_number)

# The largest value of a BIGINT primary key (and of SQLite's INTEGER): an id beyond it can
# name no row, and sending it to the database would overflow its parameter type.
MAX_ID = 2**63 - 1
# PostgreSQL INTEGER, the type of counts such as stock.
MAX_INT32 = 2**31 - 1

_CENT = Decimal("0.01")
# How money is written in responses: exactly two places, at most ten digits before the point
# (NUMERIC(12, 2)). [0-9], not \d, which in Python also matches other scripts' digits.
MONEY_PATTERN = "^[0-9]{1,10}\\.[0-9]{2}$"


class _MoneyString:
    """States the form money is written in."""

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


# Money in responses: a decimal written as a string with exactly two places ("12.50"), so no
# client parses it into a binary float.
Money = Annotated[
    Decimal,
    Field(max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
    _MoneyString(),
]

# A sum of many Money values (what a customer spent in all): the same rendering, without the
# NUMERIC(12, 2) bound that each stored amount has.
MoneyTotal = Annotated[
    Decimal,
    Field(decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
]


@dataclass(frozen=True, slots=True)
class MoneyInput:
    """An amount a client sends (`Annotated[Decimal, MoneyInput(...)]`), accepted exactly as
    the OpenAPI document states it: a JSON number with at most two places (`multipleOf:
    0.01`), or a string of ASCII digits with at most two places and no sign, exponent or
    spaces, whose `pattern` holds the bounds too (a JSON Schema puts `minimum` and `maximum`
    on numbers only). From 0, or from just above it, to `maximum`, a power of ten.

    Decimal's own parsing would take much more: "1e5", " 12 ", "+5", fullwidth digits or
    Arabic-Indic ones, none of which the document allows.
    """

    maximum: Decimal
    above_zero: bool

    def __post_init__(self) -> None:
        whole = self.maximum.to_integral_value()
        if whole != self.maximum or whole < 10 or str(whole).rstrip("0") != "1":
            raise ValueError("the maximum of money input is a power of ten, such as 1000000")

    @property
    def pattern(self) -> str:
        whole = str(self.maximum.to_integral_value())
        places = "(?:\\.[0-9]{1,2})?"
        below = f"[1-9][0-9]{{0,{len(whole) - 2}}}{places}"
        fractions = "0\\.(?:0[1-9]|[1-9][0-9]?)" if self.above_zero else f"0{places}"
        return f"^(?:{below}|{fractions}|{whole}(?:\\.00?)?)$"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        zero = Decimal(0)
        amount = core_schema.decimal_schema(
            gt=zero if self.above_zero else None,
            ge=None if self.above_zero else zero,
            le=self.maximum,
            max_digits=12,
            decimal_places=2,
            allow_inf_nan=False,
        )
        pattern = re.compile(self.pattern)

        def as_documented(value: Any) -> Any:
            # JSON's true and false are not numbers, whatever Python makes of them.
            if isinstance(value, bool) or (isinstance(value, str) and not pattern.fullmatch(value)):
                raise PydanticCustomError(
                    "money_format",
                    "Input should be a number or a string of digits with at most two "
                    "decimal places, from {lowest} to {maximum}",
                    {"lowest": "0.01" if self.above_zero else "0", "maximum": str(self.maximum)},
                )
            return value

        return core_schema.no_info_before_validator_function(
            as_documented,
            amount,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _two_places, return_schema=core_schema.str_schema(), when_used="json"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        for form in [json_schema, *json_schema.get("anyOf", [])]:
            if form.get("type") == "string":
                form["pattern"] = self.pattern
            elif form.get("type") == "number":
                form["multipleOf"] = 0.01
        return json_schema
