"""Every ORM model, imported in one place so the metadata is complete.

Alembic's autogenerate and the test set-up import this module.
"""

from app.core.db import Base

__all__ = ["Base"]
