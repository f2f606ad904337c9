"""Event transports behind one interface; see :mod:`isles.transport.base` for the contract."""
from isles.transport.base import Deliver, Transport
from isles.transport.memory import InMemoryTransport

__all__ = ["Deliver", "Transport", "InMemoryTransport"]
