from decimal import Decimal

from app.core.errors import BusinessRuleViolation, Conflict, NotFound


class OrderNotFound(NotFound):
    """Also the answer for someone else's order: its existence is nobody else's business."""

    type = "urn:problem-type:order-not-found"
    title = "Order not found"
    detail = "No order with this id."


class OvernightMinimum(BusinessRuleViolation):
    type = "urn:problem-type:overnight-minimum"
    title = "Overnight shipping needs a larger order"

    def __init__(self, minimum: Decimal, subtotal: Decimal) -> None:
        super().__init__(
            f"Overnight shipping needs a subtotal of at least {minimum}; "
            f"this order's subtotal is {subtotal}."
        )


class OrderTooLarge(BusinessRuleViolation):
    type = "urn:problem-type:order-too-large"
    title = "Order too large"

    def __init__(self, maximum: Decimal) -> None:
        super().__init__(f"An order's total may not exceed {maximum}.")


class IllegalTransition(Conflict):
    type = "urn:problem-type:illegal-transition"
    title = "Illegal status change"

    def __init__(self, *, current: str, action: str) -> None:
        super().__init__(f"An order that is {current} cannot be {action}; only placed ones can.")


class IdempotencyKeyReused(BusinessRuleViolation):
    type = "urn:problem-type:idempotency-key-reused"
    title = "Idempotency key reused"
    detail = "This Idempotency-Key was already used with a different request body."


class IdempotencyKeyInFlight(Conflict):
    type = "urn:problem-type:idempotency-key-in-flight"
    title = "Request in progress"
    detail = "A request with this Idempotency-Key is still being processed; retry shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class RepeatedItem(BusinessRuleViolation):
    type = "urn:problem-type:repeated-item"
    title = "Item on more than one line"

    def __init__(self, *, item_id: int, lines: list[int]) -> None:
        named = ", ".join(f"lines[{index}]" for index in lines)
        super().__init__(
            f"Item {item_id} appears on {named}; order its whole quantity on one line."
        )
