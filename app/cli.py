"""Operator commands: `python -m app.cli --help`.

They read the same settings as the API (environment and `.env`), so they act on the same
database the service uses.
"""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings, get_settings, settings_or_exit
from app.core.db.base import utcnow
from app.core.db.engine import create_engine, create_sessionmaker
from app.core.db.transactions import independent_transaction
from app.core.jobs import dead_messages, notify, purge_delivered, retry_dead
from app.core.resources import open_resources
from app.demo import DEMO_PASSWORD, DemoCounts, demo_settings, seed_demo
from app.domains.users.schemas import UserCreate
from app.domains.users.service import ensure_admin
from app.jobs import register_handlers

# Enough of a dead message's error to recognise the cause on one line.
_ERROR_PREVIEW = 120


async def create_admin(email: str, full_name: str, password: str) -> int:
    try:
        data = UserCreate(email=email, full_name=full_name, password=password)
    except ValidationError as error:
        for problem in error.errors():
            print(f"{problem['loc'][0]}: {problem['msg']}", file=sys.stderr)
        return 2
    async with open_resources(get_settings(), register_handlers) as resources:
        created = await ensure_admin(
            resources.sessionmaker,
            resources.passwords,
            email=data.email,
            password=data.password,
            full_name=data.full_name,
        )
    print(f"created administrator {data.email}" if created else f"{data.email} already exists")
    return 0


async def load_demo(counts: DemoCounts) -> int:
    # Imported here: importing app.main builds the default application, which only this
    # command needs.
    from app.main import create_app

    application = create_app(demo_settings(get_settings()))
    async with application.router.lifespan_context(application):
        summary = await seed_demo(application, counts)
    print(
        f"demo data: {summary.users} new users, {summary.items} items, {summary.posts} posts, "
        f"{summary.orders} orders; every demo user's password is {DEMO_PASSWORD!r} "
        "(demo1@example.com ...)"
    )
    return 0


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The service's database alone: no dispatcher, cache or limiter is started."""
    engine = create_engine(settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def list_dead(limit: int) -> int:
    async with database(get_settings()) as sessionmaker, sessionmaker() as session:
        messages = await dead_messages(session, limit=limit)
    for message in messages:
        error = (message.last_error or "").replace("\n", " ")[:_ERROR_PREVIEW]
        print(
            f"{message.id}\t{message.topic}\t{message.attempts} attempts\t"
            f"{message.created_at.isoformat()}\t{error}"
        )
    print(f"{len(messages)} dead message(s)", file=sys.stderr)
    return 0


async def retry(ids: list[int] | None) -> int:
    settings = get_settings()
    async with database(settings) as sessionmaker:
        async with independent_transaction(sessionmaker) as session:
            count = await retry_dead(session, ids)
        if count and not settings.uses_sqlite:
            # Running dispatchers start at once instead of at their next poll.
            await notify(sessionmaker)
    print(f"{count} dead message(s) queued again")
    return 0


async def purge(days: int) -> int:
    async with database(get_settings()) as sessionmaker:
        removed = await purge_delivered(sessionmaker, before=utcnow() - timedelta(days=days))
    print(f"{removed} delivered message(s) older than {days} day(s) purged")
    return 0


def _outbox_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    outbox = commands.add_parser("outbox", help="inspect and repair the job log")
    actions = outbox.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list dead messages, newest first")
    listing.add_argument("--limit", type=int, default=100)
    retrying = actions.add_parser("retry", help="queue dead messages again with fresh attempts")
    retrying.add_argument("ids", nargs="*", type=int, help="message ids")
    retrying.add_argument("--all", action="store_true", help="every dead message")
    purging = actions.add_parser("purge", help="delete delivered messages past their retention")
    purging.add_argument(
        "--older-than-days",
        type=int,
        default=None,
        help="default: OUTBOX_RETENTION_DAYS",
    )


def run_outbox(arguments: argparse.Namespace) -> int:
    if arguments.action == "list":
        return asyncio.run(list_dead(max(1, arguments.limit)))
    if arguments.action == "retry":
        if arguments.all == bool(arguments.ids):
            raise SystemExit("name the message ids to retry, or pass --all (not both)")
        return asyncio.run(retry(None if arguments.all else arguments.ids))
    days = arguments.older_than_days
    return asyncio.run(purge(get_settings().outbox_retention_days if days is None else days))


def _password_from_environment_or_prompt() -> str:
    password = os.environ.get("ADMIN_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit("set ADMIN_PASSWORD, or run in a terminal to be asked for it")
    return getpass.getpass("Password: ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser(
        "create-admin",
        help="create an administrator (idempotent); the password comes from ADMIN_PASSWORD "
        "or a prompt",
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--full-name", default="Administrator")
    demo = commands.add_parser(
        "seed-demo", help="load demo users, items, posts and orders through the API"
    )
    defaults = DemoCounts()
    for name in ("users", "items", "posts", "orders"):
        demo.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    _outbox_parser(commands)
    arguments = parser.parse_args(argv)
    # Every command acts with the service's settings: a bad one is one line, not a traceback.
    settings_or_exit(check_production=False)
    if arguments.command == "create-admin":
        password = _password_from_environment_or_prompt()
        return asyncio.run(create_admin(arguments.email, arguments.full_name, password))
    if arguments.command == "seed-demo":
        counts = DemoCounts(
            users=max(1, arguments.users),
            items=arguments.items,
            posts=arguments.posts,
            orders=arguments.orders,
        )
        return asyncio.run(load_demo(counts))
    if arguments.command == "outbox":
        return run_outbox(arguments)
    parser.error(f"unknown command {arguments.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
