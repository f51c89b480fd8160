"""A typed client generated from the committed contract (docs/openapi.json) by
openapi-python-client, used against the running service: the document's operation ids,
schemas and declared responses are proven usable by the tool a client's developer would run.
"""

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from scripts.openapi import CONTRACT
from tests.conftest import asgi_client
from tests.factories import PASSWORD, unique_email

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "reference_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The client package, generated into a temporary directory and imported."""
    root = tmp_path_factory.mktemp("generated")
    config = root / "config.yaml"
    # The generated code is only imported here: formatting it would add nothing.
    config.write_text("post_hooks: []\n")
    result = subprocess.run(  # noqa: S603 - the project's own tool on its own contract
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(CONTRACT),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # A warning means part of the document could not be turned into code.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(package: Any, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def test_operations_become_short_methods_grouped_by_tag(generated: Any) -> None:
    for module in ("api.orders.place_order", "api.items.read_item", "api.users.update_me"):
        assert hasattr(_module(generated, module), "asyncio_detailed"), module


async def test_a_client_registers_signs_in_and_writes_through_the_generated_code(
    app: FastAPI, client: httpx.AsyncClient, generated: Any
) -> None:
    models = _module(generated, "models")
    register_user = _module(generated, "api.users.register_user")
    issue_token = _module(generated, "api.auth.issue_token")
    read_me = _module(generated, "api.users.read_me")
    create_item = _module(generated, "api.items.create_item")
    read_item = _module(generated, "api.items.read_item")
    list_items = _module(generated, "api.items.list_items")

    anonymous = generated.Client(base_url=str(client.base_url)).set_async_httpx_client(client)
    email = unique_email("generated")
    registered = await register_user.asyncio_detailed(
        client=anonymous,
        body=models.UserCreate(email=email, full_name="Ada Lovelace", password=PASSWORD),
    )
    assert registered.status_code == 201
    assert isinstance(registered.parsed, models.UserRead)
    assert registered.parsed.email == email
    assert registered.parsed.email_verified is False

    pair = await issue_token.asyncio(
        client=anonymous, body=models.TokenRequest(username=email, password=PASSWORD)
    )
    assert isinstance(pair, models.TokenPair)
    assert "items:write" in pair.scope.split()

    async with asgi_client(app) as http:
        http.headers["Authorization"] = f"Bearer {pair.access_token}"
        signed_in = generated.AuthenticatedClient(
            base_url=str(http.base_url), token=pair.access_token
        ).set_async_httpx_client(http)
        me = await read_me.asyncio(client=signed_in)
        assert isinstance(me, models.UserRead)
        assert me.id == registered.parsed.id

        created = await create_item.asyncio_detailed(
            client=signed_in,
            body=models.ItemCreate(name="Lamp", description="Bright", price="12.50", stock=3),
        )
        assert created.status_code == 201
        assert isinstance(created.parsed, models.ItemRead)
        refused = await create_item.asyncio_detailed(
            client=signed_in, body=models.ItemCreate(name="Lamp", price="0", stock=3)
        )
        assert refused.status_code == 422
        assert isinstance(refused.parsed, models.Problem)
        assert refused.parsed.type_ == "urn:problem-type:validation-error"

    item = await read_item.asyncio(client=anonymous, item_id=created.parsed.id)
    assert isinstance(item, models.ItemRead)
    assert (item.name, item.price, item.stock, item.owner_id) == ("Lamp", "12.50", 3, me.id)
    page = await list_items.asyncio(client=anonymous, q="Lamp")
    assert [listed.id for listed in page.items] == [item.id]
    missing = await read_item.asyncio_detailed(client=anonymous, item_id=item.id + 1)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.type_ == "urn:problem-type:item-not-found"
