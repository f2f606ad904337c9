"""FastAPI dependencies that authenticate a request and check its roles and scopes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable, Iterable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from isles.errors import ConfigurationError
from isles.http import bound_service
from isles.security.access import Requirement, declare
from isles.security.api_tokens import ApiTokenLookup, lookup_for
from isles.security.principal import Principal
from isles.security.tokens import API_TOKEN_PREFIX, InvalidToken, decode_access_token, hash_token

if TYPE_CHECKING:
    from isles.service import Service

_bearer = HTTPBearer(auto_error=False, description="An access token from auth's /login, or an API token")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _principal(credentials: HTTPAuthorizationCredentials | None, service: "Service | None",
                     lookup: ApiTokenLookup | None) -> Principal:
    if credentials is None or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "authentication required: send 'Authorization: Bearer "
                            "<access token or API token>'", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials.strip()
    if token.startswith(API_TOKEN_PREFIX):
        if service is None or lookup is None:
            raise _unauthorized("this API does not accept API tokens; use an access token")
        principal = await lookup(service, hash_token(token))
        if principal is None:
            raise _unauthorized("the API token is unknown, expired or revoked")
        return principal
    try:
        return decode_access_token(token)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None


def authenticated(service: "Service | None" = None, *,
                  api_tokens: ApiTokenLookup | None = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the calling :class:`Principal` (401 without a valid credential).

    API tokens are checked in ``service``'s own database - by default the service whose router
    answers the request (:func:`isles.http.bound_service`) - if it accepts them (it declares an
    :func:`~isles.security.api_tokens.api_token_replica`, or ``api_tokens`` is its own lookup).
    Where no service is known, only access tokens are accepted.
    """

    async def dependency(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        cached: Principal | None = getattr(request.state, "isles_principal", None)
        if cached is not None:
            return cached
        target = service if service is not None else bound_service(request)
        principal = await _principal(credentials, target, api_tokens or lookup_for(target))
        request.state.isles_principal = principal
        return principal

    return declare(dependency, Requirement())


def require_roles(*roles: str, service: "Service | None" = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: 401 without a credential, 403 unless the principal holds any of ``roles``."""
    if not roles:
        raise ConfigurationError("require_roles() needs at least one role", fix="e.g. require_roles('admin')")
    auth = authenticated(service)

    async def dependency(principal: Principal = Depends(auth)) -> Principal:
        if not principal.has_role(*roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this operation needs one of the roles: {', '.join(roles)}")
        return principal

    return declare(dependency, Requirement(roles=tuple(roles)))


def require_scopes(*scopes: str, service: "Service | None" = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: 401 without a credential, 403 unless the principal has every scope in ``scopes``."""
    auth = authenticated(service)

    async def dependency(principal: Principal = Depends(auth)) -> Principal:
        missing = [s for s in scopes if not principal.has_scope(s)]
        if missing:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the scope(s): {', '.join(missing)}")
        return principal

    return declare(dependency, Requirement(scopes=tuple(scopes)))


class Guard:
    """The dependencies of a service's ``access.py``, checking API tokens in the service's own DB.

    ``Guard()`` serves the service whose router answers the request, so ``access.py`` needs no
    import of the service's declaration. ``api_tokens`` is the owner's lookup (the service that
    issues API tokens reads its own table instead of a replica).
    """

    def __init__(self, service: "Service | None" = None, *, api_tokens: ApiTokenLookup | None = None):
        self.service = service
        self.api_tokens = api_tokens

    def authenticated(self) -> Callable[..., Awaitable[Principal]]:
        return authenticated(self.service, api_tokens=self.api_tokens)

    def require_roles(self, *roles: str) -> Callable[..., Awaitable[Principal]]:
        if not roles:
            raise ConfigurationError("require_roles() needs at least one role", fix="e.g. require_roles('admin')")
        return self.require(roles=roles)

    def require_scopes(self, *scopes: str) -> Callable[..., Awaitable[Principal]]:
        return self.require(scopes=scopes)

    def require(self, *, roles: Iterable[str] = (), scopes: Iterable[str] = (),
                interactive: bool = False) -> Callable[..., Awaitable[Principal]]:
        """Dependency: any of ``roles`` (if given) and every scope of ``scopes``; with
        ``interactive`` only a logged-in user's access token, never an API token."""
        roles, scopes = tuple(roles), tuple(scopes)
        auth = self.authenticated()

        async def dependency(principal: Principal = Depends(auth)) -> Principal:
            if interactive and principal.kind != "user":
                raise HTTPException(status.HTTP_403_FORBIDDEN, "this operation needs a logged-in user's access "
                                                               "token, not an API token")
            if roles and not principal.has_role(*roles):
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"this operation needs one of the roles: {', '.join(roles)}")
            missing = [s for s in scopes if not principal.has_scope(s)]
            if missing:
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the scope(s): {', '.join(missing)}")
            return principal

        return declare(dependency, Requirement(roles=roles, scopes=scopes, interactive=interactive))
