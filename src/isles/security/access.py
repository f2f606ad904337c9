"""What each route requires, declared where it is checked and readable by the framework.

A route's requirement is not written twice (once to check, once to document): every dependency
that :class:`~isles.security.Guard` builds carries the :class:`Requirement` it enforces, and a
public route says so with :data:`PUBLIC`::

    Reader = Annotated[Principal, Depends(guard.require(scopes=("resource:read",)))]
    Writer = Annotated[Principal, Depends(guard.require(roles=("engineer", "admin"), scopes=("resource:write",)))]

    @router.get("/sites")                       # declared by its Reader parameter
    async def list_sites(principal: Reader, ...): ...

    @router.post("/login", dependencies=[PUBLIC])  # declared public: no credential needed
    async def post_login(...): ...

:func:`route_access` walks a route's dependency tree (the route's parameters, its router's and
the app's ``dependencies=``) and combines what it finds into one :class:`Access`: every role group
("any of") and every scope must hold, and an ``interactive`` requirement admits a login's access
token only (never an API token). A route where nothing is found is *undeclared* - a route
that checks nothing by oversight - and :func:`route_access` returns None for it, so a test (the MES
access sweep) can refuse it. :func:`document_access` writes each route's access into the OpenAPI
(``x-isles-access`` and a line of its description); :func:`access_map` lists all of an app's routes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from isles.errors import ConfigurationError
from isles.security.principal import Principal

__all__ = ["ACCESS_EXTENSION", "PUBLIC", "Access", "Requirement", "RouteAccess", "access_map", "declare",
           "document_access", "public", "requirement_of", "route_access"]

#: The OpenAPI extension on each operation:
#: ``{"public": bool, "roles": [[any of], ...], "scopes": [all of], "interactive": bool}``.
ACCESS_EXTENSION = "x-isles-access"

_ATTRIBUTE = "__isles_requirement__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Requirement:
    """What one dependency demands of the caller: nothing (``public``), or a valid credential with
    any of ``roles`` (if given) and every scope in ``scopes`` - and, if ``interactive``, a user's
    access token from a login rather than an API token (changing a password, enrolling MFA,
    minting API tokens, signing)."""

    public: bool = False
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    interactive: bool = False


def declare(dependency: F, requirement: Requirement) -> F:
    """Record on ``dependency`` (a function FastAPI calls) the requirement it enforces."""
    setattr(dependency, _ATTRIBUTE, requirement)
    return dependency


def requirement_of(call: Any) -> Requirement | None:
    """The requirement a dependency declared with :func:`declare`, or None."""
    requirement = getattr(call, _ATTRIBUTE, None)
    return requirement if isinstance(requirement, Requirement) else None


def public() -> None:
    """Dependency that checks nothing and declares the route public (login, refresh, health)."""


declare(public, Requirement(public=True))

#: ``dependencies=[PUBLIC]`` on a route (or router): callable without any credential, on purpose.
PUBLIC = Depends(public)


@dataclass(frozen=True)
class Access:
    """A route's whole requirement: public, or authenticated with every role group and scope."""

    public: bool
    role_groups: tuple[tuple[str, ...], ...] = ()
    scopes: tuple[str, ...] = ()
    interactive: bool = False

    def allows(self, principal: Principal | None) -> bool:
        """True if ``principal`` (None: no credential) passes this route's checks."""
        if self.public:
            return True
        if principal is None:
            return False
        return ((not self.interactive or principal.kind == "user")
                and all(principal.has_role(*group) for group in self.role_groups)
                and all(principal.has_scope(scope) for scope in self.scopes))

    def describe(self) -> str:
        """One line for people: ``public``, or the scopes and roles needed."""
        if self.public:
            return "public (no credential)"
        parts = [f"scopes {', '.join(self.scopes)}" if self.scopes else "any valid token (no scope)"]
        parts += [f"a role of {', '.join(group)}" for group in self.role_groups]
        if self.interactive:
            parts.append("a logged-in user's access token (no API token)")
        return "; ".join(parts)

    def as_openapi(self) -> dict[str, Any]:
        return {"public": self.public, "roles": [list(g) for g in self.role_groups], "scopes": list(self.scopes),
                "interactive": self.interactive}


def _requirements(dependant: Any) -> Iterator[Requirement]:
    found = requirement_of(dependant.call)
    if found is not None:
        yield found
    for sub in dependant.dependencies:
        yield from _requirements(sub)


def _combine(requirements: Iterable[Requirement], where: str) -> Access | None:
    found = list(requirements)
    if not found:
        return None
    guarded = [r for r in found if not r.public]
    if not guarded:
        return Access(public=True)
    if len(guarded) < len(found):
        raise ConfigurationError(f"the route {where} is declared public and also requires a credential",
                                 fix="remove dependencies=[PUBLIC] or the guard parameter from the route")
    groups = tuple(dict.fromkeys(tuple(r.roles) for r in guarded if r.roles))
    scopes = tuple(dict.fromkeys(s for r in guarded for s in r.scopes))
    return Access(public=False, role_groups=groups, scopes=scopes, interactive=any(r.interactive for r in guarded))


def route_access(route: Any) -> Access | None:
    """What ``route`` (an ``APIRoute``, or FastAPI's context of a route included in a router) requires,
    read from its whole dependency tree; None if it declares nothing."""
    where = f"{' '.join(sorted(route.methods or ()))} {getattr(route, 'path_format', None) or route.path}"
    return _combine(_requirements(route.dependant), where)


@dataclass(frozen=True)
class RouteAccess:
    """One operation of an app and what it requires (``access`` None: undeclared)."""

    method: str
    path: str
    name: str
    access: Access | None


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes as FastAPI runs them: with the dependencies of every router and
    ``include_router()`` they were included through (FastAPI >= 0.16x keeps included routers lazy)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes into app.routes
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _docs_paths(app: FastAPI) -> set[str]:
    """FastAPI's own pages (Swagger UI, its OAuth2 redirect, ReDoc, the OpenAPI document) and the
    paths given to :func:`document_access` as ``public_paths``: public."""
    fastapi_pages = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url, app.openapi_url)
    return {p for p in fastapi_pages if p} | set(getattr(app.state, "isles_public_paths", ()))


def access_map(app: FastAPI) -> list[RouteAccess]:
    """Every API operation of ``app`` (method and path as in its OpenAPI) with its access; FastAPI's
    documentation pages are public."""
    rows = []
    docs = _docs_paths(app)
    for route in _api_routes(app):
        path = getattr(route, "path_format", None) or route.path
        access = Access(public=True) if path in docs else route_access(route)
        rows += [RouteAccess(method, path, route.name, access) for method in sorted(route.methods or ())]
    return rows


def document_access(app: FastAPI, *, public_paths: Iterable[str] = ()) -> None:
    """Show each operation's access in ``app``'s OpenAPI: the ``x-isles-access`` extension
    (``{"undeclared": true}`` for a route that declares nothing) and a line ``Access: ...`` at the
    end of its description. Wraps ``app.openapi``, so routes added later are documented too.

    ``public_paths`` declares public the routes one cannot give ``dependencies=[PUBLIC]`` because
    a library adds them (the offline ``/docs`` and ``/redoc`` pages)."""
    app.state.isles_public_paths = (*getattr(app.state, "isles_public_paths", ()), *public_paths)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        paths = schema.get("paths", {})
        for row in access_map(app):
            operation = paths.get(row.path, {}).get(row.method.lower())
            if operation is None or ACCESS_EXTENSION in operation:
                continue
            access = row.access
            operation[ACCESS_EXTENSION] = access.as_openapi() if access is not None else {"undeclared": True}
            line = f"Access: {access.describe()}." if access is not None else "Access: UNDECLARED."
            operation["description"] = f"{operation['description']}\n\n{line}" if operation.get("description") else line
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
