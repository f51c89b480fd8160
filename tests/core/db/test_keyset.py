from typing import Any

import pytest
from sqlalchemy import Select, select, text

from app.core.db.keyset import CursorCodec, InvalidCursor, SortKey, Window, page_statement, scope_of
from app.core.resources import Resources
from app.domains.items.models import Item
from app.domains.orders.models import Order
from app.domains.posts.models import Post
from app.domains.users.models import User
from app.domains.webhooks.models import WebhookDelivery

SCOPE = scope_of("items", {"sort": "price"})


def test_a_cursor_round_trips_and_resists_tampering() -> None:
    codec = CursorCodec("secret-one")
    token = codec.encode(SCOPE, ("12.50", 7), offset=40)
    position = codec.decode(token, SCOPE)
    assert (position.key, position.offset) == (("12.50", 7), 40)

    body, signature = token.split(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    for bad in (
        f"{flipped}.{signature}",
        f"{body}.{signature[::-1]}",
        body,
        "",
        "...",
        "ü.x",
        "a.é",
        "é.é",
    ):
        with pytest.raises(InvalidCursor):
            codec.decode(bad, SCOPE)
    with pytest.raises(InvalidCursor):
        codec.decode(token, scope_of("items", {"sort": "name"}))
    with pytest.raises(InvalidCursor):
        CursorCodec("secret-two").decode(token, SCOPE)


def test_scopes_differ_by_list_and_filters() -> None:
    scopes = {
        scope_of("items"),
        scope_of("posts"),
        scope_of("items", {"sort": "price"}),
        scope_of("items", {"sort": "price", "order": "asc"}),
    }
    assert len(scopes) == 4
    assert scope_of("items", {"a": 1, "b": 2}) == scope_of("items", {"b": 2, "a": 1})


def test_a_key_of_the_wrong_type_is_refused() -> None:
    key = SortKey(Item.price, Item.id)
    for after in [("not a price", 1), ("12.50",), ("12.50", "1"), (12.5, 1)]:
        with pytest.raises(InvalidCursor):
            key.seek(after)


AFTER_TIME = "2026-11-25T10:00:00+00:00"
SEEKS: list[tuple[Select[Any], SortKey, tuple[Any, ...], str]] = [
    (
        select(Item),
        SortKey(Item.created_at, Item.id, descending=True),
        (AFTER_TIME, 5),
        "ix_items_created_at_id",
    ),
    (select(Item), SortKey(Item.price, Item.id), ("12.50", 5), "ix_items_price_id"),
    (select(Item), SortKey(Item.name, Item.id, descending=True), ("lamp", 5), "ix_items_name_id"),
    (
        select(Order).where(Order.user_id == 3),
        SortKey(Order.created_at, Order.id, descending=True),
        (AFTER_TIME, 5),
        "ix_orders_user_id_created_at_id",
    ),
    (
        select(Post),
        SortKey(Post.created_at, Post.id, descending=True),
        (AFTER_TIME, 5),
        "ix_posts_created_at_id",
    ),
    (
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == 2),
        SortKey(WebhookDelivery.created_at, WebhookDelivery.id, descending=True),
        (AFTER_TIME, 5),
        "ix_webhook_deliveries_endpoint_id_created_at_id",
    ),
]


@pytest.mark.parametrize(("statement", "key", "after", "index"), SEEKS)
async def test_the_next_page_is_an_index_seek(
    resources: Resources,
    statement: Select[Any],
    key: SortKey,
    after: tuple[Any, ...],
    index: str,
) -> None:
    page = page_statement(statement, key, Window(offset=0, limit=20, after=after))
    async with resources.engine.begin() as connection:
        sql = str(page.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        if connection.dialect.name == "postgresql":
            # The tables are nearly empty, where a scan is cheaper; the question is whether
            # the index can serve the seek at all.
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(row[0] for row in await connection.exec_driver_sql(f"EXPLAIN {sql}"))
            assert f"using {index}" in plan or f"on {index}" in plan, plan
            assert "Index Cond:" in plan, plan
            assert "ROW(" in plan, plan
        else:
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            # Each row is (id, parent, unused, detail).
            plan = "\n".join(str(row[-1]) for row in rows)
            assert f"USING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


async def test_users_seek_on_the_primary_key(resources: Resources) -> None:
    page = page_statement(select(User), SortKey(User.id, User.id), Window(0, 20, after=(9, 9)))
    sql = str(page.compile(compile_kwargs={"literal_binds": True}))
    assert "users.id > 9" in sql
