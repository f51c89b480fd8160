"""The password rule, as the OpenAPI document states it."""

import re

import pytest
from pydantic import ValidationError

from app.domains.users.schemas import UserCreate


@pytest.mark.parametrize("password", ["correct-horse-7", "nodigitshere", "1" * 8, "٣abcdefg"])
def test_the_documented_password_pattern_is_the_rule(password: str) -> None:
    pattern = UserCreate.model_json_schema()["properties"]["password"]["pattern"]
    try:
        UserCreate(email="ada@example.com", full_name="Ada", password=password)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == bool(re.search(pattern, password))
