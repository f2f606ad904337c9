"""HTTP API of the auth service: login/refresh/logout, users and roles, API tokens, MFA, audit trail."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Awaitable, Callable

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiModel
from isles.security import Guard, Principal
from mes.auth import accounts
from mes.auth.accounts import AuthError
from mes.auth.models import ApiToken, AuditLog, Role, Session, SignatureMeaning, User
from mes.auth.service_def import service

router = APIRouter()
Uow = Annotated[UnitOfWork, Depends(service.uow)]
guard = Guard(service)
OFFSET = Query(0, ge=0, le=1_000_000_000)
TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


def live(check: Callable[..., Awaitable[Principal]]) -> Callable[..., Awaitable[Principal]]:
    """auth owns sessions, so unlike other services it also refuses an unexpired access token
    whose session was revoked (logout, reuse detection, password reset) or whose user is gone."""

    async def dependency(uow: Uow, principal: Principal = Depends(check)) -> Principal:
        if principal.kind == "user":
            try:
                user = await uow.get(User, principal.user_uuid)
                session = await uow.get(Session, uuid.UUID(principal.session_id)) if principal.session_id else None
            except ValueError:
                user = session = None
            if user is None or not user.is_active or (principal.session_id and
                                                       (session is None or session.revoked_at is not None)):
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the session has ended; log in again",
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return principal

    return dependency


Caller = Annotated[Principal, Depends(live(guard.authenticated()))]
Admin = Annotated[Principal, Depends(live(guard.require(roles=("admin",), scopes=("auth:admin",))))]
Auditor = Annotated[Principal, Depends(live(guard.require(roles=("admin", "auditor"), scopes=("auth:read",))))]


Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


def _fail(exc: AuthError) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return HTTPException(exc.status, str(exc), headers=headers)


async def run(uow: UnitOfWork, action: Callable[[], Awaitable[Any]], *, commit_on_error: bool = False) -> Any:
    """Run a domain action and commit; an AuthError becomes its HTTP status. With
    ``commit_on_error`` a refusal still commits what it recorded (failed-login counts, audit)."""
    try:
        result = await action()
    except AuthError as exc:
        if commit_on_error:
            await uow.commit()
        raise _fail(exc) from None
    await uow.commit()
    return result


def _reason(reason: str | None) -> str | None:
    """With MES_AUTH_REQUIRE_REASON=1 every administrative change must say why (audit trail)."""
    from mes.auth.credentials import settings
    if settings().require_reason and not (reason or "").strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a reason for the change is required "
                            "(MES_AUTH_REQUIRE_REASON=1): send 'reason'")
    return reason


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# -- schemas -------------------------------------------------------------------------------------
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


class UserOut(Schema):
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


class TokensOut(Schema):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID
    password_expires_at: datetime | None
    user: UserOut


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


class PasswordChangeIn(Schema):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class RoleIn(Schema):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    description: str = Field(default="", max_length=255)


class RoleOut(Schema):
    id: uuid.UUID
    name: str
    description: str


class SessionOut(Schema):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    mfa_verified: bool
    ip_address: str | None


class ApiTokenIn(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["line 3 scanner"])
    scopes: list[str] = Field(min_length=1, max_length=20, examples=[["resource:read"]])
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiTokenOut(Schema):
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


class TotpEnrolOut(Schema):
    factor_id: uuid.UUID
    secret: str = Field(description="base32 secret; shown only in this response")
    otpauth_uri: str


class CodeIn(Schema):
    code: str = Field(min_length=6, max_length=10)


class AuditLogOut(Schema):
    id: uuid.UUID
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_username: str | None
    action: str
    entity_type: str
    entity_id: str | None
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str | None
    ip_address: str | None


async def _user_out(uow: UnitOfWork, user: User) -> UserOut:
    out = UserOut.model_validate(user)
    out.roles = await accounts.roles_of(uow, user.id)
    return out


async def _tokens_out(uow: UnitOfWork, tokens: accounts.Tokens) -> TokensOut:
    user = UserOut.model_validate(tokens.user)
    user.roles = tokens.roles
    return TokensOut(access_token=tokens.access_token, expires_in=tokens.expires_in, refresh_token=tokens.refresh_token,
                     refresh_expires_in=tokens.refresh_expires_in, session_id=tokens.session_id,
                     password_expires_at=tokens.password_expires_at, user=user)


# -- login, refresh, logout ----------------------------------------------------------------------
@router.post("/login", response_model=TokensOut, responses={401: {}, 403: {}})
async def post_login(data: LoginIn, request: Request, uow: Uow, response: Response) -> TokensOut:
    """Exchange username + password (+ TOTP code when enrolled) for an access and a refresh token."""
    response.headers["Cache-Control"] = "no-store"
    tokens = await run(uow, lambda: accounts.login(
        uow, username=data.username, password=data.password, totp_code=data.totp_code,
        new_password=data.new_password, ip=_ip(request), user_agent=request.headers.get("user-agent")),
        commit_on_error=True)
    return await _tokens_out(uow, tokens)


@router.post("/refresh", response_model=TokensOut, responses={401: {}})
async def post_refresh(data: RefreshIn, request: Request, uow: Uow, response: Response) -> TokensOut:
    """Rotate the refresh token. Reusing a spent one revokes its whole session (token family)."""
    response.headers["Cache-Control"] = "no-store"
    tokens = await run(uow, lambda: accounts.refresh(uow, data.refresh_token, ip=_ip(request)), commit_on_error=True)
    return await _tokens_out(uow, tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def post_logout(principal: Caller, uow: Uow, data: LogoutIn | None = None) -> None:
    await run(uow, lambda: accounts.logout(uow, principal, refresh_token=data.refresh_token if data else None))


@router.get("/me", response_model=UserOut)
async def get_me(principal: Caller, uow: Uow) -> UserOut:
    try:
        user = await accounts.get_user(uow, principal.user_uuid)
    except AuthError as exc:
        raise _fail(exc) from None
    return await _user_out(uow, user)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}, 422: {}})
async def change_password(data: PasswordChangeIn, principal: Caller, uow: Uow) -> None:
    async def action() -> None:
        if principal.kind != "user":
            raise AuthError("passwords are changed by a logged-in user", 403)
        user = await accounts.get_user(uow, principal.user_uuid)
        from mes.auth.credentials import verify_password
        from mes.auth.models import Credential
        credential = await uow.scalar(select(Credential).where(Credential.user_id == user.id))
        if not verify_password(credential.password_hash if credential else None, data.current_password):
            raise AuthError("the current password is not correct", 422)
        await accounts.set_password(uow, user, data.new_password, actor=principal)
    await run(uow, action)


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(principal: Caller, uow: Uow, active: bool = True) -> list[Session]:
    query = select(Session).where(Session.user_id == principal.user_uuid).order_by(Session.created_at.desc())
    if active:
        query = query.where(Session.revoked_at.is_(None))
    return list(await uow.scalars(query.limit(200)))


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(session_id: uuid.UUID, principal: Caller, uow: Uow) -> None:
    async def action() -> None:
        session = await uow.get(Session, session_id)
        if session is None or (str(session.user_id) != principal.user_id and not principal.has_role("admin")):
            raise AuthError(f"session {session_id} not found", 404)
        await accounts.revoke_family(uow, session, reason="revoked", actor=principal)
    await run(uow, action)


# -- users and roles (admins only) ---------------------------------------------------------------
@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def post_user(data: UserIn, principal: Admin, uow: Uow) -> UserOut:
    user = await run(uow, lambda: accounts.create_user(
        uow, username=data.username, password=data.password, first_name=data.first_name, last_name=data.last_name,
        email=data.email, roles=data.roles, actor=principal, must_change_password=data.must_change_password))
    return await _user_out(uow, user)


@router.get("/users", response_model=list[UserOut])
async def list_users(principal: Admin, uow: Uow, include_inactive: bool = Query(False, alias="includeInactive"),
                     limit: int = Query(100, ge=1, le=1000), offset: int = OFFSET) -> list[UserOut]:
    query = select(User).order_by(User.username)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    return [await _user_out(uow, u) for u in await uow.scalars(query.limit(limit).offset(offset))]


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user_id: uuid.UUID, principal: Admin, uow: Uow) -> UserOut:
    try:
        return await _user_out(uow, await accounts.get_user(uow, user_id))
    except AuthError as exc:
        raise _fail(exc) from None


@router.patch("/users/{user_id}", response_model=UserOut)
async def patch_user(user_id: uuid.UUID, patch: UserPatch, principal: Admin, uow: Uow) -> UserOut:
    changes = patch.model_dump(exclude_unset=True, exclude={"reason"})
    for key in ("first_name", "last_name"):
        if key in changes and changes[key] is None:
            changes.pop(key)
    reason = _reason(patch.reason)
    user = await run(uow, lambda: accounts.update_user(uow, user_id, changes, actor=principal, reason=reason))
    return await _user_out(uow, user)


@router.put("/users/{user_id}/roles", response_model=UserOut)
async def put_roles(user_id: uuid.UUID, data: RolesIn, principal: Admin, uow: Uow) -> UserOut:
    reason = _reason(data.reason)
    await run(uow, lambda: accounts.set_roles(uow, user_id, data.roles, actor=principal, reason=reason))
    return await _user_out(uow, await accounts.get_user(uow, user_id))


@router.post("/users/{user_id}/deactivate", response_model=UserOut)
async def deactivate(user_id: uuid.UUID, principal: Admin, uow: Uow, data: ReasonIn | None = None) -> UserOut:
    """Deactivate (the only 'delete'): the row and its username are kept forever."""
    reason = _reason(data.reason if data else None)
    user = await run(uow, lambda: accounts.deactivate_user(uow, user_id, actor=principal, reason=reason))
    return await _user_out(uow, user)


@router.delete("/users/{user_id}", response_model=UserOut)
async def delete_user(user_id: uuid.UUID, principal: Admin, uow: Uow) -> UserOut:
    """Same as deactivate: users are never erased (21 CFR Part 11 11.100)."""
    user = await run(uow, lambda: accounts.deactivate_user(uow, user_id, actor=principal, reason="DELETE /users"))
    return await _user_out(uow, user)


@router.post("/users/{user_id}/unlock", response_model=UserOut)
async def unlock(user_id: uuid.UUID, principal: Admin, uow: Uow) -> UserOut:
    user = await run(uow, lambda: accounts.unlock_user(uow, user_id, actor=principal))
    return await _user_out(uow, user)


@router.post("/users/{user_id}/password-reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(user_id: uuid.UUID, data: PasswordResetIn, principal: Admin, uow: Uow) -> None:
    """Set a temporary password the user must change at the next login; their sessions end."""
    reason = _reason(data.reason)

    async def action() -> None:
        user = await accounts.get_user(uow, user_id)
        await accounts.set_password(uow, user, data.temporary_password, actor=principal, must_change=True,
                                    reason=reason)
        await accounts.revoke_sessions(uow, user.id, reason="password_reset", actor=principal)
    await run(uow, action)


@router.post("/users/{user_id}/mfa-reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_user_mfa(user_id: uuid.UUID, principal: Admin, uow: Uow) -> None:
    await run(uow, lambda: accounts.reset_mfa(uow, user_id, actor=principal))


@router.get("/roles", response_model=list[RoleOut])
async def list_roles(principal: Caller, uow: Uow) -> list[Role]:
    return list(await uow.scalars(select(Role).order_by(Role.name)))


@router.post("/roles", status_code=status.HTTP_201_CREATED, response_model=RoleOut)
async def post_role(data: RoleIn, principal: Admin, uow: Uow) -> Role:
    async def action() -> Role:
        if await uow.scalar(select(Role.id).where(Role.name == data.name)):
            raise AuthError(f"role {data.name} exists", 409)
        role = Role(name=data.name, description=data.description)
        uow.add(role)
        await uow.flush()
        accounts.audit(uow, "role.created", "role", role.id, actor=principal, field="name", new=role.name)
        return role
    return await run(uow, action)


# -- API tokens ----------------------------------------------------------------------------------
@router.post("/api-tokens", status_code=status.HTTP_201_CREATED, response_model=ApiTokenCreatedOut)
async def post_api_token(data: ApiTokenIn, principal: Caller, uow: Uow, response: Response) -> ApiTokenCreatedOut:
    """A scoped API token acting for the caller (with at most the caller's roles). Shown once."""
    response.headers["Cache-Control"] = "no-store"
    token, plain = await run(uow, lambda: accounts.create_api_token(
        uow, principal, name=data.name, scopes=data.scopes, expires_in_days=data.expires_in_days))
    return ApiTokenCreatedOut.model_validate({**ApiTokenOut.model_validate(token).model_dump(), "token": plain})


@router.get("/api-tokens", response_model=list[ApiTokenOut])
async def list_api_tokens(principal: Caller, uow: Uow) -> list[ApiToken]:
    return list(await uow.scalars(select(ApiToken).where(ApiToken.user_id == principal.user_uuid)
                                  .order_by(ApiToken.created_at.desc())))


@router.delete("/api-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_api_token(token_id: uuid.UUID, principal: Caller, uow: Uow) -> None:
    await run(uow, lambda: accounts.revoke_api_token(uow, principal, token_id))


# -- MFA -----------------------------------------------------------------------------------------
@router.post("/mfa/totp", status_code=status.HTTP_201_CREATED, response_model=TotpEnrolOut)
async def enrol_totp(principal: Caller, uow: Uow, response: Response) -> TotpEnrolOut:
    """Start TOTP enrolment; confirm with a code from the authenticator (POST /mfa/totp/verify)."""
    response.headers["Cache-Control"] = "no-store"
    factor, secret, uri = await run(uow, lambda: accounts.enrol_totp(uow, principal))
    return TotpEnrolOut(factor_id=factor.id, secret=secret, otpauth_uri=uri)


@router.post("/mfa/totp/verify", status_code=status.HTTP_204_NO_CONTENT)
async def verify_totp(data: CodeIn, principal: Caller, uow: Uow) -> None:
    await run(uow, lambda: accounts.confirm_totp(uow, principal, data.code), commit_on_error=True)


# -- electronic signatures -----------------------------------------------------------------------
class SignIn(Schema):
    username: str | None = Field(default=None, max_length=150, description="required for the first signature "
                                 "of a session (21 CFR Part 11 11.200)")
    password: str = Field(min_length=1, max_length=1024)
    meaning: str = Field(min_length=1, max_length=32, examples=["approval"])
    record_type: str | None = Field(default=None, max_length=64, examples=["fai_report"])
    record_id: str | None = Field(default=None, max_length=64)
    record_hash: str | None = Field(default=None, max_length=128, description="hash of the exact record version")


class SignOut(Schema):
    assertion: str = Field(description="signed statement for the service that stores the signature (2 minutes)")
    expires_in: int
    signed_at: datetime
    user_id: uuid.UUID
    printed_name: str
    meaning: str
    meaning_text: str
    session_id: uuid.UUID


class MeaningOut(Schema):
    code: str
    name: str
    description: str


@router.get("/signature-meanings", response_model=list[MeaningOut])
async def list_meanings(principal: Caller, uow: Uow) -> list[SignatureMeaning]:
    await accounts.ensure_meanings(uow)
    rows = list(await uow.scalars(select(SignatureMeaning).where(SignatureMeaning.is_active.is_(True))
                                  .order_by(SignatureMeaning.code)))
    await uow.commit()
    return rows


@router.post("/signatures/verify", response_model=SignOut, responses={401: {}, 403: {}})
async def verify_signature(data: SignIn, principal: Caller, uow: Uow, request: Request, response: Response) -> SignOut:
    """Re-authenticate the signer of an electronic signature; failures lock out and raise an alert."""
    response.headers["Cache-Control"] = "no-store"
    result = await run(uow, lambda: accounts.verify_signer(
        uow, principal, password=data.password, meaning=data.meaning, username=data.username,
        record_type=data.record_type, record_id=data.record_id, record_hash=data.record_hash, ip=_ip(request)),
        commit_on_error=True)
    return SignOut(assertion=result.assertion, expires_in=result.expires_in, signed_at=result.signed_at,
                   user_id=result.user.id, printed_name=result.user.display_name, meaning=result.meaning.code,
                   meaning_text=result.meaning.description, session_id=result.session_id)


# -- audit trail ---------------------------------------------------------------------------------
class AuditFilter(Schema):
    entity_type: str | None = None
    entity_id: str | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = None


def audit_filter(entity_type: str | None = Query(None, alias="entityType", max_length=64, pattern=TEXT),
                 entity_id: str | None = Query(None, alias="entityId", max_length=64, pattern=TEXT),
                 actor_id: uuid.UUID | None = Query(None, alias="actorId"),
                 action: str | None = Query(None, max_length=64, pattern=TEXT)) -> AuditFilter:
    return AuditFilter(entity_type=entity_type, entity_id=entity_id, actor_id=actor_id, action=action)


def _audit_query(f: AuditFilter) -> Any:
    query = select(AuditLog).order_by(AuditLog.occurred_at.desc(), AuditLog.id)
    for name in ("entity_type", "entity_id", "actor_id", "action"):
        if getattr(f, name) is not None:
            query = query.where(getattr(AuditLog, name) == getattr(f, name))
    return query


@router.get("/audit-logs", response_model=list[AuditLogOut])
async def list_audit_logs(principal: Auditor, uow: Uow, f: Annotated[AuditFilter, Depends(audit_filter)],
                          limit: int = Query(100, ge=1, le=1000), offset: int = OFFSET) -> list[AuditLog]:
    """The audit trail, newest first (read-only: the database refuses changes)."""
    return list(await uow.scalars(_audit_query(f).limit(limit).offset(offset)))


@router.get("/audit-logs/export.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def export_audit_logs(principal: Auditor, uow: Uow, f: Annotated[AuditFilter, Depends(audit_filter)],
                            limit: int = Query(10000, ge=1, le=100000)) -> Response:
    """The audit trail as CSV for inspectors (21 CFR Part 11 11.10(b)); times are UTC."""
    import csv
    import io
    columns = list(AuditLogOut.model_fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([to_camel(c) for c in columns])
    for row in await uow.scalars(_audit_query(f).limit(limit)):
        out = AuditLogOut.model_validate(row)
        writer.writerow([_csv_cell(getattr(out, c)) for c in columns])
    accounts.audit(uow, "audit_log.exported", "audit_log", None, actor=principal, reason=f.model_dump_json())
    await uow.commit()
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formula injection in spreadsheets
