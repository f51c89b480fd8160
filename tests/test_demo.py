import httpx
from fastapi import FastAPI

from app.demo import DemoCounts, seed_demo


async def test_demo_data_is_loaded_through_the_api(app: FastAPI, client: httpx.AsyncClient) -> None:
    summary = await seed_demo(app, DemoCounts(users=3, items=12, orders=6, posts=4))
    assert (summary.users, summary.items, summary.posts) == (3, 12, 4)
    assert summary.orders > 0
    assert (await client.get("/api/v1/items")).json()["total"] == 12
    assert (await client.get("/api/v1/posts")).json()["total"] == 4
    # Loading again adds data but no duplicate accounts.
    again = await seed_demo(app, DemoCounts(users=3, items=1, orders=0, posts=0))
    assert again.users == 0
