from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache
from app.core.errors import raises
from app.domains.audit.repository import AuditEventRepository
from app.domains.audit.schemas import AuditEventRead
from app.domains.auth.exceptions import PasswordSessionRequired
from app.domains.auth.repository import AuthSessionRepository
from app.domains.auth.schemas import AccountDeletion, ApiKeyRead, Principal, SessionRead
from app.domains.auth.service import AuthService
from app.domains.items.schemas import ItemRead
from app.domains.orders.schemas import OrderRead
from app.domains.posts.schemas import PostRead
from app.domains.posts.service import fence_after_commit
from app.domains.privacy.repository import AccountDataRepository
from app.domains.privacy.schemas import AccountExport
from app.domains.users.schemas import UserRead


class PrivacyService:
    """The caller's data, taken away whole or erased. Both need a password session: an API
    key acts on resources, it does not speak for the person."""

    def __init__(self, session: AsyncSession, cache: Cache, *, auth: AuthService) -> None:
        self.session = session
        self.cache = cache
        self.data = AccountDataRepository(session)
        self.sessions = AuthSessionRepository(session)
        self.events = AuditEventRepository(session)
        self.auth = auth

    @raises(PasswordSessionRequired)
    async def export(self, principal: Principal) -> AccountExport:
        current = principal.password_session()
        sessions = [
            SessionRead.model_validate(row).model_copy(update={"current": row.id == current})
            for row in await self.sessions.all_live_for_user(principal.id)
        ]
        return AccountExport(
            user=UserRead.model_validate(principal, from_attributes=True),
            orders=[OrderRead.model_validate(o) for o in await self.data.orders_of(principal.id)],
            posts=[PostRead.model_validate(p) for p in await self.data.posts_of(principal.id)],
            items=[ItemRead.model_validate(i) for i in await self.data.items_of(principal.id)],
            api_keys=[
                ApiKeyRead.model_validate(k) for k in await self.data.api_keys_of(principal.id)
            ],
            sessions=sessions,
            audit_events=[
                AuditEventRead.model_validate(e)
                for e in await self.events.list_about_user(principal.id)
            ],
        )

    @raises(AuthService.erase_account)
    async def erase(self, principal: Principal, deletion: AccountDeletion) -> None:
        """Erase the account (`AuthService.erase_account`) and delete its posts, which carry
        what the person wrote; orders and items stay as the business's records."""
        await self.auth.erase_account(principal, deletion)
        await self.data.delete_posts_of(principal.id)
        fence_after_commit(self.session, self.cache)
