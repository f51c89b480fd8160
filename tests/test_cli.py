"""The operator commands, run as an operator runs them: a process with the service's settings."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.jobs import OutboxMessage, OutboxStatus
from app.core.resources import Resources
from tests.commands import cli
from tests.core.jobs.outbox_helpers import commit_messages, stored

ROOT = Path(__file__).resolve().parent.parent


async def set_status(resources: Resources, ids: list[int], **values: object) -> None:
    async with resources.sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values)
        )


async def test_list_shows_dead_messages_newest_first(
    migrated: Settings, resources: Resources
) -> None:
    await commit_messages(resources.sessionmaker, {"n": 1}, {"n": 2}, {"n": 3})
    first, second, _ = (message.id for message in await stored(resources.sessionmaker))
    await set_status(
        resources,
        [first, second],
        status=OutboxStatus.DEAD,
        attempts=10,
        last_error="SMTPConnectError: refused\nby peer",
    )

    code, out, err = await cli(migrated, "outbox", "list")

    assert code == 0, err
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(second), str(first)]
    assert lines[0].split("\t")[1:3] == ["test.note", "10 attempts"]
    assert lines[0].endswith("SMTPConnectError: refused by peer")
    assert "2 dead message(s)" in err


async def test_retry_by_id_or_all(migrated: Settings, resources: Resources) -> None:
    await commit_messages(resources.sessionmaker, {"n": 1}, {"n": 2}, {"n": 3})
    ids = [message.id for message in await stored(resources.sessionmaker)]
    await set_status(resources, ids[:2], status=OutboxStatus.DEAD, attempts=10)

    code, out, _ = await cli(migrated, "outbox", "retry", str(ids[0]))
    assert code == 0
    assert out.strip() == "1 dead message(s) queued again"
    statuses = {m.id: (m.status, m.attempts) for m in await stored(resources.sessionmaker)}
    assert statuses[ids[0]] == (OutboxStatus.PENDING, 0)
    assert statuses[ids[1]] == (OutboxStatus.DEAD, 10)

    code, out, _ = await cli(migrated, "outbox", "retry", "--all")
    assert code == 0
    assert out.strip() == "1 dead message(s) queued again"
    assert {m.status for m in await stored(resources.sessionmaker)} == {OutboxStatus.PENDING}

    code, _, err = await cli(migrated, "outbox", "retry")
    assert code == 1
    assert "--all" in err


async def test_purge_removes_delivered_messages_past_the_retention(
    migrated: Settings, resources: Resources
) -> None:
    await commit_messages(resources.sessionmaker, {"n": 1}, {"n": 2}, {"n": 3})
    old, recent, pending = (message.id for message in await stored(resources.sessionmaker))
    ten_days_ago = utcnow() - timedelta(days=10)
    await set_status(
        resources,
        [old],
        status=OutboxStatus.DELIVERED,
        available_at=ten_days_ago,
        delivered_at=ten_days_ago,
    )
    await set_status(resources, [recent], status=OutboxStatus.DELIVERED, delivered_at=utcnow())
    await set_status(resources, [pending], available_at=ten_days_ago)

    code, out, _ = await cli(migrated, "outbox", "purge")
    assert code == 0
    assert out.strip() == "1 delivered message(s) older than 7 day(s) purged"
    assert [m.id for m in await stored(resources.sessionmaker)] == [recent, pending]

    code, out, _ = await cli(migrated, "outbox", "purge", "--older-than-days", "0")
    assert code == 0
    assert out.strip().startswith("1 delivered")
    assert [m.id for m in await stored(resources.sessionmaker)] == [pending]


async def test_commands_refuse_an_invalid_setting_with_one_line(migrated: Settings) -> None:
    for command in (["outbox", "list"], ["create-admin", "--email", "root@example.com"]):
        code, out, err = await cli(
            migrated, *command, ADMIN_PASSWORD="long-secret-1", OUTBOX_MAX_ATTEMPTS="zero"
        )
        assert code == 1
        assert out == ""
        assert err.splitlines() == [
            "refusing to start: invalid settings: OUTBOX_MAX_ATTEMPTS: "
            "Input should be a valid integer, unable to parse string as an integer"
        ], command
