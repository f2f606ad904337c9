"""The tables isles keeps in every service's own database: outbox, inbox and dead letters.

They live in the service's metadata (and so in its schema and its migrations), which is what
lets a state change, its events and its consumed-event records commit in one local transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid alias).
_Id = BigInteger().with_variant(Integer(), "sqlite")

OUTBOX = "isles_outbox"
INBOX = "isles_inbox"
DEAD_LETTERS = "isles_dead_letters"
#: the keys of idempotent HTTP commands and their first responses (:mod:`isles.idempotency`)
IDEMPOTENCY_KEYS = "isles_idempotency_keys"

#: dead letter states: ``dead`` failed and parks its key; ``waiting`` arrived while the key was
#: parked; ``resolved`` was handled on retry.
DEAD, WAITING, RESOLVED = "dead", "waiting", "resolved"


@dataclass(frozen=True)
class FrameworkTables:
    outbox: Table
    inbox: Table
    dead_letters: Table


def install(metadata: MetaData) -> FrameworkTables:
    """Add the framework tables to ``metadata`` (idempotent) and return them."""
    if OUTBOX in metadata.tables:
        return FrameworkTables(metadata.tables[OUTBOX], metadata.tables[INBOX], metadata.tables[DEAD_LETTERS])
    outbox = Table(
        OUTBOX, metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(255), nullable=False),
        Column("source", String(255), nullable=False),
        Column("subject", String(255)),
        Column("partition_key", String(255), nullable=False),
        Column("entity_version", BigInteger),
        Column("data_version", Integer, nullable=False, server_default=text("1")),
        Column("trace_parent", String(64)),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("data", Text, nullable=False),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("next_attempt_at", DateTime(timezone=True)),
        Column("last_error", Text),
        Index("idx_isles_outbox_pending", "id", postgresql_where=text("published_at IS NULL"),
              sqlite_where=text("published_at IS NULL")),
        Index("idx_isles_outbox_published_at", "published_at"),
        Index("idx_isles_outbox_partition_key", "partition_key"),
    )
    inbox = Table(
        INBOX, metadata,
        Column("event_id", String(36), primary_key=True),
        Column("type", String(255), nullable=False),
        Column("source", String(255), nullable=False),
        Column("partition_key", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        Index("idx_isles_inbox_processed_at", "processed_at"),
    )
    dead_letters = Table(
        DEAD_LETTERS, metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
        Column("type", String(255), nullable=False),
        Column("source", String(255), nullable=False),
        Column("partition_key", String(255), nullable=False),
        Column("envelope", Text, nullable=False),  # CloudEvents JSON, enough to replay it
        Column("status", String(16), nullable=False),
        Column("error", Text),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("failed_at", DateTime(timezone=True), nullable=False),
        Column("resolved_at", DateTime(timezone=True)),
        Index("idx_isles_dead_letters_source_partition_key_status", "source", "partition_key", "status"),
        Index("idx_isles_dead_letters_event_id", "event_id"),
    )
    return FrameworkTables(outbox, inbox, dead_letters)


def install_idempotency_keys(metadata: MetaData) -> Table:
    """Add ``isles_idempotency_keys`` to ``metadata`` (idempotent) and return it.

    One row per (caller, ``Idempotency-Key``) of a service that declares
    :class:`isles.idempotency.Idempotency`: the request's fingerprint and the first response,
    written in the same transaction as the command's effect so a retry replays it. Only services
    that declare idempotency get the table (and its isles migration step).
    """
    if IDEMPOTENCY_KEYS in metadata.tables:
        return metadata.tables[IDEMPOTENCY_KEYS]
    return Table(
        IDEMPOTENCY_KEYS, metadata,
        Column("key_id", String(64), primary_key=True),  # sha256 of the caller's identity and the key
        Column("idempotency_key", String(255), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("method", String(16), nullable=False),
        Column("path", Text, nullable=False),
        Column("status", Integer),  # NULL only inside the first request's own transaction
        Column("headers", Text),  # JSON [[name, value], ...]
        Column("body", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Index("idx_isles_idempotency_keys_expires_at", "expires_at"),
    )
