"""Who is calling: the identity every credential check produces."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through an access token, or a user's API token."""

    user_id: str
    username: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset({"*"})
    kind: str = "user"  # "user" (access token) or "api_token"
    session_id: str | None = None
    token_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_role(self, *roles: str) -> bool:
        """True if the principal holds any of ``roles``."""
        return any(role in self.roles for role in roles)

    def has_scope(self, scope: str) -> bool:
        """``*`` grants every scope, ``resource:*`` every scope of ``resource``."""
        if "*" in self.scopes or scope in self.scopes:
            return True
        prefix = scope.split(":", 1)[0]
        return f"{prefix}:*" in self.scopes

    @property
    def user_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.user_id)
