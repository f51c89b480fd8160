from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, Numeric, Select, String, select, text

from app.core.db.keyset import CursorCodec, InvalidCursor, SortKey, Window, page_statement, scope_of
from app.core.pagination import MAX_CURSOR_LENGTH, MAX_OFFSET
from app.core.resources import Resources
from app.core.types import MAX_ID
from app.domains.items.models import Item
from app.domains.orders.models import Order
from app.domains.posts.models import Post
from app.domains.users.models import User
from app.domains.webhooks.models import WebhookDelivery
from app.models import Base

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


@pytest.mark.parametrize(
    "key",
    [
        ("12.50", 7),
        ("2026-11-25T10:00:00.123456+00:00", MAX_ID),
        (-(2**63), 0),
        ("", 1),
        ("plain ascii", 2),
        ("é語\U0001f600\U0010ffff", 3),
        ("\ud800 lone surrogate", 4),
        ("\U0001f600" * 200, 5),
    ],
)
def test_every_key_round_trips_exactly(key: tuple[Any, ...]) -> None:
    codec = CursorCodec("secret-one")
    token = codec.encode(SCOPE, key, offset=MAX_OFFSET)
    position = codec.decode(token, SCOPE)
    assert (position.key, position.offset) == (key, MAX_OFFSET)


def _longest_value(column: Column[Any]) -> Any:
    """The value of `column` whose cursor takes the most room."""
    kind = column.type
    if isinstance(kind, String):
        assert kind.length is not None, f"{column} sorts a list but has no length bound"
        return "\U0010ffff" * kind.length
    if isinstance(kind, Numeric):
        precision, scale = kind.precision or 0, kind.scale or 0
        return -Decimal("9" * (precision - scale) + "." + "9" * scale)
    if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl_instance", None), DateTime):
        return datetime.max.replace(tzinfo=UTC)
    assert isinstance(kind, Integer), f"no longest value known for {column}"
    return -(2**63)


# Every list sorts by a column and the id, with an index on them: that index names them all.
SORT_COLUMNS = [
    columns[-2]
    for table in Base.metadata.sorted_tables
    for index in sorted(table.indexes, key=lambda index: str(index.name))
    if len(columns := list(index.columns)) >= 2 and columns[-1].name == "id"
]


@pytest.mark.parametrize("column", SORT_COLUMNS, ids=str)
def test_a_cursor_fits_the_api_whatever_the_row_holds(column: Column[Any]) -> None:
    model = next(m.class_ for m in Base.registry.mappers if m.local_table is column.table)
    key = SortKey(getattr(model, column.key), model.id)
    row = SimpleNamespace(**{key.column.key: _longest_value(column), "id": MAX_ID})
    cursor = CursorCodec("secret-one").encode(SCOPE, key.key_of(row), offset=MAX_OFFSET)
    assert len(cursor) <= MAX_CURSOR_LENGTH


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
