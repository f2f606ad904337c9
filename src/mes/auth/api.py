"""HTTP API of the auth service: one router per concept (login and sessions, users and roles,
API tokens, MFA, electronic signatures, the audit trail)."""
from __future__ import annotations

from fastapi import APIRouter

from mes.auth import api_tokens, audit, mfa, sessions, signatures, users

router = APIRouter()
for module in (sessions, users, api_tokens, mfa, signatures, audit):
    router.include_router(module.router)

__all__ = ["router"]
