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
("any of") and every scope must hold. A route where nothing is found is *undeclared* - a route
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

__all__ = ["ACCESS_EXTENSION", "Access", "PUBLIC", "Requirement", "RouteAccess", "access_map", "declare",
           "document_access", "public", "requirement_of", "route_access"]

#: The OpenAPI extension on each operation: ``{"public": bool, "roles": [[any of], ...], "scopes": [...]}``.
ACCESS_EXTENSION = "x-isles-access"

_ATTRIBUTE = "__isles_requirement__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Requirement:
    """What one dependency demands of the caller: nothing (``public``), or a valid credential with
    any of ``roles`` (if given) and every scope in ``scopes``."""

    public: bool = False
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


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

    def allows(self, principal: Principal | None) -> bool:
        """True if ``principal`` (None: no credential) passes this route's checks."""
        if self.public:
            return True
        if principal is None:
            return False
        return (all(principal.has_role(*group) for group in self.role_groups)
                and all(principal.has_scope(scope) for scope in self.scopes))

    def describe(self) -> str:
        """One line for people: ``public``, or the scopes and roles needed."""
        if self.public:
            return "public (no credential)"
        parts = [f"scopes {', '.join(self.scopes)}" if self.scopes else "any valid token (no scope)"]
        parts += [f"a role of {', '.join(group)}" for group in self.role_groups]
        return "; ".join(parts)

    def as_openapi(self) -> dict[str, Any]:
        return {"public": self.public, "roles": [list(g) for g in self.role_groups], "scopes": list(self.scopes)}


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
    return Access(public=False, role_groups=groups, scopes=scopes)


def route_access(route: APIRoute) -> Access | None:
    """What ``route`` requires, read from its dependencies; None if it declares nothing."""
    return _combine(_requirements(route.dependant), f"{sorted(route.methods or ())} {route.path}")


@dataclass(frozen=True)
class RouteAccess:
    """One operation of an app and what it requires (``access`` None: undeclared)."""

    method: str
    path: str
    name: str
    access: Access | None


def access_map(app: FastAPI) -> list[RouteAccess]:
    """Every API operation of ``app`` (method and path) with its access, in route order."""
    rows = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            access = route_access(route)
            rows += [RouteAccess(method, route.path, route.name, access) for method in sorted(route.methods or ())]
    return rows


def document_access(app: FastAPI) -> None:
    """Write each route's access into the OpenAPI: the ``x-isles-access`` extension and a line
    ``Access: ...`` in its description (undeclared routes say so). Call once the routes are added."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        access = route_access(route)
        extension = access.as_openapi() if access is not None else {"undeclared": True}
        route.openapi_extra = {**(route.openapi_extra or {}), ACCESS_EXTENSION: extension}
        line = f"Access: {access.describe()}." if access is not None else "Access: UNDECLARED."
        if "Access: " not in (route.description or ""):
            route.description = f"{route.description}\n\n{line}" if route.description else line
    app.openapi_schema = None
