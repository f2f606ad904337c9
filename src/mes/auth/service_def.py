"""The auth service declaration: users, credentials, sessions, tokens, MFA and the audit log.

auth owns API tokens, so it verifies them against its own table (see ``access.guard``) and keeps
no replica of them.
"""
from __future__ import annotations

from isles import Service, Snapshot
from mes.auth.api import router
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
    router=router,
    snapshots=[Snapshot("mes.auth.user", User, _user_snapshot)],
    description="Users, roles, sessions, API tokens, MFA and the audit trail",
)
