"""What a service's HTTP routes share: the service answering the request and its unit of work,
pagination, load-or-404, and list queries with filters.

A service's router is declared inside its ``Service(...)`` and its routes need that service (a
unit of work on its database, its API token replica). Importing the declaration from the route
modules would make a cycle, so the binding goes the other way: :func:`isles.api.create_app`
mounts each router with :func:`serve`, which records the service on the request, and the
routes ask for it through :data:`Uow` or :func:`bound_service`::

    @router.get("/parts", response_model=PageOut[PartOut])
    async def list_parts(uow: Uow, page: Page) -> Paged[Part]:
        return await paged(uow, select(Part).order_by(Part.part_number), page)

    @router.get("/parts/{part_id}", response_model=PartOut)
    async def get_part(part_id: uuid.UUID, uow: Uow) -> Part:
        return await get_or_404(uow, Part, part_id, what="part")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, AsyncIterator, Callable, Generic, Sequence, TypeVar

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from isles import idempotency
from isles.errors import ConfigurationError
from isles.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from isles.service import Service

__all__ = ["Limit", "Offset", "Page", "PageOut", "Paged", "Pagination", "Uow", "bound_service", "get_or_404",
           "list_page", "not_found", "page_of", "paged", "refuse_unknown_query", "serve", "unit_of_work"]

T = TypeVar("T")
U = TypeVar("U")

#: ``?limit=``: 1 to 1000 rows (routes choose the default, usually 100).
Limit = Annotated[int, Query(ge=1, le=1000)]
#: ``?offset=``: rows to skip, 0 to 10^9.
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


# -- the service answering the request -----------------------------------------------------------
def serve(service: "Service") -> Callable[[Request], None]:
    """Dependency that marks requests to ``service``'s router as answered by ``service``; the app
    mounts each router with it (``include_router(service.router, dependencies=[Depends(serve(s))])``),
    before any of the routes' own dependencies run."""

    def bind(request: Request) -> None:
        request.state.isles_service = service

    return bind


def bound_service(request: Request) -> "Service | None":
    """The service whose router answers ``request``, or None outside a router mounted by :func:`serve`."""
    return getattr(request.state, "isles_service", None)


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """Dependency: a unit of work on the database of the service answering the request.

    For a POST/PUT/PATCH/DELETE with an ``Idempotency-Key`` header to a service that declares
    ``idempotency=Idempotency()``, a keyed one (:mod:`isles.idempotency`): a retry gets the first
    response and the route does not run again."""
    service = bound_service(request)
    if service is None:
        raise ConfigurationError(f"the route {request.url.path} asked for a unit of work but no service serves it",
                                 fix="mount the service's router with isles.api.create_app(), or add "
                                     "dependencies=[Depends(isles.http.serve(service))] to include_router()")
    if idempotency.applies(service, request):
        # a command with Idempotency-Key: its effect commits together with its stored response
        async with idempotency.keyed_unit_of_work(request, service) as uow:
            yield uow
        return
    async with service.unit_of_work() as uow:
        yield uow


#: ``uow: Uow`` in a route: the answering service's unit of work. It commits when the route
#: returns and before the response is sent (``scope="function"``): a commit that fails is the
#: client's error, never a success it was already told about.
Uow = Annotated[UnitOfWork, Depends(unit_of_work, scope="function")]


# -- pagination ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pagination:
    """``?limit=`` (1-1000, default 100) and ``?offset=`` (default 0) of a list route."""

    limit: int = 100
    offset: int = 0


def _page(limit: Limit = 100, offset: Offset = 0) -> Pagination:
    return Pagination(limit=limit, offset=offset)


#: ``page: Page`` in a list route: its ``limit`` and ``offset`` query parameters.
Page = Annotated[Pagination, Depends(_page)]


# -- loading and listing -------------------------------------------------------------------------
def not_found(what: str, ident: Any) -> HTTPException:
    """The 404 every service answers for a missing record: ``{"detail": "<what> <id> not found"}``."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} {ident} not found")


async def get_or_404(uow: UnitOfWork, model: type[T], ident: Any, *, what: str) -> T:
    """The ``model`` row with primary key ``ident``, or a 404 naming ``what`` and the id."""
    row: T | None = await uow.get(model, ident)
    if row is None:
        raise not_found(what, ident)
    return row


def _filtered(query: Any, filters: dict[str, Any]) -> Any:
    given = {name: value for name, value in filters.items() if value is not None}
    if given:
        entity = query.column_descriptions[0]["entity"]
        query = query.where(*(getattr(entity, name) == value for name, value in given.items()))
    return query


async def list_page(uow: UnitOfWork, query: Any, page: Pagination | None = None, **filters: Any) -> list[Any]:
    """The rows of a ``select()`` for one page, with ``column == value`` for every filter that is
    not None (``filters`` name the query's entity attributes: ``list_page(uow, q, page, part_id=x)``).

    The rows only: a list route answers :func:`paged` (the rows and the total)."""
    query = _filtered(query, filters)
    if page is not None:
        query = query.limit(page.limit).offset(page.offset)
    return list(await uow.scalars(query))


# -- the page a list route answers ---------------------------------------------------------------
class PageOut(BaseModel, Generic[T]):
    """What every list route answers: one page of ``items``, the ``total`` of items that match
    the filters (all pages), and the ``limit`` and ``offset`` that chose the page.

    ``response_model=PageOut[PartOut]``; its OpenAPI schema is named ``PartPage``."""

    items: list[T]
    total: int = Field(ge=0, description="items matching the filters, over all pages")
    limit: int = Field(description="the most items a page holds (?limit=)")
    offset: int = Field(description="items skipped before this page (?offset=)")

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        name = getattr(params[0], "__name__", "Item")
        return f"{name.removesuffix('Out') or name}Page"


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of rows and the total, as a list route returns it (:class:`PageOut` reads it)."""

    items: list[T]
    total: int
    limit: int
    offset: int

    def map(self, convert: Callable[[T], U]) -> "Paged[U]":
        """The same page with every item converted (a row to the response model it needs)."""
        return Paged([convert(item) for item in self.items], self.total, self.limit, self.offset)


async def paged(uow: UnitOfWork, query: Any, page: Pagination, **filters: Any) -> Paged[Any]:
    """One page of a ``select()``'s rows (filters as in :func:`list_page`) and how many rows match
    in all: the count runs on the same filtered query without its ORDER BY, LIMIT and OFFSET."""
    query = _filtered(query, filters)
    total = await uow.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(await uow.scalars(query.limit(page.limit).offset(page.offset)))
    return Paged(rows, int(total or 0), page.limit, page.offset)


def page_of(items: Sequence[T], page: Pagination) -> Paged[T]:
    """One page of a list computed in Python (a report, an aggregate), and its length as the total."""
    return Paged(list(items[page.offset:page.offset + page.limit]), len(items), page.limit, page.offset)


# -- query parameters a route does not declare ---------------------------------------------------
def _declared_query(dependant: Dependant) -> frozenset[str]:
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        for field in current.query_params:
            annotation = getattr(field.field_info, "annotation", None)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a model of query params
                for name, info in annotation.model_fields.items():
                    names.update({name, info.alias or name})
            else:
                names.add(field.alias)
        stack.extend(current.dependencies)
    return frozenset(names)


def refuse_unknown_query(request: Request) -> None:
    """Dependency (the app adds it to every service router): a query parameter the route does not
    declare is refused with a 422 naming it, like an unknown body field, so ``?partID=...`` or
    ``?lmit=5`` is an error rather than a filter or a page size silently ignored."""
    route: Any = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    declared = getattr(route, "_isles_query_names", None)
    if declared is None:  # computed once per route
        declared = _declared_query(dependant)
        route._isles_query_names = declared
    unknown = sorted({name for name in request.query_params.keys() if name not in declared})
    if unknown:
        raise RequestValidationError([
            {"loc": ("query", name), "msg": f"unknown query parameter {name!r}; the route accepts "
                                            f"{', '.join(sorted(declared)) or 'none'}", "type": "extra_forbidden"}
            for name in unknown])
