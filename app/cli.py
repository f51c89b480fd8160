"""Operator commands: `python -m app.cli --help`.

They read the same settings as the API (environment and `.env`), so they act on the same
database the service uses.
"""

import argparse
import asyncio
import getpass
import os
import sys

from pydantic import ValidationError

from app.core.config import get_settings
from app.core.resources import open_resources
from app.demo import DEMO_PASSWORD, DemoCounts, demo_settings, seed_demo
from app.domains.users.schemas import UserCreate
from app.domains.users.service import ensure_admin


async def create_admin(email: str, full_name: str, password: str) -> int:
    try:
        data = UserCreate(email=email, full_name=full_name, password=password)
    except ValidationError as error:
        for problem in error.errors():
            print(f"{problem['loc'][0]}: {problem['msg']}", file=sys.stderr)
        return 2
    async with open_resources(get_settings()) as resources:
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
    arguments = parser.parse_args(argv)
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
    parser.error(f"unknown command {arguments.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
