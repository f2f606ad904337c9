"""TOTP multi-factor authentication: enrol, confirm with a first code, reset by an admin."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pyotp
from fastapi import APIRouter, Response, status
from pydantic import Field
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.http import Uow
from isles.security import Principal, constant_time_equals
from mes.auth import credentials
from mes.auth.access import LoggedIn
from mes.auth.accounts import TOTP_ISSUER, AuthError, audit, get_user, now, run
from mes.auth.models import MfaFactor

router = APIRouter()
Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


def accept_totp(factor: MfaFactor, code: str, *, at: float | None = None) -> bool:
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
    factor: MfaFactor | None = await uow.scalar(select(MfaFactor).where(MfaFactor.user_id == principal.user_uuid)
                                                .order_by(MfaFactor.created_at.desc()).limit(1))
    if factor is None:
        raise AuthError("no TOTP enrolment to verify: POST /mfa/totp first", 404)
    if not accept_totp(factor, code):
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


class TotpEnrolOut(ApiOut):
    factor_id: uuid.UUID
    secret: str = Field(description="base32 secret; shown only in this response")
    otpauth_uri: str


class CodeIn(Schema):
    code: str = Field(min_length=6, max_length=10)


@router.post("/mfa/totp", status_code=status.HTTP_201_CREATED, response_model=TotpEnrolOut,
             name="enrol_totp")
async def post_totp(principal: LoggedIn, uow: Uow, response: Response) -> TotpEnrolOut:
    """Start TOTP enrolment; confirm with a code from the authenticator (POST /mfa/totp/verify)."""
    response.headers["Cache-Control"] = "no-store"
    factor, secret, uri = await run(uow, lambda: enrol_totp(uow, principal))
    return TotpEnrolOut(factor_id=factor.id, secret=secret, otpauth_uri=uri)


@router.post("/mfa/totp/verify", status_code=status.HTTP_204_NO_CONTENT)
async def verify_totp(data: CodeIn, principal: LoggedIn, uow: Uow) -> None:
    await run(uow, lambda: confirm_totp(uow, principal, data.code), commit_on_error=True)
