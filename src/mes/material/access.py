"""Who may do what in the material service, as FastAPI dependencies.

Every route needs a valid access token or API token with ``material:read``. Changes need the
``material:write`` scope and a role: engineers maintain parts, BOMs and locations; the shop floor
(operators, supervisors) receives, splits, merges and issues lots; only quality (or an admin)
decides a lot's disposition - quarantine, release, reject - as a quality system requires.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from isles.security import Guard, Principal

guard = Guard()  # the material service answers; API tokens are checked in its own replica
Reader = Depends(guard.require_scopes("material:read"))
Engineer = Annotated[Principal, Depends(guard.require(roles=("engineer", "admin"), scopes=("material:write",)))]
Handler = Annotated[Principal, Depends(guard.require(roles=("operator", "supervisor", "engineer", "admin"),
                                                     scopes=("material:write",)))]
Quality = Annotated[Principal, Depends(guard.require(roles=("quality", "admin"), scopes=("material:write",)))]
