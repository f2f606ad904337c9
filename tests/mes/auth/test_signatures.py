"""Electronic signature identity checks (21 CFR Part 11 11.200, 11.300)."""
from __future__ import annotations

from isles.security import InvalidToken, decode_assertion


async def test_first_signature_needs_both_components_later_ones_the_password(api):
    token = await api.user_token("signer", ["quality"])
    h = api.bearer(token)
    meanings = (await api.http.get("/api/auth/signature-meanings", headers=h)).json()["items"]
    assert {m["code"] for m in meanings} == {"review", "approval", "responsibility", "authorship"}
    only_password = await api.http.post("/api/auth/signatures/verify", headers=h,
                                        json={"password": api.PASSWORD, "meaning": "approval"})
    assert only_password.status_code == 422
    first = await api.http.post("/api/auth/signatures/verify", headers=h, json={
        "username": "signer", "password": api.PASSWORD, "meaning": "approval", "recordType": "fai_report",
        "recordId": "FAI-1", "recordHash": "sha256:abc"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["printedName"] == "Signer Tester" and body["meaningText"] == "I approve this record"
    claims = decode_assertion(body["assertion"], "signature")
    assert (claims["recordId"], claims["recordHash"], claims["components"], claims["verifiedBy"]) == \
        ("FAI-1", "sha256:abc", "username+password", "mes.auth")
    try:
        decode_assertion(body["assertion"], "access")
        raise AssertionError("a signature assertion must not pass as another type")
    except InvalidToken:
        pass
    later = await api.http.post("/api/auth/signatures/verify", headers=h,
                                json={"password": api.PASSWORD, "meaning": "review"})
    assert later.status_code == 200
    # a new session (after logout) needs both again
    await api.http.post("/api/auth/logout", headers=h)
    fresh = api.bearer(await api.token("signer", api.PASSWORD))
    assert (await api.http.post("/api/auth/signatures/verify", headers=fresh,
                                json={"password": api.PASSWORD, "meaning": "review"})).status_code == 422


async def test_failed_signing_raises_an_alert_and_locks_out(api, system):
    import orjson
    from sqlalchemy import select
    token = await api.user_token("badsigner", ["quality"])
    h = api.bearer(token)
    for _ in range(3):
        refused = await api.http.post("/api/auth/signatures/verify", headers=h, json={
            "username": "badsigner", "password": "not-my-password", "meaning": "approval", "recordId": "NCR-7"})
        assert refused.status_code == 401
    outbox = system.runtime("auth").tables.outbox
    async with system.runtime("auth").database.engine.connect() as conn:
        alerts = select(outbox.c.data).where(outbox.c.type == "mes.auth.security_alert.raised")
        rows = (await conn.execute(alerts)).all()
    kinds = [orjson.loads(r.data)["kind"] for r in rows]
    assert kinds.count("failed_signing") == 3 and "account_locked" in kinds
    assert (await api.login("badsigner", api.PASSWORD)).status_code == 401  # locked
    # someone else's username with my password does not sign either
    other = api.bearer(await api.user_token("honest", ["quality"]))
    spoof = await api.http.post("/api/auth/signatures/verify", headers=other, json={
        "username": "admin", "password": api.PASSWORD, "meaning": "approval"})
    assert spoof.status_code == 401
