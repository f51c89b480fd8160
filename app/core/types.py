"""Constrained field types shared by every domain's schemas."""

from typing import Annotated

from pydantic import AfterValidator


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; rejecting it here makes that a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Place after any length constraints (`Annotated[str, StringConstraints(...), NoNul]`) so
# their messages speak of characters.
NoNul = AfterValidator(_reject_nul)
CleanStr = Annotated[str, NoNul]
