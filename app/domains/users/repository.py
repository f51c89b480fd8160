from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.keyset import Slice, SortKey, Window, keyset_page
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

    async def list_page(self, window: Window) -> Slice[User]:
        """Oldest account first: the id is the order, and the primary key the index."""
        return await keyset_page(self.session, select(User), SortKey(User.id, User.id), window)
