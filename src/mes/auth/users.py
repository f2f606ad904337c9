"""Users (deactivated, never deleted) and their roles, managed by admins; the first administrator."""
from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any, Iterable

from fastapi import APIRouter, Query, status
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.orm import apply_changes
from isles.security import Principal
from mes.auth import credentials
from mes.auth.access import Admin, Reader
from mes.auth.accounts import (
    DEFAULT_ROLES,
    USERNAME,
    AuthError,
    UserOut,
    audit,
    aware,
    fail,
    get_user,
    normalize_username,
    now,
    password_expiry,
    reason_required,
    roles_of,
    run,
    set_password,
    user_out,
)
from mes.auth.api_tokens import active_tokens, publish_token
from mes.auth.events import ApiTokenRevoked, ApiTokenUpdated, UserCreated, UserDeleted, UserUpdated
from mes.auth.mfa import reset_mfa
from mes.auth.models import Credential, Role, User, UserRole
from mes.auth.sessions import revoke_sessions
from mes.auth.signatures import ensure_meanings

router = APIRouter()
Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


def _user_fields(user: User, roles: Iterable[str]) -> dict[str, Any]:
    return dict(user_id=str(user.id), username=user.username, first_name=user.first_name, last_name=user.last_name,
                display_name=user.display_name, email=user.email, roles=sorted(roles), is_active=user.is_active)


async def ensure_roles(uow: UnitOfWork, names: dict[str, str] | None = None) -> None:
    names = DEFAULT_ROLES if names is None else names
    existing = set(await uow.scalars(select(Role.name)))
    for name, description in names.items():
        if name not in existing:
            uow.add(Role(name=name, description=description))
    await uow.flush()


async def _role_ids(uow: UnitOfWork, names: Iterable[str]) -> dict[str, uuid.UUID]:
    wanted = sorted(set(names))
    found = {r.name: r.id for r in await uow.scalars(select(Role).where(Role.name.in_(wanted)))}
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise AuthError(f"unknown role(s): {', '.join(unknown)}; create them first (POST /roles)", 422)
    return found


async def create_user(uow: UnitOfWork, *, username: str, password: str, first_name: str = "", last_name: str = "",
                      email: str | None = None, roles: Iterable[str] = (), actor: Principal | None = None,
                      must_change_password: bool = False) -> User:
    username = normalize_username(username)
    if not USERNAME.match(username):
        raise AuthError("the username must be 2-150 characters: letters, digits, '.', '_', '@', '-'", 422)
    if await uow.scalar(select(User.id).where(User.username == username)):
        # also true for deactivated users: usernames are never reused (11.100)
        raise AuthError(f"the username {username} is taken (usernames are never reused)", 409)
    problem = credentials.check_password_policy(password, username)
    if problem:
        raise AuthError(problem, 422)
    role_ids = await _role_ids(uow, roles)
    user = User(username=username, first_name=first_name, last_name=last_name, email=email,
                must_change_password=must_change_password)
    uow.add(user)
    await uow.flush()
    uow.add(Credential(user_id=user.id, password_hash=credentials.hash_password(password), changed_at=now(),
                       expires_at=password_expiry()))
    for role_id in role_ids.values():
        uow.add(UserRole(user_id=user.id, role_id=role_id))
    for name in ("username", "first_name", "last_name", "email"):
        audit(uow, "user.created", "user", user.id, actor=actor, field=name, new=getattr(user, name))
    audit(uow, "user.created", "user", user.id, actor=actor, field="roles", new=sorted(role_ids))
    audit(uow, "user.created", "user", user.id, actor=actor, field="password", new="[set]")
    uow.publish(UserCreated(**_user_fields(user, role_ids)), entity=user)
    return user


async def update_user(uow: UnitOfWork, user_id: uuid.UUID, changes: dict[str, Any], *, actor: Principal,
                      reason: str | None = None) -> User:
    user = await get_user(uow, user_id)
    if not user.is_active:
        raise AuthError(f"user {user.username} is deactivated and cannot be changed", 409)
    changed, previous = apply_changes(user, changes)
    if not changed:
        return user
    for name, value in changed.items():
        audit(uow, "user.updated", "user", user.id, actor=actor, field=name, old=previous[name], new=value,
              reason=reason)
    await _publish_user_updated(uow, user, changed, previous)
    return user


async def _publish_user_updated(uow: UnitOfWork, user: User, changed: dict[str, Any],
                                previous: dict[str, Any]) -> None:
    from pydantic.alias_generators import to_camel
    roles = await roles_of(uow, user.id)
    user.updated_at = now()  # bump the version even when only roles changed
    await uow.flush()
    uow.publish(UserUpdated(**_user_fields(user, roles),
                            changes={to_camel(k): _jsonable(v) for k, v in changed.items()},
                            previous_values={to_camel(k): _jsonable(v) for k, v in previous.items()}), entity=user)


def _jsonable(value: Any) -> Any:
    return aware(value).isoformat() if isinstance(value, datetime) else value


async def set_roles(uow: UnitOfWork, user_id: uuid.UUID, names: Iterable[str], *, actor: Principal,
                    reason: str | None = None) -> list[str]:
    user = await get_user(uow, user_id)
    if not user.is_active:
        raise AuthError(f"user {user.username} is deactivated and cannot be changed", 409)
    wanted = await _role_ids(uow, names)
    current = await roles_of(uow, user.id)
    if sorted(wanted) == current:
        return current
    if actor.user_id == str(user.id) and "admin" in current and "admin" not in wanted:
        raise AuthError("an administrator cannot remove their own admin role", 409)
    links = await uow.scalars(select(UserRole).where(UserRole.user_id == user.id))
    current_links = {link.role_id: link for link in links}
    for role_id, link in current_links.items():
        if role_id not in wanted.values():
            await uow.session.delete(link)
    for role_id in wanted.values():
        if role_id not in current_links:
            uow.add(UserRole(user_id=user.id, role_id=role_id))
    audit(uow, "user.roles_changed", "user", user.id, actor=actor, field="roles", old=current, new=sorted(wanted),
          reason=reason)
    await uow.flush()
    await _publish_user_updated(uow, user, {"roles": sorted(wanted)}, {"roles": current})
    # the user's API tokens act with the user's roles: tell the verifiers
    for token in await active_tokens(uow, user.id):
        publish_token(uow, ApiTokenUpdated, token, user, sorted(wanted))
        token.updated_at = now()
    return sorted(wanted)


async def deactivate_user(uow: UnitOfWork, user_id: uuid.UUID, *, actor: Principal, reason: str | None = None) -> User:
    """Deactivate: the row (and its username) stays forever; sessions and API tokens are revoked."""
    user = await get_user(uow, user_id)
    if not user.is_active:
        return user
    if actor.user_id == str(user.id):
        raise AuthError("you cannot deactivate your own account", 409)
    user.is_active = False
    user.deactivated_at = now()
    audit(uow, "user.deactivated", "user", user.id, actor=actor, field="is_active", old=True, new=False, reason=reason)
    await revoke_sessions(uow, user.id, reason="user_deactivated", actor=actor)
    roles = await roles_of(uow, user.id)
    for token in await active_tokens(uow, user.id):
        token.revoked_at = now()
        audit(uow, "api_token.revoked", "api_token", token.id, actor=actor, field="revoked_at", new=token.revoked_at,
              reason="user deactivated")
        await uow.flush()
        publish_token(uow, ApiTokenRevoked, token, user, roles)
    await uow.flush()
    uow.publish(UserDeleted(user_id=str(user.id), username=user.username, display_name=user.display_name), entity=user)
    return user


async def unlock_user(uow: UnitOfWork, user_id: uuid.UUID, *, actor: Principal) -> User:
    user = await get_user(uow, user_id)
    if user.locked_until is None and user.failed_login_count == 0:
        return user
    audit(uow, "user.unlocked", "user", user.id, actor=actor, field="locked_until", old=user.locked_until, new=None)
    user.locked_until = None
    user.failed_login_count = 0
    return user


async def bootstrap_admin(uow: UnitOfWork, env: dict[str, str] | Any) -> tuple[User | None, str | None]:
    """Create the default roles and, if no administrator exists, the first one.

    Returns the user and - only when it was generated - the password, for the caller to show once.
    """
    await ensure_roles(uow)
    await ensure_meanings(uow)
    admins = await uow.scalar(select(func.count()).select_from(UserRole).join(Role, Role.id == UserRole.role_id)
                              .join(User, User.id == UserRole.user_id)
                              .where(Role.name == "admin", User.is_active.is_(True)))
    if admins:
        return None, None
    username = normalize_username(env.get("MES_ADMIN_USERNAME") or "admin")
    given = env.get("MES_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(18)
    if await uow.scalar(select(User.id).where(User.username == username)):
        username = f"{username}-{secrets.token_hex(3)}"  # the name is taken forever (never reused)
    try:
        user = await create_user(uow, username=username, password=password, first_name="System",
                                 last_name="Administrator", roles=["admin"])
    except IntegrityError:  # another process bootstrapped at the same moment
        return None, None
    except AuthError as exc:
        from isles import ConfigurationError
        raise ConfigurationError(f"cannot create the first administrator: {exc}", service="auth",
                                 fix="choose another MES_ADMIN_PASSWORD / MES_ADMIN_USERNAME") from None
    return user, None if given else password


class UserIn(Schema):
    username: str = Field(min_length=2, max_length=150, examples=["jsmith"])
    password: str = Field(min_length=1, max_length=1024)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    email: str | None = Field(default=None, max_length=255)
    roles: list[str] = Field(default_factory=list, max_length=20)
    must_change_password: bool = True


class UserPatch(Schema):
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=255)
    reason: str | None = Field(default=None, max_length=1000, description="reason for change (audit trail)")


class RolesIn(Schema):
    roles: list[str] = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=1000)


class ReasonIn(Schema):
    reason: str | None = Field(default=None, max_length=1000)


class PasswordResetIn(Schema):
    temporary_password: str = Field(min_length=1, max_length=1024)
    reason: str | None = Field(default=None, max_length=1000)


class RoleIn(Schema):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    description: str = Field(default="", max_length=255)


class RoleOut(ApiOut):
    id: uuid.UUID
    name: str
    description: str


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def post_user(data: UserIn, principal: Admin, uow: Uow) -> UserOut:
    user = await run(uow, lambda: create_user(
        uow, username=data.username, password=data.password, first_name=data.first_name, last_name=data.last_name,
        email=data.email, roles=data.roles, actor=principal, must_change_password=data.must_change_password))
    return await user_out(uow, user)


@router.get("/users", response_model=PageOut[UserOut])
async def list_users(principal: Admin, uow: Uow, page: Page,
                     include_inactive: bool = Query(False, alias="includeInactive"),
                     username: str | None = Query(None, min_length=1, max_length=255,
                                                  description="the user with this username (any case)"),
                     ) -> Paged[UserOut]:
    query = select(User).order_by(User.username)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    if username is not None:
        query = query.where(func.lower(User.username) == username.strip().lower())
    found = await paged(uow, query, page)
    return Paged([await user_out(uow, u) for u in found.items], found.total, found.limit, found.offset)


@router.get("/users/{user_id}", response_model=UserOut, name="get_user")
async def read_user(user_id: uuid.UUID, principal: Admin, uow: Uow) -> UserOut:
    try:
        return await user_out(uow, await get_user(uow, user_id))
    except AuthError as exc:
        raise fail(exc) from None


@router.patch("/users/{user_id}", response_model=UserOut)
async def patch_user(user_id: uuid.UUID, patch: UserPatch, principal: Admin, uow: Uow) -> UserOut:
    changes = patch.model_dump(exclude_unset=True, exclude={"reason"})
    for key in ("first_name", "last_name"):
        if key in changes and changes[key] is None:
            changes.pop(key)
    reason = reason_required(patch.reason)
    user = await run(uow, lambda: update_user(uow, user_id, changes, actor=principal, reason=reason))
    return await user_out(uow, user)


@router.put("/users/{user_id}/roles", response_model=UserOut)
async def put_roles(user_id: uuid.UUID, data: RolesIn, principal: Admin, uow: Uow) -> UserOut:
    reason = reason_required(data.reason)
    await run(uow, lambda: set_roles(uow, user_id, data.roles, actor=principal, reason=reason))
    return await user_out(uow, await get_user(uow, user_id))


@router.post("/users/{user_id}/deactivate", response_model=UserOut)
async def deactivate(user_id: uuid.UUID, principal: Admin, uow: Uow, data: ReasonIn | None = None) -> UserOut:
    """Deactivate (the only 'delete'): the row and its username are kept forever."""
    reason = reason_required(data.reason if data else None)
    user = await run(uow, lambda: deactivate_user(uow, user_id, actor=principal, reason=reason))
    return await user_out(uow, user)


@router.delete("/users/{user_id}", response_model=UserOut)
async def delete_user(user_id: uuid.UUID, principal: Admin, uow: Uow) -> UserOut:
    """Same as deactivate: users are never erased (21 CFR Part 11 11.100)."""
    user = await run(uow, lambda: deactivate_user(uow, user_id, actor=principal, reason="DELETE /users"))
    return await user_out(uow, user)


@router.post("/users/{user_id}/unlock", response_model=UserOut)
async def unlock(user_id: uuid.UUID, principal: Admin, uow: Uow) -> UserOut:
    user = await run(uow, lambda: unlock_user(uow, user_id, actor=principal))
    return await user_out(uow, user)


@router.post("/users/{user_id}/password-reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(user_id: uuid.UUID, data: PasswordResetIn, principal: Admin, uow: Uow) -> None:
    """Set a temporary password the user must change at the next login; their sessions end."""
    reason = reason_required(data.reason)

    async def action() -> None:
        user = await get_user(uow, user_id)
        await set_password(uow, user, data.temporary_password, actor=principal, must_change=True,
                                    reason=reason)
        await revoke_sessions(uow, user.id, reason="password_reset", actor=principal)
    await run(uow, action)


@router.post("/users/{user_id}/mfa-reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_user_mfa(user_id: uuid.UUID, principal: Admin, uow: Uow) -> None:
    await run(uow, lambda: reset_mfa(uow, user_id, actor=principal))


@router.get("/roles", response_model=PageOut[RoleOut])
async def list_roles(principal: Reader, uow: Uow, page: Page) -> Paged[Role]:
    return await paged(uow, select(Role).order_by(Role.name), page)


@router.post("/roles", status_code=status.HTTP_201_CREATED, response_model=RoleOut)
async def post_role(data: RoleIn, principal: Admin, uow: Uow) -> Role:
    async def action() -> Role:
        if await uow.scalar(select(Role.id).where(Role.name == data.name)):
            raise AuthError(f"role {data.name} exists", 409)
        role = Role(name=data.name, description=data.description)
        uow.add(role)
        await uow.flush()
        audit(uow, "role.created", "role", role.id, actor=principal, field="name", new=role.name)
        return role
    return await run(uow, action)
