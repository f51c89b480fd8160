"""Constrained field types shared by every domain's schemas."""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

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

# In a JSON body, an integer or a boolean is strict (`Strict()`, `StrictBool`): JSON has both
# types, so `"5"` for a count or `0`, `"no"` or `"off"` for a flag is a client's mistake to
# report, not to guess at. Query parameters, which are all text, stay lax.

# The largest value of a BIGINT primary key (and of SQLite's INTEGER): an id beyond it can
# name no row, and sending it to the database would overflow its parameter type.
MAX_ID = 2**63 - 1
# PostgreSQL INTEGER, the type of counts such as stock.
MAX_INT32 = 2**31 - 1

_CENT = Decimal("0.01")
# At most ten digits before the point and two after: NUMERIC(12, 2).
MONEY_PATTERN = "^-?\\d{1,10}(\\.\\d{1,2})?$"


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


# Money in the API: a decimal with at most two places, written as a string with exactly
# two ("12.50") so no client parses it into a binary float. NaN and infinities are refused.
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
