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
_WRITE = ("work_order:write",)

# Spelled out (not built by a helper) so that type checkers see each as a type alias.
Planner = Annotated[Principal, Depends(guard.require(roles=("supervisor", "engineer", "admin"), scopes=_WRITE))]
Supervisor = Annotated[Principal, Depends(guard.require(roles=("supervisor", "admin"), scopes=_WRITE))]
Operator = Annotated[Principal, Depends(guard.require(roles=("operator", "supervisor", "admin"), scopes=_WRITE))]
Engineer = Annotated[Principal, Depends(guard.require(roles=("engineer", "admin"), scopes=_WRITE))]
