"""The catalog: public, cached reads; owners (or administrators) change their items."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, Security, status

from app.core.errors import error_responses
from app.core.http.etag import etag_response
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.core.types import MAX_ID
from app.domains.auth.dependencies import get_writer
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.dependencies import ItemReaderDep, ItemServiceDep
from app.domains.items.schemas import ItemCreate, ItemRead, ItemSearch, ItemUpdate
from app.domains.items.service import ItemReader, ItemService

router = APIRouter(prefix="/items", tags=["items"], route_class=ApiRoute)

ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="the item's id")]
ItemWriter = Annotated[Principal, Security(get_writer, scopes=[Scope.ITEMS_WRITE])]


@router.get(
    "",
    summary="Search, filter and sort the catalog",
    response_model=Page[ItemRead],
    responses=error_responses(ItemReader.search),
)
async def list_items(search: Annotated[ItemSearch, Query()], items: ItemReaderDep) -> Response:
    return etag_response(await items.search(search))


@router.get(
    "/{item_id}",
    summary="Read an item",
    response_model=ItemRead,
    responses=error_responses(ItemReader.get),
)
async def read_item(item_id: ItemId, items: ItemReaderDep) -> Response:
    return etag_response(await items.get(item_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add an item to the catalog",
    responses=error_responses(get_writer),
)
async def create_item(
    data: ItemCreate,
    principal: ItemWriter,
    items: ItemServiceDep,
    request: Request,
    response: Response,
) -> ItemRead:
    item = await items.create(principal, data)
    response.headers["Location"] = request.app.url_path_for("read_item", item_id=item.id)
    return item


@router.patch(
    "/{item_id}",
    summary="Change an item (its owner, or an administrator with items:admin)",
    responses=error_responses(get_writer, ItemService.update),
)
async def update_item(
    item_id: ItemId, changes: ItemUpdate, principal: ItemWriter, items: ItemServiceDep
) -> ItemRead:
    return await items.update(principal, item_id, changes)


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an item (its owner, or an administrator with items:admin)",
    responses=error_responses(get_writer, ItemService.delete),
)
async def delete_item(item_id: ItemId, principal: ItemWriter, items: ItemServiceDep) -> None:
    await items.delete(principal, item_id)
