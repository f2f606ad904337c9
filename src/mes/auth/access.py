"""Who may do what in the auth service, as FastAPI dependencies.

auth verifies API tokens against its own table (every other service keeps a replica), and unlike
other services it also refuses an unexpired access token whose session has ended.

Every route requires a scope (an access token from /login has them all; an API token only those
it was issued with), so a token made for another service reads and changes nothing here:

* ``auth:read`` - read one's own account: /me, /sessions, /api-tokens, /roles,
  /signature-meanings; with the role auditor or admin also the audit trail (:data:`Auditor`);
* ``auth:write`` - change one's own account: logout, revoke one's own sessions and API tokens
  (:data:`Writer`); with a login's access token (never an API token) also the password, MFA,
  signatures and new API tokens (:data:`LoggedIn`);
* ``auth:admin`` with the role admin - manage users and roles, and revoke *another* user's session
  or API token (:data:`Admin`, :func:`may_manage_others`).
"""
from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Annotated, Any, Awaitable, Callable

from fastapi import Depends, HTTPException, status
from sqlalchemy import select

from isles import UnitOfWork
from isles.http import Uow
from isles.security import Guard, Principal, constant_time_equals, principal_from_token_row
from mes.auth.accounts import AuthError, aware, roles_of
from mes.auth.models import ApiToken, Session, User


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


async def _own_api_tokens(service: Any, token_hash: str) -> Principal | None:
    async with service.unit_of_work() as uow:
        return await api_token_principal(uow, token_hash)


guard = Guard(api_tokens=_own_api_tokens)


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


READ, WRITE, ADMIN = "auth:read", "auth:write", "auth:admin"

#: Reads the caller's own account (``auth:read``).
Reader = Annotated[Principal, Depends(live(guard.require(scopes=(READ,))))]

#: Changes the caller's own account (``auth:write``).
Writer = Annotated[Principal, Depends(live(guard.require(scopes=(WRITE,))))]

#: Changes the caller's own credentials, which a logged-in user does and an API token never
#: does: password, MFA enrolment, new API tokens, signatures (``auth:write``, access token).
LoggedIn = Annotated[Principal, Depends(live(guard.require(scopes=(WRITE,), interactive=True)))]


def may_manage_others(principal: Principal, what: str) -> bool:
    """True if ``principal`` may act on another user's ``what`` (a session, an API token): the
    role admin and the scope ``auth:admin``. An admin whose token lacks the scope gets a 403 (it
    is an admin: telling that the record exists reveals nothing); anyone else False (404)."""
    if not principal.has_role("admin"):
        return False
    if not principal.has_scope(ADMIN):
        raise AuthError(f"revoking another user's {what} needs the scope {ADMIN}", 403)
    return True


Admin = Annotated[Principal, Depends(live(guard.require(roles=("admin",), scopes=(ADMIN,))))]


Auditor = Annotated[Principal, Depends(live(guard.require(roles=("admin", "auditor"), scopes=(READ,))))]
