"""isles: database-per-service for Python.

Each service owns its database; events carried through an outbox keep other services'
copies current, exactly once and in order. See README.md for a tour.
"""
from isles.cache import ReferenceDataCache
from isles.consumer import RetryReport
from isles.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    EventError,
    InvalidPayload,
    IslesError,
    UnknownEventType,
)
from isles.events import Envelope, Event, EventRegistry, Payload, upcaster
from isles.orm import Entity, HasUuid, ReadModel, Timestamped, Versioned
from isles.replication import Replica, Snapshot
from isles.service import Service
from isles.subscriptions import Handlers, Subscription
from isles.system import System
from isles.unit_of_work import UnitOfWork

__version__ = "0.1.0"

__all__ = [
    "ReferenceDataCache", "ConfigurationError", "DatabaseUnavailable", "Entity", "Envelope", "ReadModel", "Event",
    "EventError", "EventRegistry",
    "Handlers", "HasUuid", "InvalidPayload", "IslesError", "Payload", "Replica", "RetryReport", "Service",
    "Snapshot", "Subscription", "System", "Timestamped", "UnitOfWork", "UnknownEventType", "Versioned", "upcaster",
]
