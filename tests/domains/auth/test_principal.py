"""The principal behind a credential, as the auth repository finds it in one query."""

import uuid
from datetime import timedelta

from sqlalchemy import update

from app.core.db.base import utcnow
from app.core.resources import Resources
from app.core.security import fingerprint
from app.domains.auth.models import ApiKey, AuthSession
from app.domains.auth.repository import find_key_principal, find_principal
from app.domains.auth.schemas import ROLE_SCOPES, Scope
from app.domains.users.models import Role, User
from app.domains.users.schemas import UserRead


async def stored_user(resources: Resources, role: Role = Role.USER) -> User:
    async with resources.sessionmaker.begin() as session:
        user = User(
            email=f"{uuid.uuid4().hex}@example.com",
            full_name="Ada",
            hashed_password="x",
            role=role,
        )
        session.add(user)
    return user


async def open_session(resources: Resources, user: User) -> str:
    session_id = uuid.uuid4().hex
    async with resources.sessionmaker.begin() as session:
        session.add(AuthSession(id=session_id, user_id=user.id, scopes="profile"))
    return session_id


async def test_a_live_session_of_an_active_user_is_its_public_view_and_the_tokens_scopes(
    resources: Resources,
) -> None:
    user = await stored_user(resources)
    session_id = await open_session(resources, user)
    principal = await find_principal(
        resources.reads, session_id=session_id, user_id=user.id, scopes=frozenset({"profile"})
    )
    assert principal is not None
    public = principal.model_dump(include=set(UserRead.model_fields))
    assert public == UserRead.model_validate(user).model_dump()
    assert principal.scopes == {"profile"}
    assert principal.session_id == session_id


async def test_a_revoked_session_a_deactivated_user_or_another_users_session_is_no_one(
    resources: Resources,
) -> None:
    user, other = await stored_user(resources), await stored_user(resources)
    session_id = await open_session(resources, user)

    async def lookup(user_id: int) -> object:
        return await find_principal(
            resources.reads, session_id=session_id, user_id=user_id, scopes=frozenset()
        )

    assert await lookup(other.id) is None
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(User).values(is_active=False).where(User.id == user.id))
    assert await lookup(user.id) is None
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(User).values(is_active=True).where(User.id == user.id))
        await session.execute(update(AuthSession).values(revoked_at=utcnow()))
    assert await lookup(user.id) is None


async def test_a_key_acts_with_its_scopes_within_its_users_current_role(
    resources: Resources,
) -> None:
    admin = await stored_user(resources, Role.ADMIN)
    async with resources.sessionmaker.begin() as session:
        key = ApiKey(
            user_id=admin.id,
            name="ops",
            prefix="fsk_abcdefgh",
            key_hash=fingerprint("fsk_the-key"),
            scopes=f"{Scope.USERS_ADMIN} {Scope.PROFILE}",
        )
        session.add(key)

    async def scopes() -> frozenset[str] | None:
        found = await find_key_principal(resources.reads, fingerprint("fsk_the-key"))
        return found.principal.scopes if found is not None else None

    assert await scopes() == frozenset({Scope.USERS_ADMIN, Scope.PROFILE})
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(User).values(role=Role.USER).where(User.id == admin.id))
    # Demoted: the key keeps only what a user may do.
    assert await scopes() == frozenset({Scope.PROFILE}) & ROLE_SCOPES[Role.USER]
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await scopes() is None
