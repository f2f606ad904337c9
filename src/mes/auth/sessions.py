"""Logging in and out: sessions with rotating refresh tokens (reuse revokes the whole family),
lockout after failed attempts, the caller's own account and password."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response, status
from pydantic import Field
from sqlalchemy import select, update

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.security import PUBLIC, Principal, constant_time_equals, hash_token, issue_access_token, new_opaque_token
from mes.auth import credentials
from mes.auth.access import LoggedIn, Reader, Writer, may_manage_others
from mes.auth.accounts import (
    FAR_FUTURE,
    AuthError,
    LoginFailed,
    PasswordChangeRequired,
    UserOut,
    audit,
    aware,
    client_ip,
    fail,
    get_user,
    normalize_username,
    now,
    raise_alert,
    roles_of,
    run,
    set_password,
    user_out,
)
from mes.auth.mfa import accept_totp
from mes.auth.models import Credential, MfaFactor, RefreshToken, Session, User

router = APIRouter()
Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


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


def is_locked(user: User) -> bool:
    until = aware(user.locked_until)
    return until is not None and until > now()


async def login(uow: UnitOfWork, *, username: str, password: str, totp_code: str | None = None,
                new_password: str | None = None, ip: str | None = None, user_agent: str | None = None) -> Tokens:
    """Check the credentials; on failure the caller must commit (the failure count and the audit
    entry are kept) and answer 401. The message never says which part was wrong."""
    refused = "invalid username or password, or the account is locked or deactivated"
    cfg = credentials.settings()
    name = normalize_username(username)
    user: User | None = await uow.scalar(select(User).where(User.username == name).with_for_update())
    credential: Credential | None = (
        None if user is None else await uow.scalar(select(Credential).where(Credential.user_id == user.id)))
    password_ok = credentials.verify_password(credential.password_hash if credential else None, password)
    if user is None:
        audit(uow, "login.failed", "user", None, actor=None, field="username", new=name[:150], reason="unknown user",
              ip=ip)
        raise LoginFailed(refused)
    if not user.is_active:
        audit(uow, "login.refused", "user", user.id, actor=user, reason="deactivated", ip=ip)
        raise LoginFailed(refused)
    if is_locked(user):
        audit(uow, "login.refused", "user", user.id, actor=user, reason="locked", ip=ip)
        raise LoginFailed(refused)
    if not password_ok or credential is None:  # (no credential: never password_ok)
        await failed_attempt(uow, user, cfg, "wrong password", ip)
        raise LoginFailed(refused)
    factor = await uow.scalar(select(MfaFactor).where(MfaFactor.user_id == user.id,
                                                      MfaFactor.confirmed_at.is_not(None)))
    if factor is not None:
        if not totp_code:
            raise LoginFailed("a TOTP code is required for this account (send totpCode)")
        if not accept_totp(factor, totp_code):
            await failed_attempt(uow, user, cfg, "wrong TOTP code", ip)
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


async def failed_attempt(uow: UnitOfWork, user: User, cfg: credentials.AuthSettings, reason: str,
                         ip: str | None) -> None:
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
    if user is None or not user.is_active or is_locked(user):
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


class LoginIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=10)
    new_password: str | None = Field(default=None, max_length=1024, description="required when the password "
                                     "must be changed (after an admin reset, or when it has expired)")


class RefreshIn(Schema):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutIn(Schema):
    refresh_token: str | None = Field(default=None, max_length=512)


class TokensOut(ApiOut):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID
    password_expires_at: datetime | None
    user: UserOut


class PasswordChangeIn(Schema):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class SessionOut(ApiOut):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    mfa_verified: bool
    ip_address: str | None


async def _tokens_out(uow: UnitOfWork, tokens: Tokens) -> TokensOut:
    user = UserOut.model_validate(tokens.user)
    user.roles = tokens.roles
    return TokensOut(access_token=tokens.access_token, expires_in=tokens.expires_in, refresh_token=tokens.refresh_token,
                     refresh_expires_in=tokens.refresh_expires_in, session_id=tokens.session_id,
                     password_expires_at=tokens.password_expires_at, user=user)


@router.post("/login", response_model=TokensOut, responses={401: {}, 403: {}}, dependencies=[PUBLIC])
async def post_login(data: LoginIn, request: Request, uow: Uow, response: Response) -> TokensOut:
    """Exchange username + password (+ TOTP code when enrolled) for an access and a refresh token."""
    response.headers["Cache-Control"] = "no-store"
    tokens = await run(uow, lambda: login(
        uow, username=data.username, password=data.password, totp_code=data.totp_code,
        new_password=data.new_password, ip=client_ip(request), user_agent=request.headers.get("user-agent")),
        commit_on_error=True)
    return await _tokens_out(uow, tokens)


@router.post("/refresh", response_model=TokensOut, responses={401: {}}, dependencies=[PUBLIC])
async def post_refresh(data: RefreshIn, request: Request, uow: Uow, response: Response) -> TokensOut:
    """Rotate the refresh token. Reusing a spent one revokes its whole session (token family)."""
    response.headers["Cache-Control"] = "no-store"
    tokens = await run(uow, lambda: refresh(uow, data.refresh_token, ip=client_ip(request)), commit_on_error=True)
    return await _tokens_out(uow, tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def post_logout(principal: Writer, uow: Uow, data: LogoutIn | None = None) -> None:
    await run(uow, lambda: logout(uow, principal, refresh_token=data.refresh_token if data else None))


@router.get("/me", response_model=UserOut)
async def get_me(principal: Reader, uow: Uow) -> UserOut:
    try:
        user = await get_user(uow, principal.user_uuid)
    except AuthError as exc:
        raise fail(exc) from None
    return await user_out(uow, user)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}, 422: {}})
async def change_password(data: PasswordChangeIn, principal: LoggedIn, uow: Uow) -> None:
    async def action() -> None:
        if principal.kind != "user":
            raise AuthError("passwords are changed by a logged-in user", 403)
        user = await get_user(uow, principal.user_uuid)
        from mes.auth.credentials import verify_password
        from mes.auth.models import Credential
        credential = await uow.scalar(select(Credential).where(Credential.user_id == user.id))
        if not verify_password(credential.password_hash if credential else None, data.current_password):
            raise AuthError("the current password is not correct", 422)
        await set_password(uow, user, data.new_password, actor=principal)
    await run(uow, action)


@router.get("/sessions", response_model=PageOut[SessionOut])
async def list_sessions(principal: Reader, uow: Uow, page: Page, active: bool = True) -> Paged[Session]:
    query = select(Session).where(Session.user_id == principal.user_uuid).order_by(Session.created_at.desc())
    if active:
        query = query.where(Session.revoked_at.is_(None))
    return await paged(uow, query, page)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(session_id: uuid.UUID, principal: Writer, uow: Uow) -> None:
    async def action() -> None:
        session = await uow.get(Session, session_id)
        if session is None or (str(session.user_id) != principal.user_id
                               and not may_manage_others(principal, "session")):
            raise AuthError(f"session {session_id} not found", 404)
        await revoke_family(uow, session, reason="revoked", actor=principal)
    await run(uow, action)
