"""TOTP enrolment and verification; once enrolled, login needs a fresh code."""
from __future__ import annotations

import time

import pyotp
from sqlalchemy import select

from mes import auth
from mes.auth.models import MfaFactor


async def test_totp_enrolment_then_login_requires_a_fresh_code(api):
    token = await api.user_token("mfauser", ["operator"])
    enrol = await api.http.post("/api/auth/mfa/totp", headers=api.bearer(token))
    assert enrol.status_code == 201 and enrol.headers["cache-control"] == "no-store"
    secret = enrol.json()["secret"]
    assert enrol.json()["otpauthUri"].startswith("otpauth://totp/")
    # the secret is sealed at rest, not stored as given
    async with auth.service.unit_of_work() as uow:
        sealed = await uow.scalar(select(MfaFactor.secret_sealed))
    assert secret not in sealed
    totp = pyotp.TOTP(secret)
    wrong = "000000" if totp.now() != "000000" else "111111"
    bad = await api.http.post("/api/auth/mfa/totp/verify", json={"code": wrong}, headers=api.bearer(token))
    assert bad.status_code == 422
    previous = totp.at(time.time() - 30)  # one step back: accepted once (clock drift)
    assert (await api.http.post("/api/auth/mfa/totp/verify", json={"code": previous},
                                headers=api.bearer(token))).status_code == 204
    # password alone is no longer enough
    need = await api.login("mfauser", api.PASSWORD)
    assert need.status_code == 401 and "TOTP" in need.json()["detail"]
    # a replayed (already used) code is refused
    assert (await api.login("mfauser", api.PASSWORD, totpCode=previous)).status_code == 401
    ok = await api.login("mfauser", api.PASSWORD, totpCode=totp.now())
    assert ok.status_code == 200
    # second enrolment is refused while one is active; an admin can reset it
    assert (await api.http.post("/api/auth/mfa/totp", headers=api.bearer(token))).status_code == 409
    admin = await api.token()
    user_id = ok.json()["user"]["id"]
    assert (await api.http.post(f"/api/auth/users/{user_id}/mfa-reset", headers=api.bearer(admin))).status_code == 204
    assert (await api.login("mfauser", api.PASSWORD)).status_code == 200


async def test_wrong_totp_codes_count_towards_lockout(api):
    token = await api.user_token("mfalock", ["operator"])
    secret = (await api.http.post("/api/auth/mfa/totp", headers=api.bearer(token))).json()["secret"]
    totp = pyotp.TOTP(secret)
    await api.http.post("/api/auth/mfa/totp/verify", json={"code": totp.now()}, headers=api.bearer(token))
    wrong = str((int(totp.now()) + 500000) % 1000000).zfill(6)
    for _ in range(3):
        assert (await api.login("mfalock", api.PASSWORD, totpCode=wrong)).status_code == 401
    assert (await api.login("mfalock", api.PASSWORD, totpCode=totp.now())).status_code == 401  # locked
