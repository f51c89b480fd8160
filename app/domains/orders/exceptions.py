from decimal import Decimal

from app.core.errors import BusinessRuleViolation, Conflict, NotFound


class OrderNotFound(NotFound):
    """Also the answer for someone else's order: its existence is nobody else's business."""

    type = "urn:problem-type:order-not-found"
    title = "Order not found"
    detail = "No order with this id."


class UnknownItems(BusinessRuleViolation):
    type = "urn:problem-type:unknown-items"
    title = "Unknown items"

    def __init__(self, lines: dict[int, int]) -> None:
        named = ", ".join(f"lines[{index}].item_id={item}" for index, item in lines.items())
        super().__init__(f"These lines name items that are not in the catalog: {named}.")
        self.lines = lines


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


class OutOfStock(Conflict):
    type = "urn:problem-type:out-of-stock"
    title = "Out of stock"

    def __init__(self, *, item_id: int, line: int, quantity: int) -> None:
        super().__init__(
            f"Item {item_id} (lines[{line}]) has fewer than {quantity} in stock; "
            "nothing was reserved."
        )
        self.item_id = item_id


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
