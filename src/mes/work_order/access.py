"""Who may do what in the work order service, as FastAPI dependencies.

Every route needs a token with ``work_order:read``. Changes need ``work_order:write`` and a
role: planners (supervisor, engineer) create orders; supervisors release, dispatch, hold, cancel
and close them and publish schedules; operators run operations and report quantities; engineers
write work instructions. Admins may do everything.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from isles.security import Guard, Principal

guard = Guard()  # the work order service answers; API tokens are checked in its own replica
Reader = Depends(guard.require_scopes("work_order:read"))


def _role(*roles: str) -> object:
    return Annotated[Principal, Depends(guard.require(roles=(*roles, "admin"), scopes=("work_order:write",)))]


Planner = _role("supervisor", "engineer")
Supervisor = _role("supervisor")
Operator = _role("operator", "supervisor")
Engineer = _role("engineer")
