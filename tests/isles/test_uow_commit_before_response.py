"""A route's unit of work commits before its response is sent: a failed commit is an error to the
client, never a 200 for a change that was lost."""
from __future__ import annotations

import httpx
import toy_shop
from fastapi import APIRouter
from sqlalchemy.exc import OperationalError

from isles.api import create_app
from isles.http import Uow
from isles.unit_of_work import UnitOfWork


async def test_a_commit_that_fails_is_not_answered_with_success(shop, monkeypatch):
    router = APIRouter()

    @router.post("/items")
    async def create(uow: Uow) -> dict[str, str]:
        uow.add(toy_shop.Item(name="lost", price=1))
        return {"ok": "told"}

    async def failing_commit(self: UnitOfWork):
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(toy_shop.catalog, "router", router)
    app = create_app(shop, start=lambda: None)
    monkeypatch.setattr(UnitOfWork, "commit", failing_commit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://shop.test") as http:
        response = await http.post("/api/catalog/items")
    assert response.status_code >= 500, response.text
