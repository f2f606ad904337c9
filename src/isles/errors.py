"""Errors that name the service, what is wrong and how to fix it.

Every error isles raises on purpose is an :class:`IslesError`. Its message always has the
same three parts so that an operator reading a log line knows where to look and what to do.
"""
from __future__ import annotations


class IslesError(Exception):
    """A problem isles detected, with the service it concerns and the fix."""

    def __init__(self, problem: str, *, service: str | None = None, fix: str | None = None):
        self.problem = problem
        self.service = service
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"service '{self.service}': " if self.service else ""
        text = f"{where}{self.problem}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ConfigurationError(IslesError):
    """A setting (URL, pool size, service declaration) is wrong."""


class DatabaseUnavailable(IslesError):
    """A service's database cannot be reached."""


class EventError(IslesError):
    """An event cannot be published or understood."""


class UnknownEventType(EventError):
    """An event type that no service in the system declares."""


class InvalidPayload(EventError):
    """An event's data does not match its declared model."""
