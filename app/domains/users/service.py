import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.db.replicas import Replicas
from app.core.db.transactions import independent_transaction
from app.core.errors import raises
from app.core.jobs.email import EmailMessage, LinkTokens, SealedToken, enqueue_email
from app.core.jobs.templates import render_email
from app.core.pagination import Page, PageParams, page_of
from app.core.security import PasswordHasher, fingerprint
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.users.exceptions import (
    EmailAlreadyVerified,
    EmailTaken,
    InvalidAccountToken,
    UserNotFound,
)
from app.domains.users.models import Role, TokenPurpose, User
from app.domains.users.repository import AccountTokenRepository, SpentToken, UserRepository
from app.domains.users.schemas import UserCreate, UserRead, UserUpdate

logger = logging.getLogger(__name__)

# The pages of the web client that take each token from the link.
LINK_PATHS = {
    TokenPurpose.EMAIL_VERIFICATION: "/verify-email",
    TokenPurpose.PASSWORD_RESET: "/reset-password",
}


@dataclass(frozen=True, slots=True)
class Link:
    """A link as it is queued: its URL holds the seed of `sealed` where the token will go."""

    url: str
    valid_for: str
    sealed: SealedToken


def _describe(lifetime: timedelta) -> str:
    minutes = int(lifetime.total_seconds() // 60)
    amount, unit = (minutes // 60, "hour") if minutes % 60 == 0 else (minutes, "minute")
    return f"{amount} {unit}{'' if amount == 1 else 's'}"


class AccountLinks:
    """Single-use links emailed to an account's address: email verification and password
    reset. Only the token's SHA-256 is stored, and the queued email holds a seed in its
    place (app.core.jobs.email): the link exists in the email alone."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.users = UserRepository(session)
        self.tokens = AccountTokenRepository(session)
        self.link_tokens = LinkTokens.from_settings(settings)
        self.base_url = settings.public_base_url
        self.lifetimes = {
            TokenPurpose.EMAIL_VERIFICATION: timedelta(
                hours=settings.email_verification_expire_hours
            ),
            TokenPurpose.PASSWORD_RESET: timedelta(minutes=settings.password_reset_expire_minutes),
        }

    async def issue(self, user: User, purpose: TokenPurpose) -> Link:
        """A fresh link for the user's current address; older unused ones stop working."""
        sealed, token = self.link_tokens.seal()
        lifetime = self.lifetimes[purpose]
        await self.tokens.replace(
            user_id=user.id,
            purpose=purpose,
            email=user.email,
            token_hash=fingerprint(token),
            expires_at=utcnow() + lifetime,
        )
        query = urlencode({"token": sealed.seed})
        return Link(f"{self.base_url}{LINK_PATHS[purpose]}?{query}", _describe(lifetime), sealed)

    @raises(InvalidAccountToken)
    async def check(self, token: str, purpose: TokenPurpose) -> None:
        """Whether `redeem` would accept the token now; nothing is spent."""
        live = await self.tokens.find_live(fingerprint(token), purpose)
        await self._owner(live)

    @raises(InvalidAccountToken)
    async def redeem(self, token: str, purpose: TokenPurpose) -> User:
        """The active account a live token was sent to, spending the token.

        A token sent to an address the account no longer has proves nothing about it.
        """
        return await self._owner(await self.tokens.spend(fingerprint(token), purpose))

    async def _owner(self, token: SpentToken | None) -> User:
        user = await self.users.get(token.user_id) if token is not None else None
        if token is None or user is None or not user.is_active or user.email != token.email:
            raise InvalidAccountToken
        return user


def account_email(
    template: str, subject: str, user: User, link: Link | None = None
) -> EmailMessage:
    """An email to an account's owner from one of the account templates, with its link."""
    values: dict[str, object] = {"full_name": user.full_name, "email": user.email}
    if link is None:
        return render_email(template, to=user.email, subject=subject, **values)
    values |= {"link": link.url, "valid_for": link.valid_for}
    message = render_email(template, to=user.email, subject=subject, **values)
    return message.model_copy(update={"sealed": (link.sealed,)})


class UserService:
    """Accounts as records: registration, profiles, email verification, the administrators'
    view. Credentials, sessions and access (role, activation) belong to the auth domain above.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        passwords: PasswordHasher,
        links: AccountLinks,
        audit: AuditTrail,
        replicas: Replicas,
    ) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.passwords = passwords
        self.links = links
        self.audit = audit
        self.replicas = replicas

    @raises(EmailTaken)
    async def register(self, data: UserCreate) -> UserRead:
        hashed = await self.passwords.hash(data.password)
        user = User(email=data.email, full_name=data.full_name, hashed_password=hashed)
        await self.users.add(user)
        link = await self.links.issue(user, TokenPurpose.EMAIL_VERIFICATION)
        # Written in the same transaction: the email goes out exactly when the account exists.
        await enqueue_email(self.session, account_email("welcome", "Welcome aboard", user, link))
        await self.audit.record(
            AuditAction.USER_REGISTERED, actor_id=user.id, target=("user", user.id)
        )
        return UserRead.model_validate(user)

    @raises(UserNotFound)
    async def get(self, user_id: int) -> UserRead:
        return UserRead.model_validate(await self._user(user_id))

    @raises(UserNotFound, EmailTaken)
    async def update_profile(self, user_id: int, changes: UserUpdate) -> UserRead:
        """Change the account's name or email. Whoever calls this has made sure an email
        change is the account holder's (`AuthService.update_profile`)."""
        user = await self._user(user_id)
        previous = user.email
        changes.apply_to(user)
        await self.users.flush_unique_email()
        if user.email != previous:
            # Verified was a fact about the old address; the new one proves itself anew.
            user.email_verified = False
            await self._send_verification(user)
            # The old address is where its owner reads, should the change not be theirs.
            notice = render_email(
                "email_changed",
                to=previous,
                subject="Your email address was changed",
                full_name=user.full_name,
                email=previous,
            )
            await enqueue_email(self.session, notice)
            await self.audit.record(
                AuditAction.USER_EMAIL_CHANGED,
                actor_id=user.id,
                target=("user", user.id),
                details={"previous_email": previous, "email": user.email},
            )
        return UserRead.model_validate(user)

    @raises(UserNotFound, EmailAlreadyVerified)
    async def resend_verification(self, user_id: int) -> None:
        user = await self._user(user_id)
        if user.email_verified:
            raise EmailAlreadyVerified
        await self._send_verification(user)

    @raises(AccountLinks.redeem)
    async def verify_email(self, token: str) -> None:
        user = await self.links.redeem(token, TokenPurpose.EMAIL_VERIFICATION)
        user.email_verified = True
        await self.audit.record(
            AuditAction.USER_EMAIL_VERIFIED,
            actor_id=user.id,
            target=("user", user.id),
            details={"email": user.email},
        )

    @raises(PageParams.window)
    async def list_page(self, page: PageParams) -> Page[UserRead]:
        """A page a read replica may serve, once it has every change committed before now."""
        window = page.window("users")
        rows = await self.replicas.run_current(
            lambda session: UserRepository(session).list_page(window)
        )
        return page_of(UserRead, rows, window)

    async def _send_verification(self, user: User) -> None:
        link = await self.links.issue(user, TokenPurpose.EMAIL_VERIFICATION)
        await enqueue_email(
            self.session, account_email("verify_email", "Verify your email", user, link)
        )

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
    to run from every worker at once: the unique email lets exactly one insert win. The
    operator chose the address, so it counts as verified and no link is sent.
    """
    data = UserCreate(email=email, full_name=full_name, password=password)
    try:
        async with independent_transaction(sessionmaker) as session:
            users = UserRepository(session)
            if await users.get_by_email(data.email) is not None:
                return False
            user = User(
                email=data.email,
                full_name=data.full_name,
                hashed_password=await passwords.hash(data.password),
                role=Role.ADMIN,
                email_verified=True,
            )
            await users.add(user)
            await AuditTrail(session, sessionmaker).record(
                AuditAction.USER_REGISTERED,
                actor_id=None,
                target=("user", user.id),
                details={"role": Role.ADMIN.value, "by": "operator"},
            )
    except EmailTaken:
        return False
    logger.info("created administrator %s", data.email)
    return True
