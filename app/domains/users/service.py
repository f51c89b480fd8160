import asyncio
import logging
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.email import EmailMessage, enqueue_email
from app.core.security import PasswordHasher
from app.domains.auth.repository import AuthSessionRepository
from app.domains.auth.schemas import Principal
from app.domains.orders.models import Order
from app.domains.orders.repository import OrderRepository
from app.domains.orders.schemas import OrderRead
from app.domains.posts.models import Post
from app.domains.posts.repository import PostRepository
from app.domains.posts.schemas import PostRead
from app.domains.users.exceptions import EmailTaken, UserNotFound, WrongCurrentPassword
from app.domains.users.models import Role, User
from app.domains.users.repository import UserRepository
from app.domains.users.schemas import (
    Dashboard,
    DashboardStats,
    PasswordChange,
    UserAdminUpdate,
    UserCreate,
    UserUpdate,
)

logger = logging.getLogger(__name__)


def welcome_email(user: User) -> EmailMessage:
    return EmailMessage(
        to=user.email,
        subject="Welcome aboard",
        text=f"Hello {user.full_name},\n\nYour account {user.email} is ready.\n",
    )


def password_changed_email(user: User) -> EmailMessage:
    return EmailMessage(
        to=user.email,
        subject="Your password was changed",
        text=(
            f"Hello {user.full_name},\n\nThe password of {user.email} was just changed and "
            "every other session was signed out. If this was not you, reset it now.\n"
        ),
    )


class UserService:
    def __init__(self, session: AsyncSession, *, passwords: PasswordHasher) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.sessions = AuthSessionRepository(session)
        self.passwords = passwords

    async def register(self, data: UserCreate, *, role: Role = Role.USER) -> User:
        hashed = await self.passwords.hash(data.password)
        user = User(email=data.email, full_name=data.full_name, hashed_password=hashed, role=role)
        await self.users.add(user)
        # Written in the same transaction: the email goes out exactly when the account exists.
        await enqueue_email(self.session, welcome_email(user))
        return user

    async def get(self, user_id: int) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound
        return user

    async def update_me(self, principal: Principal, changes: UserUpdate) -> User:
        user = await self.get(principal.id)
        for field, value in changes.model_dump(exclude_unset=True).items():
            setattr(user, field, value)
        await self.users.flush_unique_email()
        return user

    async def change_password(self, principal: Principal, change: PasswordChange) -> None:
        user = await self.get(principal.id)
        valid, _ = await self.passwords.verify(change.current_password, user.hashed_password)
        if not valid:
            raise WrongCurrentPassword
        user.hashed_password = await self.passwords.hash(change.new_password)
        # Whoever else held a session may be the reason the password changed.
        await self.sessions.revoke_all_for_user(user.id, keep=principal.session_id)
        await enqueue_email(self.session, password_changed_email(user))

    async def list_page(self, *, offset: int, limit: int) -> tuple[list[User], int]:
        return await self.users.list_page(offset=offset, limit=limit)

    async def admin_update(self, user_id: int, changes: UserAdminUpdate) -> User:
        user = await self.get(user_id)
        for field, value in changes.model_dump(exclude_unset=True).items():
            setattr(user, field, value)
        if changes.is_active is False:
            await self.sessions.revoke_all_for_user(user.id)
        await self.session.flush()
        return user


RECENT = 5


async def build_dashboard(
    sessionmaker: async_sessionmaker[AsyncSession], principal: Principal
) -> Dashboard:
    """Stats, newest orders and newest posts, read concurrently.

    Each read gets a session of its own: one AsyncSession must never be used by two tasks
    at once, and separate connections are what lets the three queries overlap.
    """

    async def orders_page() -> tuple[list[Order], int]:
        async with sessionmaker() as session:
            return await OrderRepository(session).list_page(
                owner_id=principal.id, user_id=None, status=None, offset=0, limit=RECENT
            )

    async def spent() -> Decimal:
        async with sessionmaker() as session:
            return await OrderRepository(session).spent_by(principal.id)

    async def posts() -> list[Post]:
        async with sessionmaker() as session:
            return await PostRepository(session).newest_by_author(principal.id, limit=RECENT)

    (orders, order_count), total_spent, newest_posts = await asyncio.gather(
        orders_page(), spent(), posts()
    )
    return Dashboard(
        stats=DashboardStats(order_count=order_count, total_spent=total_spent),
        recent_orders=[OrderRead.model_validate(order) for order in orders],
        recent_posts=[PostRead.model_validate(post) for post in newest_posts],
    )


async def ensure_admin(
    sessionmaker: async_sessionmaker[AsyncSession],
    passwords: PasswordHasher,
    *,
    email: str,
    password: str,
    full_name: str = "Administrator",
) -> bool:
    """Create an administrator unless the email is already registered; True if created.

    Safe to run from every worker at once: the unique email lets exactly one insert win.
    """
    data = UserCreate(email=email, full_name=full_name, password=password)
    async with sessionmaker() as session:
        service = UserService(session, passwords=passwords)
        if await service.users.get_by_email(data.email) is not None:
            return False
        try:
            await service.register(data, role=Role.ADMIN)
            await session.commit()
        except EmailTaken:
            return False
    logger.info("created administrator %s", data.email)
    return True
