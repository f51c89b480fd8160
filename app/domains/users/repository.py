from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.users.exceptions import EmailTaken
from app.domains.users.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.scalars(select(User).where(User.email == email))
        return result.first()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.flush_unique_email()
        return user

    async def flush_unique_email(self) -> None:
        """Flush, turning a unique-email violation into `EmailTaken`.

        The constraint, not a prior lookup, decides: two concurrent requests for one
        address cannot both pass a check that neither has committed yet.
        """
        try:
            await self.session.flush()
        except IntegrityError as error:
            if "email" in str(error.orig).lower():
                raise EmailTaken from error
            raise

    async def list_page(self, *, offset: int, limit: int) -> tuple[list[User], int]:
        total = await self.session.scalar(select(func.count()).select_from(User))
        rows = await self.session.scalars(
            select(User).order_by(User.id).offset(offset).limit(limit)
        )
        return list(rows), total or 0
