"""A user account's core, shared by every auth concept: refusals (:class:`AuthError`), the UTC
clock, the audit trail writer, security alerts, a user's roles and password.

Every change writes its audit entries in the same transaction as the change itself, so there is
no change without its audit trail and no audit entry for a change that rolled back.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, TypeVar, overload

from fastapi import HTTPException, Request, status
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiOut
from isles.security import Principal
from mes.auth import credentials
from mes.auth.events import SecurityAlertRaised
from mes.auth.models import AuditLog, Credential, Role, User, UserRole

DEFAULT_ROLES = {
    "admin": "Manages users, roles and configuration",
    "engineer": "Maintains resources, products and routings",
    "supervisor": "Releases and dispatches work",
    "operator": "Executes operations on the shop floor",
    "quality": "Inspects, dispositions and signs quality records",
    "auditor": "Reads the audit trail",
    "viewer": "Reads production data",
}


FAR_FUTURE = datetime(9999, 12, 31, tzinfo=timezone.utc)


USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,149}$")


SCOPE = re.compile(r"^(\*|[a-z][a-z_]*:(read|write|admin|\*))$")


TOTP_ISSUER = "isles MES"
_T = TypeVar("_T")


class AuthError(Exception):
    """A refusal the API turns into an HTTP status; the message is safe to show."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class LoginFailed(AuthError):
    status = 401


class PasswordChangeRequired(AuthError):
    status = 403


def now() -> datetime:
    return datetime.now(timezone.utc)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
@overload
def aware(value: datetime | None) -> datetime | None: ...


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def normalize_username(username: str) -> str:
    return username.strip().lower()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return aware(value).isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(sorted(map(str, value)))
    return str(value)


def audit(uow: UnitOfWork, action: str, entity_type: str, entity_id: Any, *, actor: Principal | User | None,
          field: str | None = None, old: Any = None, new: Any = None, reason: str | None = None,
          ip: str | None = None) -> None:
    """Add an audit entry to this transaction; the time is always the server's UTC clock."""
    actor_id = actor_name = None
    if isinstance(actor, Principal):
        actor_id, actor_name = uuid.UUID(actor.user_id), actor.username
    elif isinstance(actor, User):
        actor_id, actor_name = actor.id, actor.username
    uow.add(AuditLog(occurred_at=now(), actor_id=actor_id, actor_username=actor_name, action=action,
                     entity_type=entity_type, entity_id=None if entity_id is None else str(entity_id),
                     field=field, old_value=_text(old), new_value=_text(new), reason=reason, ip_address=ip))


def raise_alert(uow: UnitOfWork, kind: str, user_id: uuid.UUID, username: str, detail: str,
                ip: str | None = None) -> None:
    """Publish an immediate security alert, in the same transaction as what caused it."""
    alert_id = uuid.uuid4()
    audit(uow, f"security_alert.{kind}", "user", user_id, actor=None, reason=detail, ip=ip)
    uow.publish(SecurityAlertRaised(alert_id=str(alert_id), kind=kind, user_id=str(user_id), username=username,
                                    detail=detail, occurred_at=now().isoformat(), ip_address=ip),
                key=str(alert_id), version=1)


async def roles_of(uow: UnitOfWork, user_id: uuid.UUID) -> list[str]:
    rows = await uow.scalars(select(Role.name).join(UserRole, UserRole.role_id == Role.id)
                             .where(UserRole.user_id == user_id).order_by(Role.name))
    return list(rows)


async def get_user(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    user: User | None = await uow.get(User, user_id)
    if user is None:
        raise AuthError(f"user {user_id} not found", 404)
    return user


def password_expiry() -> datetime | None:
    days = credentials.settings().password_max_age_days
    return now() + timedelta(days=days) if days else None


async def set_password(uow: UnitOfWork, user: User, password: str, *, actor: Principal | User | None,
                       must_change: bool = False, reason: str | None = None) -> None:
    problem = credentials.check_password_policy(password, user.username)
    if problem:
        raise AuthError(problem, 422)
    credential = await uow.scalar(select(Credential).where(Credential.user_id == user.id))
    if credential is not None and credentials.verify_password(credential.password_hash, password):
        raise AuthError("the new password must differ from the current one", 422)
    new_hash = credentials.hash_password(password)
    if credential is None:
        uow.add(Credential(user_id=user.id, password_hash=new_hash, changed_at=now(), expires_at=password_expiry()))
    else:
        credential.password_hash, credential.changed_at = new_hash, now()
        credential.expires_at = password_expiry()
    user.must_change_password = must_change
    audit(uow, "user.password_changed" if not must_change else "user.password_reset", "user", user.id, actor=actor,
          field="password", old="[redacted]", new="[redacted]", reason=reason)


def fail(exc: AuthError) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return HTTPException(exc.status, str(exc), headers=headers)


async def run(uow: UnitOfWork, action: Callable[[], Awaitable[_T]], *, commit_on_error: bool = False) -> _T:
    """Run a domain action and commit; an AuthError becomes its HTTP status. With
    ``commit_on_error`` a refusal still commits what it recorded (failed-login counts, audit)."""
    try:
        result = await action()
    except AuthError as exc:
        if commit_on_error:
            await uow.commit()
        raise fail(exc) from None
    await uow.commit()
    return result


def reason_required(reason: str | None) -> str | None:
    """With MES_AUTH_REQUIRE_REASON=1 every administrative change must say why (audit trail)."""
    from mes.auth.credentials import settings
    if settings().require_reason and not (reason or "").strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a reason for the change is required "
                            "(MES_AUTH_REQUIRE_REASON=1): send 'reason'")
    return reason


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


class UserOut(ApiOut):
    id: uuid.UUID
    username: str
    first_name: str
    last_name: str
    display_name: str
    email: str | None
    is_active: bool
    deactivated_at: datetime | None
    locked_until: datetime | None
    failed_login_count: int
    last_login_at: datetime | None
    must_change_password: bool
    roles: list[str] = []
    version: int
    created_at: datetime
    updated_at: datetime


async def user_out(uow: UnitOfWork, user: User) -> UserOut:
    out = UserOut.model_validate(user)
    out.roles = await roles_of(uow, user.id)
    return out
