"""isles' own tables in every service's database, migrated by isles' own numbered steps.

The outbox, inbox and dead letters (and, for a service that accepts API tokens, the
``isles_api_tokens`` replica) are defined by isles (:mod:`isles.tables`, :mod:`isles.security`),
not by the service. So their DDL is not copied into each service's revisions: it lives here, once,
as a short sequence of **steps** per *component*:

* ``core``: outbox, inbox, dead letters (every service);
* ``api_tokens``: the API-token replica (services whose metadata has ``isles_api_tokens``);
* ``idempotency``: the keys of idempotent HTTP commands (services that declare
  ``idempotency=Idempotency()``, whose metadata has ``isles_idempotency_keys``).
* ``sagas``: saga state and timers (services that declare sagas, see :mod:`isles.sagas`).
* ``audit``: the append-only audit trail and its triggers (services that declare ``audit=True``,
  see :mod:`isles.audit_trail`).

Step 1 of each component is the schema as it was when isles took its tables out of the services'
revisions. When isles changes one of its tables it appends step 2 (never edits step 1), and
``isles.tables`` changes with it.

Where the version is recorded: ``isles_schema_version`` (component, step, name, applied_at), one
row per applied step, next to ``alembic_version`` in the service's own database (its own schema
under schema-per-service). It is written in the same transaction as the step's DDL.

How a service picks the steps up:

* its first revision calls ``framework_tables.upgrade(op)`` (and ``framework_tables.downgrade(op)``
  at the end of its downgrade); ``isles migrate new`` writes those lines into a first revision
  and never copies isles' tables into a revision;
* after a service's own revisions, ``isles migrate up`` (and ``isles run`` / ``isles serve``, which
  call it) applies every step the database has not recorded yet, in its own transaction. So a new
  isles release with a step 2 reaches every service on its next ``migrate up``, without a new
  revision in any service.

Databases from before this table existed are adopted, never re-created: when the version table
has no row for a component but that component's step-1 tables exist (made by a revision that
copied isles' DDL), step 1 is recorded as applied and only later steps run. A database adopted
from ``create_all`` (whose tables already match the current models) records every step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from isles import append_only
from isles.tables import DEAD_LETTERS, IDEMPOTENCY_KEYS, INBOX, OUTBOX

#: the table recording which isles steps a service's database has
VERSION_TABLE = "isles_schema_version"
API_TOKENS = "isles_api_tokens"  # the name isles.security gives it (not imported: keep this module a leaf)
SAGAS, SAGA_TIMERS = "isles_sagas", "isles_saga_timers"  # the names isles.sagas gives them
AUDIT_TRAIL = "isles_audit_trail"  # the name isles.audit_trail gives it

#: component -> the table whose presence in a service's metadata means the service uses it
COMPONENTS = {"core": OUTBOX, "api_tokens": API_TOKENS, "idempotency": IDEMPOTENCY_KEYS, "sagas": SAGAS,
              "audit": AUDIT_TRAIL}
#: every table isles owns in a service's database (never copied into, nor proposed by, a revision)
OWNED = frozenset({OUTBOX, INBOX, DEAD_LETTERS, API_TOKENS, IDEMPOTENCY_KEYS, SAGAS, SAGA_TIMERS, AUDIT_TRAIL,
                   VERSION_TABLE})

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class Step:
    """One change to isles' tables. Steps are append-only: a released step is never edited."""

    component: str
    number: int
    name: str
    upgrade: Callable[[Operations], None]
    downgrade: Callable[[Operations], None]
    #: tables this step creates; their presence without a version row means "made before steps existed"
    creates: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"isles:{self.component}:{self.number}"


# -- core step 1: outbox, inbox, dead letters as of isles 0.x (frozen: write a new step instead) ------
def _core_1_up(op: Operations) -> None:
    op.create_table(
        DEAD_LETTERS,
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("partition_key", sa.String(length=255), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_isles_dead_letters_event_id", DEAD_LETTERS, ["event_id"], unique=False)
    op.create_index("idx_isles_dead_letters_source_partition_key_status", DEAD_LETTERS,
                    ["source", "partition_key", "status"], unique=False)
    op.create_table(
        INBOX,
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("partition_key", sa.String(length=255), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("idx_isles_inbox_processed_at", INBOX, ["processed_at"], unique=False)
    op.create_table(
        OUTBOX,
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("partition_key", sa.String(length=255), nullable=False),
        sa.Column("entity_version", sa.BigInteger(), nullable=True),
        sa.Column("data_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("trace_parent", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("idx_isles_outbox_partition_key", OUTBOX, ["partition_key"], unique=False)
    op.create_index("idx_isles_outbox_pending", OUTBOX, ["id"], unique=False,
                    postgresql_where=sa.text("published_at IS NULL"), sqlite_where=sa.text("published_at IS NULL"))
    op.create_index("idx_isles_outbox_published_at", OUTBOX, ["published_at"], unique=False)


def _core_1_down(op: Operations) -> None:
    op.drop_index("idx_isles_outbox_published_at", table_name=OUTBOX)
    op.drop_index("idx_isles_outbox_pending", table_name=OUTBOX,
                  postgresql_where=sa.text("published_at IS NULL"), sqlite_where=sa.text("published_at IS NULL"))
    op.drop_index("idx_isles_outbox_partition_key", table_name=OUTBOX)
    op.drop_table(OUTBOX)
    op.drop_index("idx_isles_inbox_processed_at", table_name=INBOX)
    op.drop_table(INBOX)
    op.drop_index("idx_isles_dead_letters_source_partition_key_status", table_name=DEAD_LETTERS)
    op.drop_index("idx_isles_dead_letters_event_id", table_name=DEAD_LETTERS)
    op.drop_table(DEAD_LETTERS)


# -- api_tokens step 1: the API-token replica ------------------------------------------------------
def _tokens_1_up(op: Operations) -> None:
    op.create_table(
        API_TOKENS,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_isles_api_tokens_token_hash", API_TOKENS, ["token_hash"], unique=True)
    op.create_index("idx_isles_api_tokens_user_id", API_TOKENS, ["user_id"], unique=False)


def _tokens_1_down(op: Operations) -> None:
    op.drop_index("idx_isles_api_tokens_user_id", table_name=API_TOKENS)
    op.drop_index("idx_isles_api_tokens_token_hash", table_name=API_TOKENS)
    op.drop_table(API_TOKENS)


# -- idempotency step 1: keys of idempotent HTTP commands and their first responses -----------------
def _idempotency_1_up(op: Operations) -> None:
    op.create_table(
        IDEMPOTENCY_KEYS,
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("idx_isles_idempotency_keys_expires_at", IDEMPOTENCY_KEYS, ["expires_at"], unique=False)


def _idempotency_1_down(op: Operations) -> None:
    op.drop_index("idx_isles_idempotency_keys_expires_at", table_name=IDEMPOTENCY_KEYS)
    op.drop_table(IDEMPOTENCY_KEYS)


# -- sagas step 1: saga state and durable timers ----------------------------------------------------
def _sagas_1_up(op: Operations) -> None:
    op.create_table(
        SAGAS,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("waiting_for", sa.String(length=36), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_isles_sagas_status", SAGAS, ["status"], unique=False)
    op.create_table(
        SAGA_TIMERS,
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("saga_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=36), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_isles_saga_timers_due_at", SAGA_TIMERS, ["due_at"], unique=False)
    op.create_index("idx_isles_saga_timers_saga_id", SAGA_TIMERS, ["saga_id"], unique=False)


def _sagas_1_down(op: Operations) -> None:
    op.drop_index("idx_isles_saga_timers_saga_id", table_name=SAGA_TIMERS)
    op.drop_index("idx_isles_saga_timers_due_at", table_name=SAGA_TIMERS)
    op.drop_table(SAGA_TIMERS)
    op.drop_index("idx_isles_sagas_status", table_name=SAGAS)
    op.drop_table(SAGAS)


# -- audit step 1: the append-only audit trail, its triggers on both dialects ---------------------------
_AUDIT_FUNCTION = "isles_audit_trail_append_only"
_AUDIT_MESSAGE = ("isles_audit_trail is append-only (21 CFR Part 11 11.10(e)): "
                  "audit entries cannot be updated or deleted")


def _audit_1_up(op: Operations) -> None:
    op.create_table(
        AUDIT_TRAIL,
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("change_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=150), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_isles_audit_trail_entity_entity_id", AUDIT_TRAIL, ["entity", "entity_id"], unique=False)
    op.create_index("idx_isles_audit_trail_occurred_at", AUDIT_TRAIL, ["occurred_at"], unique=False)
    op.create_index("idx_isles_audit_trail_actor_id", AUDIT_TRAIL, ["actor_id"], unique=False)
    for sql in append_only.refuse_sql(AUDIT_TRAIL, op.get_context().dialect.name, message=_AUDIT_MESSAGE,
                                      function=_AUDIT_FUNCTION):
        op.execute(sql)


def _audit_1_down(op: Operations) -> None:
    op.drop_index("idx_isles_audit_trail_actor_id", table_name=AUDIT_TRAIL)
    op.drop_index("idx_isles_audit_trail_occurred_at", table_name=AUDIT_TRAIL)
    op.drop_index("idx_isles_audit_trail_entity_entity_id", table_name=AUDIT_TRAIL)
    op.drop_table(AUDIT_TRAIL)  # its triggers go with it
    for sql in append_only.drop_sql(op.get_context().dialect.name, _AUDIT_FUNCTION):
        op.execute(sql)


#: every step, in the order it runs within its component (append here; never edit a released step)
STEPS: list[Step] = [
    Step("core", 1, "outbox, inbox and dead letters", _core_1_up, _core_1_down,
         creates=(DEAD_LETTERS, INBOX, OUTBOX)),
    Step("api_tokens", 1, "API-token replica", _tokens_1_up, _tokens_1_down, creates=(API_TOKENS,)),
    Step("idempotency", 1, "idempotency keys of HTTP commands", _idempotency_1_up, _idempotency_1_down,
         creates=(IDEMPOTENCY_KEYS,)),
    Step("sagas", 1, "saga state and timers", _sagas_1_up, _sagas_1_down, creates=(SAGAS, SAGA_TIMERS)),
    Step("audit", 1, "append-only audit trail", _audit_1_up, _audit_1_down, creates=(AUDIT_TRAIL,)),
]


def components_of(metadata: sa.MetaData | None) -> list[str]:
    """The components a service uses, read from its metadata (no metadata: core only)."""
    if metadata is None:
        return ["core"]
    return [name for name, marker in COMPONENTS.items() if marker in metadata.tables]


def _steps(components: Iterable[str]) -> list[Step]:
    wanted = set(components)
    return [s for s in STEPS if s.component in wanted]


def _version_columns() -> list[sa.Column[Any]]:
    return [sa.Column("component", sa.String(32), primary_key=True),
            sa.Column("step", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.current_timestamp())]


def _version_table(schema: str | None) -> sa.Table:
    return sa.Table(VERSION_TABLE, sa.MetaData(schema=schema), *_version_columns())


def applied(conn: Connection, schema: str | None) -> dict[str, set[int]] | None:
    """Recorded steps per component; None when the version table does not exist yet."""
    if not sa.inspect(conn).has_table(VERSION_TABLE, schema=schema):
        return None
    table = _version_table(schema)
    found: dict[str, set[int]] = {}
    for component, step in conn.execute(sa.select(table.c.component, table.c.step)):
        found.setdefault(component, set()).add(step)
    return found


def plan(conn: Connection, metadata: sa.MetaData | None, schema: str | None, *,
         adopt_all: bool = False) -> tuple[list[Step], list[Step]]:
    """(steps to record without running them, steps to run) for one service's database.

    Reads only. A component with no recorded step whose step-1 tables exist is adopted: step 1
    (or, with ``adopt_all``, every step: the tables came from ``create_all`` of today's models)
    is recorded; the rest run.
    """
    done = applied(conn, schema) or {}
    existing = set(sa.inspect(conn).get_table_names(schema=schema))
    adopt: list[Step] = []
    run: list[Step] = []
    for component in components_of(metadata):
        steps = _steps([component])
        recorded = done.get(component, set())
        if not recorded and steps and set(steps[0].creates) <= existing and steps[0].creates:
            adopted = steps if adopt_all else steps[:1]
            adopt += adopted
            recorded = {s.number for s in adopted}
        run += [s for s in steps if s.number not in recorded]
    return adopt, run


def _ensure_version_table(op: Operations, schema: str | None, *, offline: bool = False) -> None:
    if offline or not sa.inspect(op.get_bind()).has_table(VERSION_TABLE, schema=schema):
        op.create_table(VERSION_TABLE, *_version_columns(), schema=schema)


def _record(op: Operations, steps: Iterable[Step], schema: str | None) -> None:
    rows = [{"component": s.component, "step": s.number, "name": s.name} for s in steps]
    if rows:
        op.bulk_insert(_version_table(schema), rows, multiinsert=False)


def _apply(op: Operations, adopt: list[Step], run: list[Step], schema: str | None, *, offline: bool = False) -> None:
    if not adopt and not run and not offline:
        return
    _ensure_version_table(op, schema, offline=offline)
    _record(op, adopt, schema)
    for step in run:
        step.upgrade(op)
        _record(op, [step], schema)


def bring_up(conn: Connection, metadata: sa.MetaData | None, schema: str | None, *,
             adopt_all: bool = False) -> list[str]:
    """Apply (inside the caller's transaction) every step ``conn``'s database lacks; returns labels,
    adopted ones marked ``(adopted)``. What ``isles migrate up`` runs after a service's revisions."""
    adopt, run = plan(conn, metadata, schema, adopt_all=adopt_all)
    op = Operations(MigrationContext.configure(conn))
    _apply(op, adopt, run, schema)
    return [f"{s.label} (adopted)" for s in adopt] + [s.label for s in run]


# -- what a service's first revision calls ---------------------------------------------------------
def _context_facts(op: Any) -> tuple[sa.MetaData | None, str | None, bool]:
    context = op.get_context()
    metadata = context.opts.get("target_metadata")
    schema = getattr(context, "version_table_schema", None)
    return metadata, schema, bool(context.as_sql)


def upgrade(op: Any) -> None:
    """Create isles' tables (every step not yet recorded) in a service's revision.

    Call it from the service's first revision, after ``timeouts.apply``. Rendered offline (``isles
    lint``, ``--sql``) it writes every step of the service's components.
    """
    metadata, schema, offline = _context_facts(op)
    if offline:
        _apply(op, [], _steps(components_of(metadata)), schema, offline=True)
        return
    adopt, run = plan(op.get_bind(), metadata, schema)
    _apply(op, adopt, run, schema)


def downgrade(op: Any) -> None:
    """Undo every recorded isles step (newest first) and drop the version table: the service's
    first revision calls it at the end of its downgrade."""
    metadata, schema, offline = _context_facts(op)
    done: dict[str, set[int]] | None
    if offline:
        done = {c: {s.number for s in _steps([c])} for c in components_of(metadata)}
    else:
        done = applied(op.get_bind(), schema)
        if done is None:
            return
    for step in reversed(STEPS):
        if step.number in done.get(step.component, set()):
            step.downgrade(op)
    op.drop_table(VERSION_TABLE, schema=schema)
