"""Constrained field types shared by every domain's schemas."""

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; rejecting it here makes that a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_reject_nul)
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


def _two_places(value: Decimal) -> str:
    return str(value.quantize(_CENT))


# Money in the API: a decimal with at most two places, written as a string with exactly
# two ("12.50") so no client parses it into a binary float. NaN and infinities are refused.
Money = Annotated[
    Decimal,
    Field(max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
]

# A sum of many Money values (what a customer spent in all): the same rendering, without the
# NUMERIC(12, 2) bound that each stored amount has.
MoneyTotal = Annotated[
    Decimal,
    Field(decimal_places=2, allow_inf_nan=False),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
]
