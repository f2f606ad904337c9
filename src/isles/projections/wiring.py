"""How a System finds and wires projections: live subscriptions, and lookup by name."""
from __future__ import annotations

from typing import Any

from isles.errors import ConfigurationError
from isles.events import EventRegistry
from isles.projections.live import LiveProjection, followed_sources
from isles.projections.projection import Projection
from isles.subscriptions import Subscription


def projections_of(services: Any) -> dict[str, tuple[Any, Projection]]:
    """Every projection of ``services`` by name (names are unique in a system)."""
    found: dict[str, tuple[Any, Projection]] = {}
    for service in services:
        for projection in getattr(service, "projections", ()):
            if projection.name in found:
                raise ConfigurationError(
                    f"projection {projection.name!r} is declared twice (also by '{found[projection.name][0].name}')",
                    service=service.name, fix="give every projection of the system a unique name")
            found[projection.name] = (service, projection)
    return found


def check_projections(services: Any, registry: EventRegistry) -> None:
    """Refuse a projection that handles a type no service publishes (at System construction)."""
    for service, projection in projections_of(services).values():
        followed_sources(projection, registry, service=service.name)


def projection_subscriptions(service: Any, registry: EventRegistry) -> list[Subscription]:
    """The consumer subscriptions that apply ``service``'s projections live."""
    subs: list[Subscription] = []
    for projection in getattr(service, "projections", ()):
        subs.extend(LiveProjection(projection, service.projection_tables, registry, service.name).subscriptions())
    return subs


def find(system: Any, name: str) -> tuple[Any, Projection]:
    found = projections_of(system.services.values())
    try:
        return found[name]
    except KeyError:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigurationError(f"system '{system.name}' has no projection {name!r}",
                                 fix=f"use one of: {known}") from None
