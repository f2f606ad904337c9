"""What one running service has: its database, dialect, framework tables, names and event types.

A leaf record: it knows nothing of Service, Relay or Consumer. The :class:`isles.System` builds
one per started service and wires the moving parts to it (``on_commit`` wakes the relay).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from isles.database import Database
from isles.dialects.base import Dialect
from isles.events import EventRegistry
from isles.tables import FrameworkTables


def _nobody_listens(events: int) -> None:
    """The default ``on_commit``: no relay runs in this process for the service."""


@dataclass
class ServiceRuntime:
    name: str
    database: Database
    dialect: Dialect
    tables: FrameworkTables
    registry: EventRegistry
    #: the CloudEvents ``source`` of its events, e.g. ``/mes/material``
    source: str
    #: the topic its events are published on, e.g. ``mes.material.events``
    topic: str
    #: the event types it declares it publishes
    publishes: frozenset[str] = field(default_factory=frozenset)
    #: called after a unit of work committed that many outbox rows (the System wakes the relay)
    on_commit: Callable[[int], None] = _nobody_listens
    #: command type -> its target's command topic (see isles.messaging); other rows go to ``topic``
    routes: Mapping[str, str] = field(default_factory=dict)

    def committed(self, events: int) -> None:
        """A unit of work committed ``events`` outbox rows."""
        self.on_commit(events)
