import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import independent_transaction
from app.core.email import EmailMessage, enqueue_email
from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.core.security import PasswordHasher
from app.domains.users.exceptions import EmailTaken, UserNotFound
from app.domains.users.models import Role, User
from app.domains.users.repository import UserRepository
from app.domains.users.schemas import UserCreate, UserRead, UserUpdate

logger = logging.getLogger(__name__)


def welcome_email(user: User) -> EmailMessage:
    return EmailMessage(
        to=user.email,
        subject="Welcome aboard",
        text=f"Hello {user.full_name},\n\nYour account {user.email} is ready.\n",
    )


class UserService:
    """Accounts as records: registration, profiles, the administrators' view.

    Credentials, sessions and access (role, activation) belong to the auth domain above.
    """

    def __init__(self, session: AsyncSession, *, passwords: PasswordHasher) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.passwords = passwords

    @raises(EmailTaken)
    async def register(self, data: UserCreate, *, role: Role = Role.USER) -> UserRead:
        hashed = await self.passwords.hash(data.password)
        user = User(email=data.email, full_name=data.full_name, hashed_password=hashed, role=role)
        await self.users.add(user)
        # Written in the same transaction: the email goes out exactly when the account exists.
        await enqueue_email(self.session, welcome_email(user))
        return UserRead.model_validate(user)

    @raises(UserNotFound)
    async def get(self, user_id: int) -> UserRead:
        return UserRead.model_validate(await self._user(user_id))

    @raises(UserNotFound, EmailTaken)
    async def update_profile(self, user_id: int, changes: UserUpdate) -> UserRead:
        user = await self._user(user_id)
        changes.apply_to(user)
        await self.users.flush_unique_email()
        return UserRead.model_validate(user)

    @raises(PageParams.window)
    async def list_page(self, page: PageParams) -> Page[UserRead]:
        window = page.window("users")
        return page_of(UserRead, await self.users.list_page(window), window)

    async def _user(self, user_id: int) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound
        return user


async def ensure_admin(
    sessionmaker: async_sessionmaker[AsyncSession],
    passwords: PasswordHasher,
    *,
    email: str,
    password: str,
    full_name: str = "Administrator",
) -> bool:
    """Create an administrator unless the email is already registered; True if created.

    Runs outside any request (start-up, the CLI), so it commits its own transaction. Safe
    to run from every worker at once: the unique email lets exactly one insert win.
    """
    data = UserCreate(email=email, full_name=full_name, password=password)
    try:
        async with independent_transaction(sessionmaker) as session:
            service = UserService(session, passwords=passwords)
            if await service.users.get_by_email(data.email) is not None:
                return False
            await service.register(data, role=Role.ADMIN)
    except EmailTaken:
        return False
    logger.info("created administrator %s", data.email)
    return True
