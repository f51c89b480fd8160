import pytest

from app.core.db.transactions import request_transaction
from app.core.resources import Resources
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from tests.factories import audit_events


class Refused(Exception):
    pass


async def fail_after(resources: Resources, *events: AuditAction, despite: bool = False) -> None:
    """Record `events` in a request transaction that then fails."""
    async with request_transaction(resources.sessionmaker) as session:
        trail = AuditTrail(session, resources.sessionmaker, request_id="req-2")
        for action in events:
            record = trail.record_despite_failure if despite else trail.record
            await record(action, actor_id=None, details={"reason": "inactive"})
        raise Refused


async def test_an_event_commits_with_its_change(resources: Resources) -> None:
    async with request_transaction(resources.sessionmaker) as session:
        trail = AuditTrail(session, resources.sessionmaker, request_id="req-1", ip="203.0.113.9")
        await trail.record(
            AuditAction.ORDER_PLACED, actor_id=7, target=("order", 3), details={"lines": 1}
        )
    [event] = await audit_events(resources)
    assert (event.action, event.actor_id, event.target_type, event.target_id) == (
        "order.placed",
        7,
        "order",
        3,
    )
    assert (event.request_id, event.ip, event.details) == ("req-1", "203.0.113.9", {"lines": 1})
    assert event.created_at is not None


async def test_a_rolled_back_change_leaves_no_event(resources: Resources) -> None:
    with pytest.raises(Refused):
        await fail_after(resources, AuditAction.ORDER_CANCELLED, AuditAction.AUTH_LOGIN)
    assert await audit_events(resources) == []


async def test_an_event_about_a_failure_outlives_the_rollback(resources: Resources) -> None:
    with pytest.raises(Refused):
        await fail_after(resources, AuditAction.AUTH_LOGIN_FAILED, despite=True)
    [event] = await audit_events(resources)
    assert (event.action, event.request_id, event.details) == (
        "auth.login_failed",
        "req-2",
        {"reason": "inactive"},
    )


async def test_an_event_about_a_failure_is_not_written_when_nothing_failed(
    resources: Resources,
) -> None:
    async with request_transaction(resources.sessionmaker) as session:
        trail = AuditTrail(session, resources.sessionmaker)
        await trail.record_despite_failure(AuditAction.AUTH_LOGIN_FAILED, actor_id=None)
    assert await audit_events(resources) == []
