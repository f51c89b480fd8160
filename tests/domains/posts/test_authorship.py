"""Authors change their posts; administrators may only remove them."""

import pytest

from app.domains.posts.exceptions import NotPostAuthor
from app.domains.posts.models import Post
from app.domains.posts.service import ensure_author
from app.domains.users.models import Role
from tests.factories import principal

POST = Post(id=1, title="t", body="b", author_id=3)


def test_the_author_may_change_and_delete() -> None:
    ensure_author(principal(3), POST, admin_allowed=False)
    ensure_author(principal(3), POST, admin_allowed=True)


def test_an_administrator_may_delete_but_not_change() -> None:
    ensure_author(principal(4, role=Role.ADMIN), POST, admin_allowed=True)
    with pytest.raises(NotPostAuthor):
        ensure_author(principal(4, role=Role.ADMIN), POST, admin_allowed=False)


def test_an_administrator_without_posts_admin_may_not_delete_others_posts() -> None:
    scoped = principal(4, role=Role.ADMIN, scopes=["posts:write"])
    with pytest.raises(NotPostAuthor):
        ensure_author(scoped, POST, admin_allowed=True)
    with pytest.raises(NotPostAuthor):
        ensure_author(principal(4, scopes=["posts:write", "posts:admin"]), POST, admin_allowed=True)


def test_anyone_else_may_do_neither() -> None:
    for admin_allowed in (False, True):
        with pytest.raises(NotPostAuthor):
            ensure_author(principal(4), POST, admin_allowed=admin_allowed)
