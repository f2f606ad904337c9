"""What a running service has: its database, tables, relay and consumer, bound by a System."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from isles.database import Database
from isles.events import EventRegistry
from isles.tables import FrameworkTables

if TYPE_CHECKING:
    from isles.consumer import Consumer
    from isles.relay import Relay
    from isles.service import Service


@dataclass
class ServiceRuntime:
    service: "Service"
    database: Database
    registry: EventRegistry
    source: str
    topic: str
    relay: "Relay | None" = None
    consumer: "Consumer | None" = None
    publishes: frozenset[str] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def tables(self) -> FrameworkTables:
        return self.service.tables

    def committed(self, events: int) -> None:
        """A unit of work committed ``events`` outbox rows: wake the relay."""
        if self.relay is not None:
            self.relay.wake()
