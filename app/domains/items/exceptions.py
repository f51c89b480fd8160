from app.core.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound


class ItemNotFound(NotFound):
    type = "urn:problem-type:item-not-found"
    title = "Item not found"
    detail = "No item with this id."


class NotItemOwner(Forbidden):
    type = "urn:problem-type:not-item-owner"
    title = "Not the item's owner"
    detail = (
        "Only the item's owner, or an administrator with the items:admin scope, may change "
        "or delete it."
    )


class UnknownItems(BusinessRuleViolation):
    type = "urn:problem-type:unknown-items"
    title = "Unknown items"

    def __init__(self, lines: dict[int, int]) -> None:
        named = ", ".join(f"lines[{index}].item_id={item}" for index, item in lines.items())
        super().__init__(f"These lines name items that are not in the catalog: {named}.")
        self.lines = lines


class OutOfStock(Conflict):
    type = "urn:problem-type:out-of-stock"
    title = "Out of stock"

    def __init__(self, *, item_id: int, line: int, quantity: int) -> None:
        super().__init__(
            f"Item {item_id} (lines[{line}]) has fewer than {quantity} in stock; "
            "nothing was reserved."
        )
        self.item_id = item_id
