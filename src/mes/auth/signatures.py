"""Electronic signatures' identity check (21 CFR Part 11 11.200): the signer re-enters their
password for a meaning, and gets a short-lived signed assertion the service holding the record
verifies (isles.security.decode_assertion)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.security import Principal, constant_time_equals, issue_assertion
from mes.auth import credentials
from mes.auth.access import LoggedIn, Reader
from mes.auth.accounts import AuthError, audit, client_ip, normalize_username, now, raise_alert, run
from mes.auth.models import Credential, Session, SignatureMeaning, User
from mes.auth.sessions import failed_attempt, is_locked

router = APIRouter()
Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


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
    if is_locked(user):
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
        await failed_attempt(uow, user, cfg, "failed signature", ip)
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


class SignIn(Schema):
    username: str | None = Field(default=None, max_length=150, description="required for the first signature "
                                 "of a session (21 CFR Part 11 11.200)")
    password: str = Field(min_length=1, max_length=1024)
    meaning: str = Field(min_length=1, max_length=32, examples=["approval"])
    record_type: str | None = Field(default=None, max_length=64, examples=["fai_report"])
    record_id: str | None = Field(default=None, max_length=64)
    record_hash: str | None = Field(default=None, max_length=128, description="hash of the exact record version")


class SignOut(ApiOut):
    assertion: str = Field(description="signed statement for the service that stores the signature (2 minutes)")
    expires_in: int
    signed_at: datetime
    user_id: uuid.UUID
    printed_name: str
    meaning: str
    meaning_text: str
    session_id: uuid.UUID


class MeaningOut(ApiOut):
    code: str
    name: str
    description: str


@router.get("/signature-meanings", response_model=PageOut[MeaningOut])
async def list_meanings(principal: Reader, uow: Uow, page: Page) -> Paged[SignatureMeaning]:
    await ensure_meanings(uow)
    rows = await paged(uow, select(SignatureMeaning).where(SignatureMeaning.is_active.is_(True))
                       .order_by(SignatureMeaning.code), page)
    await uow.commit()
    return rows


@router.post("/signatures/verify", response_model=SignOut, responses={401: {}, 403: {}})
async def verify_signature(data: SignIn, principal: LoggedIn, uow: Uow, request: Request,
                           response: Response) -> SignOut:
    """Re-authenticate the signer of an electronic signature; failures lock out and raise an alert."""
    response.headers["Cache-Control"] = "no-store"
    result = await run(uow, lambda: verify_signer(
        uow, principal, password=data.password, meaning=data.meaning, username=data.username,
        record_type=data.record_type, record_id=data.record_id, record_hash=data.record_hash, ip=client_ip(request)),
        commit_on_error=True)
    return SignOut(assertion=result.assertion, expires_in=result.expires_in, signed_at=result.signed_at,
                   user_id=result.user.id, printed_name=result.user.display_name, meaning=result.meaning.code,
                   meaning_text=result.meaning.description, session_id=result.session_id)
