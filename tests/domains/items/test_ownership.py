"""The catalog's one ownership rule: an item's owner, or an administrator acting with
`items:admin`, changes it."""

from decimal import Decimal

import pytest

from app.domains.items.exceptions import NotItemOwner
from app.domains.items.models import Item
from app.domains.items.service import ensure_can_change
from app.domains.users.models import Role
from tests.factories import principal


def item_of(owner_id: int) -> Item:
    return Item(id=1, name="Lamp", price=Decimal("1.00"), stock=1, owner_id=owner_id)


def test_the_owner_and_administrators_may_change_an_item() -> None:
    ensure_can_change(principal(3), item_of(3))
    ensure_can_change(principal(4, role=Role.ADMIN), item_of(3))


def test_anyone_else_may_not() -> None:
    with pytest.raises(NotItemOwner):
        ensure_can_change(principal(4), item_of(3))


def test_an_administrator_without_items_admin_may_change_only_their_own() -> None:
    scoped = principal(4, role=Role.ADMIN, scopes=["items:write"])
    ensure_can_change(scoped, item_of(4))
    with pytest.raises(NotItemOwner):
        ensure_can_change(scoped, item_of(3))


def test_the_scope_without_the_role_is_not_enough() -> None:
    with pytest.raises(NotItemOwner):
        ensure_can_change(principal(4, scopes=["items:write", "items:admin"]), item_of(3))
