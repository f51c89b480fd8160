"""Accounts, registered and signed in the way a client would: over HTTP."""

import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from app.core.db.base import utcnow
from app.core.resources import Resources
from app.domains.auth.schemas import ROLE_SCOPES, Principal
from app.domains.users.models import Role
from app.domains.users.service import ensure_admin

PASSWORD = "correct-horse-7"
_sequence = itertools.count(1)


@dataclass
class Account:
    id: int
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_sequence)}@example.com"


async def token(
    client: httpx.AsyncClient, email: str, password: str, scope: str | None = None
) -> httpx.Response:
    form = {"username": email, "password": password}
    if scope is not None:
        form["scope"] = scope
    return await client.post("/api/v1/auth/token", data=form)


async def log_in(account: Account, client: httpx.AsyncClient, scope: str | None = None) -> Account:
    response = await token(client, account.email, account.password, scope)
    assert response.status_code == 200, response.text
    pair = response.json()
    account.access_token = pair["access_token"]
    account.refresh_token = pair["refresh_token"]
    return account


async def register(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = PASSWORD
) -> Account:
    email = email or unique_email()
    response = await client.post(
        "/api/v1/users", json={"email": email, "full_name": "Ada Lovelace", "password": password}
    )
    assert response.status_code == 201, response.text
    return Account(id=response.json()["id"], email=email, password=password)


async def user(client: httpx.AsyncClient, scope: str | None = None) -> Account:
    """A registered user with a fresh session."""
    return await log_in(await register(client), client, scope)


API_KEYS = "/api/v1/users/me/api-keys"


async def create_api_key(
    client: httpx.AsyncClient, account: Account, *scopes: str, **fields: Any
) -> dict[str, Any]:
    """A new API key of the account's (`key` holds the key itself)."""
    body = {"name": "script", "scopes": list(scopes or ["profile"])} | fields
    response = await client.post(API_KEYS, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def admin(client: httpx.AsyncClient, resources: Resources) -> Account:
    email = unique_email("admin")
    await ensure_admin(resources.sessionmaker, resources.passwords, email=email, password=PASSWORD)
    account = await log_in(Account(id=0, email=email, password=PASSWORD), client)
    me = await client.get("/api/v1/users/me", headers=account.headers)
    account.id = me.json()["id"]
    return account


def principal(
    user_id: int, *, role: Role = Role.USER, scopes: Iterable[str] | None = None
) -> Principal:
    """The caller as services receive it, for tests that call a service directly."""
    return Principal(
        id=user_id,
        email=f"user{user_id}@example.com",
        full_name="Test User",
        role=role,
        is_active=True,
        email_verified=True,
        mfa_enabled=False,
        created_at=utcnow(),
        session_id=uuid.uuid4().hex,
        scopes=frozenset(ROLE_SCOPES[role] if scopes is None else scopes),
    )
