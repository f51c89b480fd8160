import pytest
from sqlalchemy import select

from app.core.jobs.email import LinkTokens
from app.core.resources import Resources
from app.domains.users.exceptions import InvalidAccountToken
from app.domains.users.models import AccountToken, TokenPurpose, User
from app.domains.users.service import AccountLinks


async def new_user(resources: Resources, email: str = "links@example.com") -> int:
    async with resources.sessionmaker.begin() as session:
        user = User(email=email, full_name="Link", hashed_password="x")
        session.add(user)
        await session.flush()
        return user.id


async def issue(resources: Resources, user_id: int, purpose: TokenPurpose) -> str:
    async with resources.sessionmaker.begin() as session:
        user = await session.get(User, user_id)
        assert user is not None
        link = await AccountLinks(session, resources.settings).issue(user, purpose)
    # The link holds the seed until the email is sent, and the token from then on.
    assert link.url.endswith(f"?token={link.sealed.seed}")
    return LinkTokens.from_settings(resources.settings).token(link.sealed)


async def redeem(resources: Resources, token: str, purpose: TokenPurpose) -> int:
    async with resources.sessionmaker.begin() as session:
        user = await AccountLinks(session, resources.settings).redeem(token, purpose)
        return user.id


async def test_a_token_is_stored_only_as_its_hash(resources: Resources) -> None:
    user_id = await new_user(resources)
    token = await issue(resources, user_id, TokenPurpose.PASSWORD_RESET)
    async with resources.sessionmaker() as session:
        [row] = await session.scalars(select(AccountToken))
    assert token not in (row.token_hash, row.email)
    assert len(row.token_hash) == 64


async def test_a_token_serves_one_purpose_once(resources: Resources) -> None:
    user_id = await new_user(resources)
    token = await issue(resources, user_id, TokenPurpose.EMAIL_VERIFICATION)
    with pytest.raises(InvalidAccountToken):
        await redeem(resources, token, TokenPurpose.PASSWORD_RESET)
    assert await redeem(resources, token, TokenPurpose.EMAIL_VERIFICATION) == user_id
    with pytest.raises(InvalidAccountToken):
        await redeem(resources, token, TokenPurpose.EMAIL_VERIFICATION)


async def test_purposes_replace_only_their_own_kind(resources: Resources) -> None:
    user_id = await new_user(resources)
    verification = await issue(resources, user_id, TokenPurpose.EMAIL_VERIFICATION)
    first_reset = await issue(resources, user_id, TokenPurpose.PASSWORD_RESET)
    second_reset = await issue(resources, user_id, TokenPurpose.PASSWORD_RESET)
    with pytest.raises(InvalidAccountToken):
        await redeem(resources, first_reset, TokenPurpose.PASSWORD_RESET)
    assert await redeem(resources, second_reset, TokenPurpose.PASSWORD_RESET) == user_id
    assert await redeem(resources, verification, TokenPurpose.EMAIL_VERIFICATION) == user_id


async def test_a_deactivated_account_redeems_nothing(resources: Resources) -> None:
    user_id = await new_user(resources)
    token = await issue(resources, user_id, TokenPurpose.PASSWORD_RESET)
    async with resources.sessionmaker.begin() as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.is_active = False
    with pytest.raises(InvalidAccountToken):
        await redeem(resources, token, TokenPurpose.PASSWORD_RESET)
