"""Who may do what in the resource service, as FastAPI dependencies.

Every endpoint needs a valid access token or API token (isles.security). Reads need the scope
``resource:read``; writes need the role engineer or admin and the scope ``resource:write``.
(User access tokens carry every scope; API tokens only the scopes they were issued with.)
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from isles.security import Guard, Principal

guard = Guard()  # the resource service answers; API tokens are checked in its own replica
Authenticated = Depends(guard.authenticated())
Reader = Annotated[Principal, Depends(guard.require_scopes("resource:read"))]
Writer = Annotated[Principal, Depends(guard.require(roles=("engineer", "admin"), scopes=("resource:write",)))]
