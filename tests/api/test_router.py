import httpx

from app.core.config import Settings
from tests.conftest import serve, variant
from tests.factories import user

ME = "/api/v1/users/me"


async def test_default_limit_is_per_user_when_authenticated_else_per_address(
    client: httpx.AsyncClient, migrated: Settings
) -> None:
    async with serve(variant(migrated, rate_limit_default="3/minute")) as limited:
        # Registration, login and one anonymous call spend the address's budget of 3...
        first = await user(limited)
        assert (await limited.get(ME)).status_code == 401
        assert (await limited.get(ME)).status_code == 429
        # ...while each user counts against a budget of their own, from the same address.
        for _ in range(3):
            assert (await limited.get(ME, headers=first.headers)).status_code == 200
        refused = await limited.get(ME, headers=first.headers)
        assert refused.status_code == 429
        assert refused.headers["ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
    assert (await client.get("/health")).status_code == 200


async def test_callers_never_see_each_others_responses(client: httpx.AsyncClient) -> None:
    first, second = await user(client), await user(client)
    for _ in range(2):  # the second round would be served from any shared cache
        for account in (first, second):
            for path in (ME, "/api/v1/users/me/dashboard", "/api/v1/orders"):
                response = await client.get(path, headers=account.headers)
                assert response.status_code == 200, path
                assert response.headers["cache-control"] == "private, no-store", path
                assert "etag" not in response.headers, path
            me = (await client.get(ME, headers=account.headers)).json()
            assert me["email"] == account.email
