from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.core.schemas import PartialUpdate
from app.core.types import CleanStr, NoNul

MAX_BODY_LENGTH = 20_000

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Body = Annotated[CleanStr, StringConstraints(min_length=1, max_length=MAX_BODY_LENGTH)]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    body: Body


class PostUpdate(PartialUpdate):
    """A partial change: only the fields sent are applied."""

    title: Title | None = None
    body: Body | None = None


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    author_id: int
    created_at: datetime
    updated_at: datetime
