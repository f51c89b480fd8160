"""The caller's API keys (personal access tokens) for scripts and servers."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.core.types import MAX_ID
from app.domains.auth.api_keys import ApiKeyService
from app.domains.auth.dependencies import ApiKeyServiceDep, ProfileUser, get_principal
from app.domains.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/users/me/api-keys", tags=["api-keys"], route_class=ApiRoute)

ApiKeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="the API key's id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; the key itself is shown only in this response",
    responses=error_responses(get_principal, ApiKeyService.create),
)
async def create_api_key(
    data: ApiKeyCreate, principal: ProfileUser, keys: ApiKeyServiceDep
) -> ApiKeyCreated:
    return await keys.create(principal, data)


@router.get(
    "",
    summary="List your API keys, newest first (without the keys themselves)",
    responses=error_responses(get_principal, ApiKeyService.list_page),
)
async def list_api_keys(
    principal: ProfileUser, page: PageParamsDep, keys: ApiKeyServiceDep
) -> Page[ApiKeyRead]:
    return await keys.list_page(principal, page)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key; it fails from the next request on",
    responses=error_responses(get_principal, ApiKeyService.revoke),
)
async def revoke_api_key(key_id: ApiKeyId, principal: ProfileUser, keys: ApiKeyServiceDep) -> None:
    await keys.revoke(principal, key_id)
