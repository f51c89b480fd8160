from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, BigIntId, TimestampMixin


class Post(TimestampMixin, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # The public list is newest first; id breaks ties between posts of one instant.
        Index("ix_posts_created_at_id", "created_at", "id"),
        # An author's recent posts (the dashboard); it also serves the foreign key.
        Index("ix_posts_author_id_created_at", "author_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
