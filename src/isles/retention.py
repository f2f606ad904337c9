"""How long the outbox and the inbox remember events, and why the two windows are tied.

The inbox is what makes delivery exactly-once: a consumer applies an event only if its id is not
there yet. Kept forever it grows by one row per applied event (at 50 events/s about 430,000 rows
a day), so its rows are deleted once they are older than the **inbox window**
(``ISLES_INBOX_RETENTION``, default: the outbox window plus a day, 8 days). Forgetting an id is only safe
if that event can no longer come back, or is refused when it does. Both hold:

* **It can only come back while someone still has it.** An event is redelivered from the broker
  (while Kafka's ``retention.ms`` or a Redis stream's ``MAXLEN`` keeps it) or sent again from the
  producer's outbox (which keeps published rows for the **outbox window**,
  ``ISLES_OUTBOX_RETENTION``, default 7 days; the relay purges them after that). The inbox window
  must be at least as long as both, so that an ordinary redelivery finds its id and is dropped
  quietly. isles checks the outbox side at start (inbox window >= outbox window, else a
  :class:`~isles.errors.ConfigurationError`); the broker's retention is not visible to isles, so
  set the inbox window above it yourself.
* **An event older than the inbox window is refused.** Its CloudEvents ``time`` (when the producer
  committed it) is compared with the consumer's clock: older than the window, the inbox may have
  forgotten it, so it is not applied but dead-lettered as *too old* (``isles dlq list`` shows it,
  and it parks its key like any dead letter). ``isles dlq retry`` refuses it again while it is
  still older than the window. If you know it was never applied - the relay or the consumer was
  down for longer than the window - raise ``ISLES_INBOX_RETENTION`` above its age and retry it.

So exactly-once holds whatever the windows are; the windows decide whether a late copy is dropped
quietly (its id is still remembered) or waits for a person (it is older than the window).

An inbox row is deleted once its ``processed_at`` is older than the window plus a clock allowance
(:data:`CLOCK_ALLOWANCE`, or the window itself if that is shorter): the event's ``time`` comes from
the producer's clock, which may run a little ahead of the consumer's, and the allowance keeps the
row until the event is surely refused by age. Purges delete in bounded batches
(:data:`PURGE_BATCH` rows, one short transaction each), so they never hold a long lock; every
consumer process of a service runs one every ``ISLES_INBOX_PURGE_INTERVAL`` (default 60 s).

Durations are written as seconds (``691200``) or with a unit: ``2s``, ``30m``, ``12h``, ``8d``.
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import delete, select

from isles.errors import ConfigurationError, EventError
from isles.events import Envelope
from isles.orm import as_utc, utcnow
from isles.runtime import ServiceRuntime

log = logging.getLogger("isles.retention")

INBOX_RETENTION = "ISLES_INBOX_RETENTION"
OUTBOX_RETENTION = "ISLES_OUTBOX_RETENTION"
INBOX_PURGE_INTERVAL = "ISLES_INBOX_PURGE_INTERVAL"

DEFAULT_OUTBOX = timedelta(days=7)
#: the inbox window's default: the outbox window plus this (8 days with the outbox's default), so a
#: replay of everything the outbox still holds is deduplicated
INBOX_MARGIN = timedelta(days=1)
DEFAULT_PURGE_INTERVAL = 60.0
#: how far a producer's clock may run ahead of a consumer's without breaking exactly-once
CLOCK_ALLOWANCE = timedelta(minutes=5)
#: inbox rows deleted per transaction
PURGE_BATCH = 1000

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$", re.IGNORECASE)


class EventTooOld(EventError):
    """An event older than the inbox window: the inbox may have forgotten it, so it is not applied."""


@dataclass(frozen=True)
class RetentionSettings:
    """The two windows and how often the inbox is purged (see the module docstring)."""

    inbox: timedelta = DEFAULT_OUTBOX + INBOX_MARGIN
    outbox: timedelta = DEFAULT_OUTBOX
    purge_interval: float = DEFAULT_PURGE_INTERVAL

    @property
    def inbox_kept(self) -> timedelta:
        """How long an inbox row is kept: the window plus the clock allowance."""
        return self.inbox + min(self.inbox, CLOCK_ALLOWANCE)


def parse_duration(name: str, raw: str) -> timedelta:
    """``raw`` (seconds, or a number with unit s/m/h/d) as a positive duration."""
    match = _DURATION.match(raw)
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else 0.0
    if seconds <= 0:
        raise ConfigurationError(f"{name}={raw!r} is not a duration above zero",
                                 fix=f"write it as seconds or with a unit, e.g. {name}=8d (also 12h, 30m, 90s)")
    return timedelta(seconds=seconds)


def retention_settings(env: Mapping[str, str], relay_options: Mapping[str, Any] | None = None) -> RetentionSettings:
    """The retention settings from ``env``; the outbox window may also come from ``relay_options``.

    ``relay_options={"retention": timedelta(...)}`` (code) and ``ISLES_OUTBOX_RETENTION`` may both be
    set only if they agree. The inbox window must be at least the outbox window.
    """
    outbox = DEFAULT_OUTBOX
    from_env = parse_duration(OUTBOX_RETENTION, env[OUTBOX_RETENTION]) if env.get(OUTBOX_RETENTION) else None
    from_code = (relay_options or {}).get("retention")
    if from_env is not None and from_code is not None and from_env != from_code:
        raise ConfigurationError(
            f"{OUTBOX_RETENTION} gives {from_env} but the system's relay_options retention gives {from_code}",
            fix=f"set the outbox window in one place (unset {OUTBOX_RETENTION}, or drop relay_options['retention'])")
    outbox = from_env or from_code or outbox
    inbox = parse_duration(INBOX_RETENTION, env[INBOX_RETENTION]) if env.get(INBOX_RETENTION) else None
    if inbox is None:
        inbox = outbox + INBOX_MARGIN
    if inbox < outbox:
        raise ConfigurationError(
            f"{INBOX_RETENTION} ({inbox}) is shorter than the outbox's retention {OUTBOX_RETENTION} ({outbox}): "
            "events the outbox can still send again would be refused as too old instead of dropped as duplicates",
            fix=f"set {INBOX_RETENTION} to at least {OUTBOX_RETENTION} (and above the broker's retention), "
                f"or shorten {OUTBOX_RETENTION}")
    interval = DEFAULT_PURGE_INTERVAL
    if env.get(INBOX_PURGE_INTERVAL):
        interval = parse_duration(INBOX_PURGE_INTERVAL, env[INBOX_PURGE_INTERVAL]).total_seconds()
    return RetentionSettings(inbox, outbox, interval)


def too_old(envelope: Envelope, window: timedelta | None, *, service: str,
            now: datetime | None = None) -> EventTooOld | None:
    """The refusal for ``envelope`` if its ``time`` is older than ``window`` (None: young enough)."""
    if window is None:
        return None
    now = now or utcnow()
    age = now - as_utc(envelope.time)
    if age <= window:
        return None
    return EventTooOld(
        f"too old: event {envelope.id} ({envelope.type}) was published {_human(age)} ago, longer than the "
        f"inbox remembers ({INBOX_RETENTION}={_human(window)}), so it may have been applied already; not applied",
        service=service,
        fix=f"if it was never applied (the relay or consumer was down longer than that), raise {INBOX_RETENTION} "
            f"above its age and `isles dlq retry` it; otherwise leave it")


async def purge_inbox(runtime: ServiceRuntime, kept: timedelta, *, batch: int = PURGE_BATCH,
                      now: datetime | None = None) -> int:
    """Delete inbox rows processed longer than ``kept`` ago, ``batch`` rows per transaction.

    Returns how many were deleted. Rows processed after the purge started are never touched.
    """
    inbox = runtime.tables.inbox
    cutoff = (now or utcnow()) - kept
    oldest = (select(inbox.c.event_id).where(inbox.c.processed_at < cutoff)
              .order_by(inbox.c.processed_at).limit(batch)
              .with_for_update(skip_locked=True))  # (PostgreSQL) two purging processes take turns
    statement = delete(inbox).where(inbox.c.event_id.in_(oldest.scalar_subquery()))
    total = 0
    while True:
        async with runtime.database.engine.begin() as conn:
            deleted = (await conn.execute(statement)).rowcount or 0
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let deliveries through between batches


async def run_inbox_purge(runtime: ServiceRuntime, settings: RetentionSettings) -> None:
    """Purge ``runtime``'s inbox every ``settings.purge_interval`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(settings.purge_interval)
        try:
            deleted = await purge_inbox(runtime, settings.inbox_kept)
            if deleted:
                log.debug("service '%s': purged %d inbox row(s) older than %s", runtime.name, deleted,
                          settings.inbox_kept)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is down: try again next time
            log.warning("service '%s': inbox purge failed: %s: %s", runtime.name, type(exc).__name__,
                        next(iter(str(exc).splitlines()), ""))


def _human(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.4g}{unit}"
    return f"{seconds:.3g}s"


__all__ = ["CLOCK_ALLOWANCE", "EventTooOld", "RetentionSettings", "parse_duration", "purge_inbox",
           "retention_settings", "run_inbox_purge", "too_old"]
