from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.base import utcnow
from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.repository import Repository
from app.domains.users.exceptions import EmailTaken
from app.domains.users.models import AccountToken, Role, TokenPurpose, User
from app.domains.users.schemas import UserRead

# The user's public view, column for column as `UserRead` names its fields: every query for it
# (the principal behind each authenticated request among them) selects these.
PUBLIC_COLUMNS = tuple(getattr(User, field) for field in UserRead.model_fields)


class UserRepository(Repository[User]):
    model = User

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

    async def set_password_hash(self, user_id: int, hashed_password: str) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(hashed_password=hashed_password)
        )

    async def other_active_admins(self, user_id: int) -> int:
        """How many active administrators there are besides the user. The rows are locked
        (PostgreSQL), so two administrators leaving at once cannot both count the other."""
        rows = await self.session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN, User.is_active.is_(True), User.id != user_id)
            .with_for_update()
        )
        return len(rows.all())

    async def active_admin_emails(self) -> list[str]:
        """Where news for the administrators goes: every active administrator's address."""
        rows = await self.session.scalars(
            select(User.email)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
            .order_by(User.id)
        )
        return list(rows)

    async def list_page(self, window: Window) -> Slice[User]:
        """Oldest account first: the id is the order, and the primary key the index."""
        return await self.page(SortKey(User.id, User.id), window)


@dataclass(frozen=True, slots=True)
class SpentToken:
    user_id: int
    email: str


class AccountTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(
        self,
        *,
        user_id: int,
        purpose: TokenPurpose,
        email: str,
        token_hash: str,
        expires_at: datetime,
    ) -> None:
        """Store a new token; the user's unspent ones of the same purpose stop working."""
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.spent_at.is_(None),
            )
            .values(spent_at=utcnow())
        )
        self.session.add(
            AccountToken(
                user_id=user_id,
                purpose=purpose,
                email=email,
                token_hash=token_hash,
                expires_at=expires_at,
            )
        )
        await self.session.flush()

    async def delete_all_for_user(self, user_id: int) -> None:
        await self.session.execute(delete(AccountToken).where(AccountToken.user_id == user_id))

    async def find_live(self, token_hash: str, purpose: TokenPurpose) -> SpentToken | None:
        """Whose a live token is, without spending it."""
        row = (
            await self.session.execute(
                select(AccountToken.user_id, AccountToken.email).where(
                    AccountToken.token_hash == token_hash,
                    AccountToken.purpose == purpose,
                    AccountToken.spent_at.is_(None),
                    AccountToken.expires_at > utcnow(),
                )
            )
        ).first()
        return SpentToken(user_id=row.user_id, email=row.email) if row is not None else None

    async def spend(self, token_hash: str, purpose: TokenPurpose) -> SpentToken | None:
        """Mark a live token spent and say whose it was, in one atomic statement.

        Of two concurrent uses of one token exactly one sees it unspent; the other gets
        nothing back, as for an unknown, replaced or expired token.
        """
        now = utcnow()
        result = await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.token_hash == token_hash,
                AccountToken.purpose == purpose,
                AccountToken.spent_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(spent_at=now)
            .returning(AccountToken.user_id, AccountToken.email)
        )
        row = result.first()
        return SpentToken(user_id=row.user_id, email=row.email) if row is not None else None
