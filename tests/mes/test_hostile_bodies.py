"""Request bodies no client should send still get a 4xx with the error shape, never a 500.

A lone surrogate, NaN/Infinity/1e400, bytes that are not UTF-8 and text that is not JSON used to
make the validation-error handler fail while echoing the input back: a 500 from one
unauthenticated request, and the keep-alive connection closed with it.
"""
from __future__ import annotations

import uuid

import pytest
from mes_helpers import M, W

JSON = {"Content-Type": "application/json"}
PART = str(uuid.uuid4())


def _assert_refused(response) -> None:
    assert response.status_code in (400, 422), (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()  # RFC 9457 problem details, with each invalid input in errors[]
    assert body["status"] == response.status_code and isinstance(body["errors"], list) and body["errors"], body
    assert {"type", "loc", "msg"} <= set(body["errors"][0]), body


@pytest.mark.parametrize("raw", [
    b'{"username": "a\\ud800", "password": "x"}',            # lone surrogate, escaped
    b'{"username": "admin", "password": "\\udfff"}',
    b'{"username": "a\xff\xfe", "password": "x"}',            # not UTF-8
    b'\xff\xfe{}',
    b'{"username": "admin", "password": ',                    # not JSON
    b'{"username": NaN, "password": "x"}',
])
async def test_login_with_a_hostile_body_is_refused_not_a_500(client, raw):
    _assert_refused(await client.post("/api/auth/login", content=raw, headers=JSON))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize("path", [f"{M}/lots", f"{W}/work-orders"])
async def test_a_non_finite_quantity_is_an_invalid_number(client, crew, path, number):
    raw = f'{{"partId": "{PART}", "quantity": {number}}}'.encode()
    response = await client.post(path, content=raw, headers={**JSON, **crew.engineer})
    _assert_refused(response)
    assert "number" in response.text.lower() or "json" in response.text.lower(), response.text


async def test_the_validation_answer_never_fails_to_encode_what_it_echoes(client):
    """A value that parses (strict JSON) but fails validation is echoed without breaking the answer."""
    response = await client.post("/api/auth/login", json={"username": ["x"], "password": 1.5})
    assert response.status_code == 422, response.text


async def test_the_connection_keeps_working_after_a_hostile_request(client):
    """Two requests on one client: the second one is answered normally."""
    first = await client.post("/api/auth/login", content=b'{"username": "a\\ud800", "password": "x"}', headers=JSON)
    _assert_refused(first)
    second = await client.post("/api/auth/login", json={"username": "nobody", "password": "wrong-password"})
    assert second.status_code == 401, second.text



def test_a_short_auth_secret_is_refused_when_the_app_is_built(mes_env):
    """It used to start, then answer every login with a 500."""
    from mes_helpers import build_system

    from isles.api import create_app
    from isles.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as refused:
        create_app(build_system({**mes_env, "ISLES_AUTH_SECRET": "S3cretPW"}))
    assert "ISLES_AUTH_SECRET" in str(refused.value) and "S3cretPW" not in str(refused.value)
    assert "secrets.token_urlsafe" in str(refused.value)
