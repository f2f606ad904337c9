"""Scoped API tokens: created by a logged-in user (shown once, stored as a hash), revoked by
them or an admin, and published so every other service can verify them in its own database."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Response, status
from pydantic import Field
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.security import Principal, hash_token, new_api_token
from mes.auth import credentials
from mes.auth.access import LoggedIn, Reader, Writer, may_manage_others
from mes.auth.accounts import SCOPE, AuthError, audit, aware, get_user, now, roles_of, run
from mes.auth.events import ApiTokenCreated, ApiTokenRevoked
from mes.auth.models import ApiToken, User

router = APIRouter()
Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


async def active_tokens(uow: UnitOfWork, user_id: uuid.UUID) -> list[ApiToken]:
    return list(await uow.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))))


def publish_token(uow: UnitOfWork, event_type: type, token: ApiToken, user: User, roles: list[str]) -> None:
    uow.publish(event_type(api_token_id=str(token.id), token_hash=token.token_hash, user_id=str(user.id),
                           username=user.username, roles=sorted(roles), scopes=sorted(token.scopes),
                           expires_at=int(aware(token.expires_at).timestamp()) if token.expires_at else None,
                           revoked=token.revoked_at is not None), entity=token)


async def create_api_token(uow: UnitOfWork, principal: Principal, *, name: str, scopes: list[str],
                           expires_in_days: int | None) -> tuple[ApiToken, str]:
    """A new API token for the calling user; the plain token is returned once and never stored."""
    if principal.kind != "user":
        raise AuthError("API tokens are created by a logged-in user, not by another API token", 403)
    bad = [s for s in scopes if not SCOPE.match(s)]
    if bad or not scopes:
        raise AuthError("scopes must be like 'resource:read', 'resource:write', 'auth:admin' or '*'", 422)
    limit = credentials.settings().api_token_max_days
    days = expires_in_days or limit
    if not 1 <= days <= limit:
        raise AuthError(f"expiresInDays must be from 1 to {limit}", 422)
    user = await get_user(uow, principal.user_uuid)
    plain = new_api_token()
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(plain), token_prefix=plain[:12],
                     scopes=sorted(set(scopes)), expires_at=now() + timedelta(days=days))
    uow.add(token)
    await uow.flush()
    audit(uow, "api_token.created", "api_token", token.id, actor=principal, field="scopes", new=token.scopes)
    publish_token(uow, ApiTokenCreated, token, user, await roles_of(uow, user.id))
    return token, plain


async def revoke_api_token(uow: UnitOfWork, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    token: ApiToken | None = await uow.get(ApiToken, token_id)
    if token is None or (str(token.user_id) != principal.user_id and not may_manage_others(principal, "API token")):
        raise AuthError(f"API token {token_id} not found", 404)
    if token.revoked_at is None:
        token.revoked_at = now()
        audit(uow, "api_token.revoked", "api_token", token.id, actor=principal, field="revoked_at",
              new=token.revoked_at)
        await uow.flush()
        user = await get_user(uow, token.user_id)
        publish_token(uow, ApiTokenRevoked, token, user, await roles_of(uow, user.id))
    return token


class ApiTokenIn(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["line 3 scanner"])
    scopes: list[str] = Field(min_length=1, max_length=20, examples=[["resource:read"]])
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiTokenOut(ApiOut):
    id: uuid.UUID
    name: str
    token_prefix: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    user_id: uuid.UUID


class ApiTokenCreatedOut(ApiTokenOut):
    token: str = Field(description="the API token; shown only in this response")


@router.post("/api-tokens", status_code=status.HTTP_201_CREATED, response_model=ApiTokenCreatedOut)
async def post_api_token(data: ApiTokenIn, principal: LoggedIn, uow: Uow, response: Response) -> ApiTokenCreatedOut:
    """A scoped API token acting for the caller (with at most the caller's roles). Shown once."""
    response.headers["Cache-Control"] = "no-store"
    token, plain = await run(uow, lambda: create_api_token(
        uow, principal, name=data.name, scopes=data.scopes, expires_in_days=data.expires_in_days))
    return ApiTokenCreatedOut.model_validate({**ApiTokenOut.model_validate(token).model_dump(), "token": plain})


@router.get("/api-tokens", response_model=PageOut[ApiTokenOut])
async def list_api_tokens(principal: Reader, uow: Uow, page: Page) -> Paged[ApiToken]:
    return await paged(uow, select(ApiToken).where(ApiToken.user_id == principal.user_uuid)
                       .order_by(ApiToken.created_at.desc(), ApiToken.id), page)


@router.delete("/api-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_api_token(token_id: uuid.UUID, principal: Writer, uow: Uow) -> None:
    await run(uow, lambda: revoke_api_token(uow, principal, token_id))
