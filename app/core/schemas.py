"""Shared bases for request schemas, the body of a 202 Accepted, and a JSON body rendered once."""

from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator


class PartialUpdate(BaseModel):
    """A PATCH body: only the fields sent are applied (`model_dump(exclude_unset=True)`).

    Unknown fields are refused, and so is an explicit null: every updatable column is
    required, so a null would otherwise reach the database or be silently dropped.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(field for field in self.model_fields_set if getattr(self, field) is None)
        if nulls:
            raise ValueError(f"may not be null: {', '.join(nulls)}")
        return self

    def apply_to(self, target: Any) -> None:
        """Set the sent fields on `target` (an ORM object); fields not sent stay as they are."""
        for field, value in self.model_dump(exclude_unset=True).items():
            setattr(target, field, value)


class Accepted(BaseModel):
    """The body of a 202: the request was taken, and what happens next."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "A link is on its way to your email."}]}
    )

    detail: str


@dataclass(frozen=True, slots=True)
class JSONBody:
    """A JSON response body rendered once, for reads that cache and serve it as it is: a
    cached read then costs no decoding and re-encoding of the model it came from."""

    data: bytes

    @classmethod
    def of(cls, model: BaseModel) -> "JSONBody":
        return cls(model.model_dump_json(by_alias=True).encode())
