"""Who may read the genealogy: every route needs a token with ``traceability:read``.

The service has no commands: its data comes from the other services' events only.
"""
from __future__ import annotations

from fastapi import Depends

from isles.security import Guard

guard = Guard()  # the traceability service answers; API tokens are checked in its own replica
Reader = Depends(guard.require_scopes("traceability:read"))
