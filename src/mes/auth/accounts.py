"""What the auth service does, as functions over a unit of work (the API and the seed call them).

Every change writes its audit entries in the same transaction as the change itself, so there is
no change without its audit trail and no audit entry for a change that rolled back.
"""
from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Iterable

import pyotp
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.orm import apply_changes
from isles.security import (Principal, constant_time_equals, hash_token, issue_access_token, issue_assertion,
                            new_api_token,
                            new_opaque_token, principal_from_token_row)
from mes.auth import credentials
from mes.auth.events import (ApiTokenCreated, ApiTokenRevoked, ApiTokenUpdated, SecurityAlertRaised, UserCreated,
                             UserDeleted, UserUpdated)
from mes.auth.models import (ApiToken, AuditLog, Credential, MfaFactor, RefreshToken, Role, Session, SignatureMeaning,
                             User,
                             UserRole)

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


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def normalize_username(username: str) -> str:
    return username.strip().lower()


# -- audit ---------------------------------------------------------------------------------------
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


# -- users ---------------------------------------------------------------------------------------
async def roles_of(uow: UnitOfWork, user_id: uuid.UUID) -> list[str]:
    rows = await uow.scalars(select(Role.name).join(UserRole, UserRole.role_id == Role.id)
                             .where(UserRole.user_id == user_id).order_by(Role.name))
    return list(rows)


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
                       expires_at=_password_expiry()))
    for role_id in role_ids.values():
        uow.add(UserRole(user_id=user.id, role_id=role_id))
    for name in ("username", "first_name", "last_name", "email"):
        audit(uow, "user.created", "user", user.id, actor=actor, field=name, new=getattr(user, name))
    audit(uow, "user.created", "user", user.id, actor=actor, field="roles", new=sorted(role_ids))
    audit(uow, "user.created", "user", user.id, actor=actor, field="password", new="[set]")
    uow.publish(UserCreated(**_user_fields(user, role_ids)), entity=user)
    return user


def _password_expiry() -> datetime | None:
    days = credentials.settings().password_max_age_days
    return now() + timedelta(days=days) if days else None


async def get_user(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    user = await uow.get(User, user_id)
    if user is None:
        raise AuthError(f"user {user_id} not found", 404)
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
    for token in await _active_tokens(uow, user.id):
        _publish_token(uow, ApiTokenUpdated, token, user, sorted(wanted))
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
    for token in await _active_tokens(uow, user.id):
        token.revoked_at = now()
        audit(uow, "api_token.revoked", "api_token", token.id, actor=actor, field="revoked_at", new=token.revoked_at,
              reason="user deactivated")
        await uow.flush()
        _publish_token(uow, ApiTokenRevoked, token, user, roles)
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
        uow.add(Credential(user_id=user.id, password_hash=new_hash, changed_at=now(), expires_at=_password_expiry()))
    else:
        credential.password_hash, credential.changed_at = new_hash, now()
        credential.expires_at = _password_expiry()
    user.must_change_password = must_change
    audit(uow, "user.password_changed" if not must_change else "user.password_reset", "user", user.id, actor=actor,
          field="password", old="[redacted]", new="[redacted]", reason=reason)


# -- sessions, login, refresh, logout ------------------------------------------------------------
@dataclass
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID
    user: User
    roles: list[str]
    password_expires_at: datetime | None


async def _issue(uow: UnitOfWork, user: User, session: Session, roles: list[str]) -> Tokens:
    refresh = new_opaque_token()
    expires = aware(session.expires_at)
    uow.add(RefreshToken(session_id=session.id, user_id=user.id, token_hash=hash_token(refresh), expires_at=expires))
    access, lifetime = issue_access_token(user_id=user.id, username=user.username, roles=roles, session_id=session.id)
    credential = await uow.scalar(select(Credential).where(Credential.user_id == user.id))
    return Tokens(access, lifetime, refresh, max(0, int((expires - now()).total_seconds())), session.id, user, roles,
                  aware(credential.expires_at) if credential else None)


def _locked(user: User) -> bool:
    until = aware(user.locked_until)
    return until is not None and until > now()


async def login(uow: UnitOfWork, *, username: str, password: str, totp_code: str | None = None,
                new_password: str | None = None, ip: str | None = None, user_agent: str | None = None) -> Tokens:
    """Check the credentials; on failure the caller must commit (the failure count and the audit
    entry are kept) and answer 401. The message never says which part was wrong."""
    refused = "invalid username or password, or the account is locked or deactivated"
    cfg = credentials.settings()
    name = normalize_username(username)
    user = await uow.scalar(select(User).where(User.username == name).with_for_update())
    credential = None if user is None else await uow.scalar(select(Credential).where(Credential.user_id == user.id))
    password_ok = credentials.verify_password(credential.password_hash if credential else None, password)
    if user is None:
        audit(uow, "login.failed", "user", None, actor=None, field="username", new=name[:150], reason="unknown user",
              ip=ip)
        raise LoginFailed(refused)
    if not user.is_active:
        audit(uow, "login.refused", "user", user.id, actor=user, reason="deactivated", ip=ip)
        raise LoginFailed(refused)
    if _locked(user):
        audit(uow, "login.refused", "user", user.id, actor=user, reason="locked", ip=ip)
        raise LoginFailed(refused)
    if not password_ok:
        await _failed(uow, user, cfg, "wrong password", ip)
        raise LoginFailed(refused)
    factor = await uow.scalar(select(MfaFactor).where(MfaFactor.user_id == user.id,
                                                      MfaFactor.confirmed_at.is_not(None)))
    if factor is not None:
        if not totp_code:
            raise LoginFailed("a TOTP code is required for this account (send totpCode)")
        if not _accept_totp(factor, totp_code):
            await _failed(uow, user, cfg, "wrong TOTP code", ip)
            raise LoginFailed(refused)
    expired = credential.expires_at is not None and aware(credential.expires_at) <= now()
    if user.must_change_password or expired:
        if not new_password:
            audit(uow, "login.password_change_required", "user", user.id, actor=user, ip=ip)
            user.failed_login_count = 0
            raise PasswordChangeRequired("the password must be changed: log in again with newPassword")
        await set_password(uow, user, new_password, actor=user, reason="changed at login")
    elif credentials.needs_rehash(credential.password_hash):
        credential.password_hash = credentials.hash_password(password)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now()
    session = Session(user_id=user.id, expires_at=now() + timedelta(hours=cfg.refresh_hours),
                      mfa_verified=factor is not None, ip_address=ip, user_agent=(user_agent or "")[:255] or None)
    uow.add(session)
    await uow.flush()
    audit(uow, "login.succeeded", "session", session.id, actor=user, ip=ip)
    return await _issue(uow, user, session, await roles_of(uow, user.id))


async def _failed(uow: UnitOfWork, user: User, cfg: credentials.AuthSettings, reason: str, ip: str | None) -> None:
    before = user.failed_login_count
    user.failed_login_count = before + 1
    audit(uow, "login.failed", "user", user.id, actor=user, field="failed_login_count", old=before,
          new=user.failed_login_count, reason=reason, ip=ip)
    if user.failed_login_count >= cfg.max_failed_logins:
        until = now() + timedelta(minutes=cfg.lockout_minutes) if cfg.lockout_minutes else FAR_FUTURE
        audit(uow, "user.locked", "user", user.id, actor=None, field="locked_until", old=user.locked_until, new=until,
              reason=f"{user.failed_login_count} failed login attempts", ip=ip)
        user.locked_until = until
        raise_alert(uow, "account_locked", user.id, user.username,
                    f"locked after {user.failed_login_count} failed login attempts", ip)


async def refresh(uow: UnitOfWork, token: str, *, ip: str | None = None) -> Tokens:
    """Rotate: spend the refresh token and issue a new one in the same family (session).

    Presenting a spent or revoked token means it was copied: the whole family is revoked, so
    whoever holds the newest token is logged out too (the caller commits, then answers 401).
    """
    token_hash = hash_token(token)
    row = await uow.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update())
    if row is None or not constant_time_equals(row.token_hash, token_hash):
        raise LoginFailed("the refresh token is not valid")
    session = await uow.get(Session, row.session_id, with_for_update=True)
    if row.used_at is not None or row.revoked_at is not None:
        await revoke_family(uow, session, reason="refresh_token_reuse", ip=ip)
        owner = await uow.get(User, row.user_id)
        raise_alert(uow, "refresh_token_reuse", row.user_id, owner.username if owner else "",
                    f"a spent refresh token of session {session.id} was presented again; the session is revoked", ip)
        raise LoginFailed("the refresh token was already used: the session has been revoked, log in again")
    if aware(row.expires_at) <= now() or session.revoked_at is not None or aware(session.expires_at) <= now():
        raise LoginFailed("the session has expired or was revoked, log in again")
    idle = timedelta(minutes=credentials.settings().session_idle_minutes)
    if aware(session.last_seen_at) + idle <= now():
        await revoke_family(uow, session, reason="idle_timeout", ip=ip)
        raise LoginFailed("the session timed out after inactivity, log in again")
    user = await uow.get(User, row.user_id)
    if user is None or not user.is_active or _locked(user):
        raise LoginFailed("the account is locked or deactivated")
    row.used_at = now()
    session.last_seen_at = now()
    return await _issue(uow, user, session, await roles_of(uow, user.id))


async def revoke_family(uow: UnitOfWork, session: Session, *, reason: str, actor: Principal | None = None,
                        ip: str | None = None) -> None:
    if session.revoked_at is None:
        session.revoked_at = now()
        session.revoked_reason = reason
    await uow.execute(update(RefreshToken).where(RefreshToken.session_id == session.id,
                                                 RefreshToken.revoked_at.is_(None)).values(revoked_at=now()))
    audit(uow, "session.revoked", "session", session.id, actor=actor, field="revoked_at", new=session.revoked_at,
          reason=reason, ip=ip)


async def revoke_sessions(uow: UnitOfWork, user_id: uuid.UUID, *, reason: str, actor: Principal | None) -> int:
    sessions = list(await uow.scalars(select(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))))
    for session in sessions:
        await revoke_family(uow, session, reason=reason, actor=actor)
    return len(sessions)


async def logout(uow: UnitOfWork, principal: Principal, *, refresh_token: str | None = None) -> None:
    sessions = []
    if principal.session_id:
        session = await uow.get(Session, uuid.UUID(principal.session_id))
        if session is not None and str(session.user_id) == principal.user_id:
            sessions.append(session)
    if refresh_token:
        row = await uow.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token)))
        if row is not None and str(row.user_id) == principal.user_id:
            session = await uow.get(Session, row.session_id)
            if session is not None and session not in sessions:
                sessions.append(session)
    for session in sessions:
        await revoke_family(uow, session, reason="logout", actor=principal)


# -- API tokens ----------------------------------------------------------------------------------
async def _active_tokens(uow: UnitOfWork, user_id: uuid.UUID) -> list[ApiToken]:
    return list(await uow.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))))


def _publish_token(uow: UnitOfWork, event_type: type, token: ApiToken, user: User, roles: list[str]) -> None:
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
    _publish_token(uow, ApiTokenCreated, token, user, await roles_of(uow, user.id))
    return token, plain


async def revoke_api_token(uow: UnitOfWork, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    token = await uow.get(ApiToken, token_id)
    if token is None or (str(token.user_id) != principal.user_id and not principal.has_role("admin")):
        raise AuthError(f"API token {token_id} not found", 404)
    if token.revoked_at is None:
        token.revoked_at = now()
        audit(uow, "api_token.revoked", "api_token", token.id, actor=principal, field="revoked_at",
              new=token.revoked_at)
        await uow.flush()
        user = await get_user(uow, token.user_id)
        _publish_token(uow, ApiTokenRevoked, token, user, await roles_of(uow, user.id))
    return token


async def api_token_principal(uow: UnitOfWork, token_hash: str) -> Principal | None:
    """auth's own verifier: its table is the source of truth (others keep a replica)."""
    token = await uow.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if token is None or not constant_time_equals(token.token_hash, token_hash):
        return None
    user = await uow.get(User, token.user_id)
    if user is None or not user.is_active:
        return None
    row = SimpleNamespace(id=token.id, user_id=token.user_id, username=user.username,
                          roles=await roles_of(uow, user.id), scopes=token.scopes,
                          expires_at=int(aware(token.expires_at).timestamp()) if token.expires_at else None,
                          revoked=token.revoked_at is not None)
    return principal_from_token_row(row, now=time.time())


# -- TOTP MFA ------------------------------------------------------------------------------------
def _accept_totp(factor: MfaFactor, code: str, *, at: float | None = None) -> bool:
    """A code of the current 30 s step (one step of drift each way), never one already used."""
    totp = pyotp.TOTP(credentials.unseal(factor.secret_sealed))
    code = (code or "").strip()
    step = totp.timecode(datetime.fromtimestamp(at or time.time(), timezone.utc))
    for candidate in (step - 1, step, step + 1):
        if constant_time_equals(totp.generate_otp(candidate), code):
            if factor.last_used_step is not None and candidate <= factor.last_used_step:
                return False
            factor.last_used_step = candidate
            return True
    return False


async def enrol_totp(uow: UnitOfWork, principal: Principal) -> tuple[MfaFactor, str, str]:
    if principal.kind != "user":
        raise AuthError("MFA is enrolled by a logged-in user", 403)
    user = await get_user(uow, principal.user_uuid)
    factors = list(await uow.scalars(select(MfaFactor).where(MfaFactor.user_id == user.id)))
    if any(f.confirmed_at is not None for f in factors):
        raise AuthError("a TOTP authenticator is already enrolled; an admin can reset it", 409)
    for pending in factors:
        await uow.session.delete(pending)
    secret = pyotp.random_base32()
    factor = MfaFactor(user_id=user.id, kind="totp", secret_sealed=credentials.seal(secret))
    uow.add(factor)
    await uow.flush()
    audit(uow, "mfa.enrolment_started", "mfa_factor", factor.id, actor=principal)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
    return factor, secret, uri


async def confirm_totp(uow: UnitOfWork, principal: Principal, code: str) -> MfaFactor:
    factor = await uow.scalar(select(MfaFactor).where(MfaFactor.user_id == principal.user_uuid)
                              .order_by(MfaFactor.created_at.desc()).limit(1))
    if factor is None:
        raise AuthError("no TOTP enrolment to verify: POST /mfa/totp first", 404)
    if not _accept_totp(factor, code):
        audit(uow, "mfa.verification_failed", "mfa_factor", factor.id, actor=principal)
        raise AuthError("the TOTP code is not valid", 422)
    if factor.confirmed_at is None:
        factor.confirmed_at = now()
        audit(uow, "mfa.enrolled", "mfa_factor", factor.id, actor=principal, field="confirmed_at",
              new=factor.confirmed_at)
    return factor


async def reset_mfa(uow: UnitOfWork, user_id: uuid.UUID, *, actor: Principal) -> int:
    factors = list(await uow.scalars(select(MfaFactor).where(MfaFactor.user_id == user_id)))
    for factor in factors:
        await uow.session.delete(factor)
        audit(uow, "mfa.reset", "mfa_factor", factor.id, actor=actor)
    return len(factors)


# -- electronic signatures: identity check -------------------------------------------------------
DEFAULT_MEANINGS = {
    "review": ("Review", "I have reviewed this record"),
    "approval": ("Approval", "I approve this record"),
    "responsibility": ("Responsibility", "I am responsible for this record"),
    "authorship": ("Authorship", "I am the author of this record"),
}
SIGNATURE_ASSERTION = "signature"


async def ensure_meanings(uow: UnitOfWork) -> None:
    existing = set(await uow.scalars(select(SignatureMeaning.code)))
    for code, (name, description) in DEFAULT_MEANINGS.items():
        if code not in existing:
            uow.add(SignatureMeaning(code=code, name=name, description=description))
    await uow.flush()


@dataclass
class SigningResult:
    assertion: str
    expires_in: int
    signed_at: datetime
    meaning: SignatureMeaning
    user: User
    session_id: uuid.UUID


async def verify_signer(uow: UnitOfWork, principal: Principal, *, password: str, meaning: str,
                        username: str | None = None, record_type: str | None = None, record_id: str | None = None,
                        record_hash: str | None = None, ip: str | None = None) -> SigningResult:
    """Re-check the signer's identity for an electronic signature (21 CFR Part 11 11.200).

    The first signing in a session needs both components (username and password), later ones in
    the same session at least the password; a new session (after timeout or logout) needs both
    again. A failure counts towards lockout and raises an immediate security alert (11.300). On
    success the answer is a 2-minute signed assertion naming the signer, the meaning, the record
    and the time, which the service holding the record verifies (isles.security.decode_assertion)
    and stores with the signature; ``verifiedBy`` records who checked the identity (11.100).
    """
    if principal.kind != "user" or not principal.session_id:
        raise AuthError("signatures are made by a logged-in user, not an API token", 403)
    await ensure_meanings(uow)
    chosen = await uow.scalar(select(SignatureMeaning).where(SignatureMeaning.code == meaning,
                                                             SignatureMeaning.is_active.is_(True)))
    if chosen is None:
        raise AuthError(f"unknown signature meaning {meaning!r}; use one of {', '.join(DEFAULT_MEANINGS)}", 422)
    user = await uow.scalar(select(User).where(User.id == principal.user_uuid).with_for_update())
    session = await uow.get(Session, uuid.UUID(principal.session_id))
    if user is None or not user.is_active or session is None or session.revoked_at is not None:
        raise AuthError("the session has ended; log in again", 401)
    if _locked(user):
        raise AuthError("the account is locked", 401)
    first_in_session = session.last_signed_at is None
    credential = await uow.scalar(select(Credential).where(Credential.user_id == user.id))
    password_ok = credentials.verify_password(credential.password_hash if credential else None, password)
    if first_in_session and not username:
        raise AuthError("the first signature of a session needs both username and password", 422)
    name_ok = username is None or constant_time_equals(normalize_username(username), user.username)
    if not (password_ok and name_ok):
        cfg = credentials.settings()
        audit(uow, "signature.failed", "user", user.id, actor=user, field="meaning", new=meaning,
              reason=f"wrong {'username or ' if username else ''}password for {record_type or 'record'} "
                     f"{record_id or ''}".strip(), ip=ip)
        target = f"{record_type or 'a record'} {record_id or ''}".strip()
        raise_alert(uow, "failed_signing", user.id, user.username, f"failed signature attempt ({meaning}) on {target}",
                    ip)
        await _failed(uow, user, cfg, "failed signature", ip)
        raise AuthError("the signature was refused: username or password is not correct", 401)
    signed_at = now()
    user.failed_login_count = 0
    session.last_signed_at = signed_at
    audit(uow, "signature.verified", record_type or "record", record_id, actor=user, field="meaning", new=meaning,
          reason=f"record hash {record_hash}" if record_hash else None, ip=ip)
    assertion = issue_assertion(SIGNATURE_ASSERTION, {
        "sub": str(user.id), "name": user.username, "printedName": user.display_name, "meaning": chosen.code,
        "meaningText": chosen.description, "signedAt": signed_at.isoformat(), "recordType": record_type,
        "recordId": record_id, "recordHash": record_hash, "sid": str(session.id),
        "components": "username+password" if username else "password", "verifiedBy": "mes.auth"}, seconds=120)
    return SigningResult(assertion, 120, signed_at, chosen, user, session.id)


# -- bootstrap -----------------------------------------------------------------------------------
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
