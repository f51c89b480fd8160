from decimal import Decimal

import pytest

from app.core.db.keyset import Window
from app.domains.items.repository import escape_like
from app.domains.items.schemas import ItemQuery, ItemSort, SortOrder
from app.domains.items.service import page_key


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("50%", "50\\%"), ("a_b", "a\\_b"), ("back\\slash", "back\\\\slash"), ("plain", "plain")],
)
def test_escape_like_makes_wildcards_literal(text: str, escaped: str) -> None:
    assert escape_like(text) == escaped


def test_page_keys_differ_by_every_parameter() -> None:
    base = ItemQuery()
    first = Window(offset=0, limit=20)
    keys = {
        page_key(base, first),
        page_key(base, Window(offset=20, limit=20)),
        page_key(base, Window(offset=0, limit=21)),
        page_key(base, Window(offset=20, limit=20, after=("2026-11-25T10:00:00+00:00", 7))),
        page_key(base, Window(offset=20, limit=20, after=("2026-11-25T10:00:00+00:00", 8))),
        page_key(ItemQuery(q="lamp"), first),
        page_key(ItemQuery(min_price=Decimal("1.00")), first),
        page_key(ItemQuery(max_price=Decimal("1.00")), first),
        page_key(ItemQuery(sort=ItemSort.PRICE), first),
        page_key(ItemQuery(order=SortOrder.ASC), first),
    }
    assert len(keys) == 10
    assert page_key(ItemQuery(q="lamp"), first) == page_key(ItemQuery(q=" lamp "), first)
