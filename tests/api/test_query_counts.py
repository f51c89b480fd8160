"""SQL statements per request on the hot paths: an N+1 or a stray query fails here, long
before a benchmark would notice it."""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from app.core.resources import Resources
from app.domains.orders.repository.postgres import PLACE_ORDER
from tests.factories import ITEMS, ORDERS, create_item, order_body, user
from tests.statements import counted_statements


class Statements:
    """The first word of each statement a block sent (SELECT, INSERT, ...)."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    @property
    def seen(self) -> list[str]:
        return [statement.split(None, 1)[0].upper() for statement in self.sent]

    @property
    def count(self) -> int:
        return len(self.sent)


@contextmanager
def statements(resources: Resources) -> Iterator[Statements]:
    with counted_statements(resources) as sent:
        yield Statements(sent)


async def test_an_item_read_is_one_query_then_none_while_cached(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    item = await create_item(resources, owner.id)
    with statements(resources) as uncached:
        assert (await client.get(f"{ITEMS}/{item}")).status_code == 200
    with statements(resources) as cached:
        assert (await client.get(f"{ITEMS}/{item}")).status_code == 200
    assert (uncached.count, cached.count) == (1, 0), (uncached.seen, cached.seen)


async def test_a_list_page_is_a_count_and_a_select_then_nothing_while_cached(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    for _ in range(25):
        await create_item(resources, owner.id)
    page = f"{ITEMS}?limit=20&sort=price&order=asc"
    with statements(resources) as uncached:
        response = await client.get(page)
    assert len(response.json()["items"]) == 20
    with statements(resources) as cached:
        await client.get(page)
    assert (uncached.count, cached.count) == (2, 0), (uncached.seen, cached.seen)


async def test_a_list_without_its_total_runs_no_count(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    for _ in range(3):
        await create_item(resources, owner.id)
    for path in (f"{ITEMS}?include_total=false", f"{ORDERS}?include_total=false"):
        with statements(resources) as listed:
            response = await client.get(path, headers=owner.headers)
        assert response.status_code == 200
        assert response.json()["total"] is None
        # The orders list also reads the caller (the principal): no count either way.
        assert "SELECT count" not in " ".join(listed.sent), listed.sent
    counted = await client.get(f"{ITEMS}?include_total=true&limit=1")
    assert counted.json()["total"] == 3


async def test_the_current_user_is_one_query(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    with statements(resources) as seen:
        assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 200
    assert seen.seen == ["SELECT"]


async def test_placing_an_order_is_one_call_once_its_prices_are_known(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    items = [await create_item(resources, buyer.id, stock=50) for _ in range(3)]
    one_line = order_body((items[0], 1))
    three_lines = order_body(*((item, 2) for item in items))

    with statements(resources) as cold:
        assert (await client.post(ORDERS, json=three_lines, headers=buyer.headers)).is_success
    with statements(resources) as single:
        assert (await client.post(ORDERS, json=one_line, headers=buyer.headers)).is_success
    with statements(resources) as triple:
        assert (await client.post(ORDERS, json=three_lines, headers=buyer.headers)).is_success
    with statements(resources) as keyed:
        headers = buyer.headers | {"Idempotency-Key": "counted"}
        assert (await client.post(ORDERS, json=one_line, headers=headers)).is_success

    if resources.calls is not None:
        # The principal, then one call that claims, takes the stock and records everything;
        # with read replicas, the primary's WAL position after the commit: the fence that
        # sends the next catalog reads to a source that has replayed it.
        fence = ["SELECT"] if resources.settings.read_replica_urls else []
        assert single.seen == ["SELECT", "SELECT", *fence], single.sent
        assert single.sent[1] == PLACE_ORDER.call
        assert keyed.sent == single.sent
    else:
        # The principal, then one transaction of plain statements holding the write lock:
        # the items checked, their stock taken, the order, its lines, its audit event and
        # its two job log messages (one statement each, whatever the number of lines).
        expected = ["SELECT", "BEGIN", "SELECT", "UPDATE", "INSERT", "INSERT", "INSERT"]
        assert single.seen == [*expected, "INSERT", "COMMIT"], single.sent
        # The key read first, and written with the order.
        assert keyed.seen == [
            "SELECT",
            "BEGIN",
            "SELECT",
            *expected[2:],
            "INSERT",
            "INSERT",
            "COMMIT",
        ]
    # Nothing per line, and prices this process has not seen cost one read first.
    assert triple.seen == single.seen, (single.seen, triple.seen)
    assert cold.count == single.count + 1, cold.sent
    # The job log's wake-up is sent after the commit (app.core.jobs.wakeups), never with it.
    assert not [sql for sql in cold.sent + single.sent if "notify" in sql.lower()]
