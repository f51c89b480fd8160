"""A realistic demo data set, loaded through the public API: `python -m app.cli seed-demo`.

Going through the API in process (not straight into tables) means every demo row passed the
same validation, pricing and stock rules as a client's would, and the loader needs no
knowledge of the schema.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from app.core.config import Settings

DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - printed for people trying the demo

_ADJECTIVES = ["Compact", "Rugged", "Silent", "Smart", "Vintage", "Modular", "Solar", "Nordic"]
_NOUNS = ["Kettle", "Lamp", "Backpack", "Keyboard", "Tent", "Speaker", "Chair", "Bottle"]
_MATERIALS = ["oak", "recycled aluminium", "linen", "stainless steel", "bamboo", "wool"]
_CITIES = [("Lisbon", "PT"), ("Osaka", "JP"), ("Austin", "US"), ("Lyon", "FR"), ("Turin", "IT")]
_SHIPPING = ["standard", "standard", "standard", "express", "overnight"]
_TOPICS = ["Release notes", "Field report", "How we ship", "Customer story", "Design notes"]


@dataclass(frozen=True)
class DemoCounts:
    users: int = 20
    items: int = 3000
    orders: int = 500
    posts: int = 200


@dataclass
class DemoSummary:
    users: int = 0
    items: int = 0
    orders: int = 0
    posts: int = 0


def demo_settings(settings: Settings) -> Settings:
    # The loader is one client making thousands of calls: limits would only get in the way.
    return settings.model_copy(update={"rate_limit_enabled": False, "outbox_enabled": False})


def _item(rng: random.Random) -> dict[str, object]:
    name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.randint(100, 999)}"
    return {
        "name": name,
        "description": f"A {name.lower()} made of {rng.choice(_MATERIALS)}.",
        "price": f"{rng.uniform(2, 400):.2f}",
        "stock": rng.randint(0, 500),
    }


def _order(rng: random.Random, item_ids: Sequence[int]) -> dict[str, object]:
    city, country = rng.choice(_CITIES)
    chosen = rng.sample(list(item_ids), k=min(len(item_ids), rng.randint(1, 4)))
    return {
        "lines": [{"item_id": item_id, "quantity": rng.randint(1, 3)} for item_id in chosen],
        "shipping": rng.choice(_SHIPPING),
        "address": {
            "street": f"{rng.randint(1, 200)} Demo Street",
            "city": city,
            "country": country,
        },
    }


async def _expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    return response


async def seed_demo(app: FastAPI, counts: DemoCounts, *, seed: int = 7) -> DemoSummary:
    """Register users, then have them list items, write posts and place orders."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    summary = DemoSummary()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
        tokens: list[str] = []
        for number in range(counts.users):
            email = f"demo{number + 1}@example.com"
            registered = await http.post(
                "/api/v1/users",
                json={
                    "email": email,
                    "full_name": f"Demo User {number + 1}",
                    "password": DEMO_PASSWORD,
                },
            )
            await _expect(registered, 201, 409)
            summary.users += registered.status_code == 201
            login = await _expect(
                await http.post(
                    "/api/v1/auth/token", data={"username": email, "password": DEMO_PASSWORD}
                ),
                200,
            )
            tokens.append(login.json()["access_token"])

        def as_user(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        item_ids: list[int] = []
        for _ in range(counts.items):
            created = await http.post(
                "/api/v1/items", json=_item(rng), headers=as_user(rng.choice(tokens))
            )
            item_ids.append((await _expect(created, 201)).json()["id"])
            summary.items += 1

        for _ in range(counts.posts):
            topic = rng.choice(_TOPICS)
            post = {"title": f"{topic} #{rng.randint(1, 99)}", "body": f"{topic}: notes."}
            await _expect(
                await http.post("/api/v1/posts", json=post, headers=as_user(rng.choice(tokens))),
                201,
            )
            summary.posts += 1

        for _ in range(counts.orders if item_ids else 0):
            placed = await http.post(
                "/api/v1/orders", json=_order(rng, item_ids), headers=as_user(rng.choice(tokens))
            )
            # Some demo orders find an item sold out or miss the overnight minimum: real life.
            await _expect(placed, 201, 409, 422)
            summary.orders += placed.status_code == 201
    return summary
