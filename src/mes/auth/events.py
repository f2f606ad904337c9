"""Events the auth service publishes (user.* names from seed 001; api_token.* feed the other
services' API-token verifiers, see isles.security)."""
from __future__ import annotations

from typing import Any

from isles import Event


class UserCreated(Event, type="mes.auth.user.created", key="user_id"):
    user_id: str
    username: str
    first_name: str
    last_name: str
    display_name: str
    email: str | None = None
    roles: list[str] = []
    is_active: bool = True


class UserUpdated(Event, type="mes.auth.user.updated", key="user_id"):
    user_id: str
    username: str
    first_name: str
    last_name: str
    display_name: str
    email: str | None = None
    roles: list[str] = []
    is_active: bool = True
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class UserDeleted(Event, type="mes.auth.user.deleted", key="user_id"):
    """The user was deactivated (users are never deleted; the id is never reissued)."""

    user_id: str
    username: str
    display_name: str
    is_active: bool = False


class _ApiTokenState(Event):
    """What a verifier needs: the SHA-256 of the token (never the token), owner, roles, scopes."""

    api_token_id: str
    token_hash: str
    user_id: str
    username: str
    roles: list[str]
    scopes: list[str]
    expires_at: int | None = None  # epoch seconds
    revoked: bool = False


class ApiTokenCreated(_ApiTokenState, type="mes.auth.api_token.created", key="api_token_id"):
    pass


class ApiTokenUpdated(_ApiTokenState, type="mes.auth.api_token.updated", key="api_token_id"):
    """The owner's roles changed: the token's effective roles follow."""


class ApiTokenRevoked(_ApiTokenState, type="mes.auth.api_token.revoked", key="api_token_id"):
    pass


class SecurityAlertRaised(Event, type="mes.auth.security_alert.raised", key="alert_id"):
    """An immediate security alert (21 CFR Part 11 11.300(d)): an account locked after repeated
    failures, or a spent refresh token presented again (a stolen token). Each alert is its own
    entity (version 1); reporting/alerting services consume them."""

    alert_id: str
    kind: str  # account_locked | refresh_token_reuse
    user_id: str
    username: str
    detail: str
    occurred_at: str  # ISO 8601, server UTC
    ip_address: str | None = None


API_TOKEN_SOURCE = "mes.auth.api_token"

PUBLISHES: list[type[Event]] = [UserCreated, UserUpdated, UserDeleted, ApiTokenCreated, ApiTokenUpdated,
                                ApiTokenRevoked, SecurityAlertRaised]
