from app.core.errors import Forbidden, NotFound


class ItemNotFound(NotFound):
    type = "urn:problem-type:item-not-found"
    title = "Item not found"
    detail = "No item with this id."


class NotItemOwner(Forbidden):
    type = "urn:problem-type:not-item-owner"
    title = "Not the item's owner"
    detail = "Only the item's owner or an administrator may change or delete it."
