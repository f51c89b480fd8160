"""The catalog's prices as this process last saw them, so an order is usually priced without
a read before the one call that places it.

Hints, not truths: the database compares each price with the item's under the row lock
that takes its stock, and answers with the current prices when one differs
(Outcome.PRICE_CHANGED); the order is then priced again. A stale hint costs one more call,
never a wrong price. Refusals that stale hints could cause (the overnight minimum, the
order total cap) are confirmed against fresh prices before they are answered (service).
"""

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

# Bounded so a large catalog cannot grow the process: about a megabyte when full.
HINT_CAPACITY = 10_000


class PriceHints:
    """Item id -> price, the least recently used forgotten first beyond `capacity`."""

    def __init__(self, capacity: int = HINT_CAPACITY) -> None:
        self._capacity = capacity
        self._prices: OrderedDict[int, Decimal] = OrderedDict()

    def known(self, item_ids: Iterable[int]) -> dict[int, Decimal]:
        """The hints there are for these items."""
        found: dict[int, Decimal] = {}
        for item_id in item_ids:
            price = self._prices.get(item_id)
            if price is not None:
                self._prices.move_to_end(item_id)
                found[item_id] = price
        return found

    def learn(self, prices: Mapping[int, Decimal]) -> None:
        for item_id, price in prices.items():
            self._prices[item_id] = price
            self._prices.move_to_end(item_id)
        while len(self._prices) > self._capacity:
            self._prices.popitem(last=False)

    def forget(self, item_ids: Iterable[int]) -> None:
        for item_id in item_ids:
            self._prices.pop(item_id, None)

    def clear(self) -> None:
        self._prices.clear()


# One map per database: the hints describe the catalog behind an engine, whichever request
# or service reads them.
_HINTS: WeakKeyDictionary[Engine, PriceHints] = WeakKeyDictionary()


def price_hints(engine: AsyncEngine) -> PriceHints:
    """The hints about the catalog behind `engine`."""
    hints = _HINTS.get(engine.sync_engine)
    if hints is None:
        hints = _HINTS[engine.sync_engine] = PriceHints()
    return hints
