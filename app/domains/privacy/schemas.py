from pydantic import BaseModel, Field

from app.domains.audit.schemas import AuditEventRead
from app.domains.auth.schemas import ApiKeyRead, SessionRead
from app.domains.items.schemas import ItemRead
from app.domains.orders.schemas import OrderRead
from app.domains.posts.schemas import PostRead
from app.domains.users.schemas import UserRead


class AccountExport(BaseModel):
    """Everything the service holds about one account, in the shapes its lists use; never
    a password hash, token, key or secret."""

    user: UserRead
    orders: list[OrderRead]
    posts: list[PostRead]
    items: list[ItemRead]
    api_keys: list[ApiKeyRead] = Field(description="without the keys themselves")
    sessions: list[SessionRead] = Field(description="the live ones")
    audit_events: list[AuditEventRead] = Field(
        description="the events you caused or that are about your account, newest first"
    )
