"""The auth service declaration: users, credentials, sessions, tokens, MFA and the audit log."""
from __future__ import annotations

from isles import Service, Snapshot
from isles.security import Principal, accept_api_tokens
from mes.auth.accounts import api_token_principal
from mes.auth.events import PUBLISHES, UserUpdated
from mes.auth.models import Base, User


def _user_snapshot(user: User) -> UserUpdated:
    return UserUpdated(user_id=str(user.id), username=user.username, first_name=user.first_name,
                       last_name=user.last_name, display_name=user.display_name, email=user.email,
                       is_active=user.is_active)


service = Service(
    "auth",
    metadata=Base.metadata,
    publishes=PUBLISHES,
    snapshots=[Snapshot("mes.auth.user", User, _user_snapshot)],
    description="Users, roles, sessions, API tokens, MFA and the audit trail",
)


async def _own_api_tokens(svc: Service, token_hash: str) -> Principal | None:
    """auth verifies API tokens against its own table; every other service keeps a replica."""
    async with svc.unit_of_work() as uow:
        return await api_token_principal(uow, token_hash)


accept_api_tokens(service, lookup=_own_api_tokens)
