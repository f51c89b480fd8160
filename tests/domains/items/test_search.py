from decimal import Decimal

import pytest

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
    keys = {
        page_key(base, offset=0, limit=20),
        page_key(base, offset=20, limit=20),
        page_key(base, offset=0, limit=21),
        page_key(ItemQuery(q="lamp"), offset=0, limit=20),
        page_key(ItemQuery(min_price=Decimal("1.00")), offset=0, limit=20),
        page_key(ItemQuery(max_price=Decimal("1.00")), offset=0, limit=20),
        page_key(ItemQuery(sort=ItemSort.PRICE), offset=0, limit=20),
        page_key(ItemQuery(order=SortOrder.ASC), offset=0, limit=20),
    }
    assert len(keys) == 8
    assert page_key(ItemQuery(q="lamp"), offset=0, limit=20) == page_key(
        ItemQuery(q=" lamp "), offset=0, limit=20
    )
