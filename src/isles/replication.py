"""Replicated fields: denormalized copies of another service's data that never go backwards.

Declared once on the consuming service::

    Replica(WorkOrder, key="part_id", source="mes.material.part",
            fields={"part_number": "partNumber", "part_name": "partName"})

reads "WorkOrder.part_number and part_name mirror Part through part_id". isles subscribes to
``mes.material.part.created`` and ``.updated``, and for each event updates every row whose
``part_id`` is the event's entity id - but only where the stored ``part_version`` is older than
the event's ``entityversion``. Replays, duplicates and reordering therefore cannot restore stale
values. With ``upsert=True`` the target is a local copy table keyed by the id, and a missing row
is inserted (a read model of the other service's entity).

The owning service declares a :class:`Snapshot` of the entity so ``isles resync`` can backfill
copies from its current state (through the same version guard).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Mapping

import orjson
from pydantic.alias_generators import to_camel
from sqlalchemy import ClauseElement, Table, bindparam, delete, func, or_, select, update
from sqlalchemy import inspect as sa_inspect

from isles.dialects.base import Dialect
from isles.errors import ConfigurationError, InvalidPayload
from isles.events import Envelope, Event
from isles.subscriptions import Subscription
from isles.unit_of_work import UnitOfWork


def _python_type(column: Any) -> Any:
    try:
        return column.type.python_type
    except NotImplementedError:
        return str


def python_defaults(table: Table, written: set[str], *, update: bool) -> dict[str, Any] | None:
    """The Python-side defaults SQLAlchemy fills for the columns of ``table`` not ``written`` by
    an INSERT (or, with ``update``, the ``onupdate`` ones of an UPDATE): a SQL expression, or a
    zero-argument callable that makes the value. None if one needs SQLAlchemy's execution
    context (a function of the context, a sequence)."""
    found: dict[str, Any] = {}
    for column in table.c:
        default = column.onupdate if update else column.default
        if column.name in written or default is None:
            continue
        arg: Any = getattr(default, "arg", None)  # a ColumnDefault's (a Sequence has none)
        if default.is_scalar:
            found[column.name] = (lambda value=arg: value)
        elif default.is_clause_element:
            found[column.name] = arg
        elif default.is_callable and hasattr(arg, "__wrapped__"):  # SQLAlchemy wrapped fn() as fn(ctx)
            found[column.name] = arg.__wrapped__
        else:
            return None
    return found


def _table_of(target: Any) -> Table:
    if isinstance(target, Table):
        return target
    try:
        table: Table = sa_inspect(target).local_table  # a mapped class
        return table
    except Exception:
        raise ConfigurationError(f"replica target {target!r} is neither a mapped class nor a Table",
                                 fix="pass the ORM model (e.g. WorkOrder) or its Table") from None


@dataclass
class Replica:
    """Columns of ``target`` that mirror fields of another service's entity; see the module doc."""

    target: Any
    key: str
    source: str
    fields: Mapping[str, str]
    version: str | None = None
    upsert: bool = False
    actions: tuple[str, ...] = ("created", "updated")
    #: on ``<source>.deleted``: "keep" the copied values, or "delete" the row (upsert copies only).
    #: To copy fields from the deleted event itself (e.g. ``isActive``), list "deleted" in ``actions``.
    on_deleted: str = "keep"
    #: follow the source only if the system has it (e.g. API tokens in a system without auth)
    optional: bool = False
    table: Table = field(init=False)
    #: built statements by (dialect, columns written): building one costs more than running it
    _statements: dict[tuple[str, tuple[str, ...]], Any] = field(init=False, default_factory=dict, repr=False)
    #: gated writes (see :meth:`gated_writes`) with the defaults each needs filled, and deletes:
    #: (gate, built) by (dialect or "delete", columns, bind prefix, the gate's id)
    _gated: dict[tuple[Any, ...], tuple[Any, Any]] = field(init=False, default_factory=dict, repr=False)
    #: per column, the names its field may have in an event (as declared, camelCase)
    _names: dict[str, tuple[str, ...]] = field(init=False, default_factory=dict, repr=False)
    _key_type: Any = field(init=False, default=str, repr=False)  # the key column's Python type
    _version_column: str = field(init=False, default="", repr=False)  # ``version``, resolved

    def __post_init__(self) -> None:
        self.table = _table_of(self.target)
        if self.version is None:
            stem = self.key[:-3] if self.key.endswith("_id") else self.key
            self.version = f"{stem}_version" if not self.upsert else "version"
        self._version_column = self.version
        missing = [c for c in (self.key, self.version, *self.fields) if c not in self.table.c]
        if missing:
            raise ConfigurationError(
                f"replica on table {self.table.name!r} names columns it does not have: {', '.join(missing)}",
                fix=f"add them to the model (the version column {self.version!r} stores the source entityversion)")
        # Worked out once: every event copied needs them.
        self._names = {column: tuple(dict.fromkeys((name, to_camel(name)))) for column, name in self.fields.items()}
        self._key_type = _python_type(self.table.c[self.key])
        if self.on_deleted not in ("keep", "delete") or (self.on_deleted == "delete" and not self.upsert):
            raise ConfigurationError(f"replica on {self.table.name!r}: on_deleted={self.on_deleted!r}",
                                     fix="use 'keep', or 'delete' together with upsert=True")

    @property
    def event_types(self) -> list[str]:
        types = [f"{self.source}.{action}" for action in self.actions]
        if self.on_deleted == "delete" and "deleted" not in self.actions:
            types.append(f"{self.source}.deleted")
        return types

    def subscriptions(self) -> list[Subscription]:
        return [Subscription(t, None, self._handle, f"replica:{self.table.name}.{self.key}", self.optional,
                             gated_writes=self.gated_writes)
                for t in self.event_types]

    def values_from(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = {}
        for column, names in self._names.items():
            for candidate in names:
                if candidate in data:
                    values[column] = data[candidate]
                    break
        return values

    async def _handle(self, envelope: Envelope, uow: UnitOfWork) -> None:
        if envelope.entityversion is None:
            raise InvalidPayload(f"event {envelope.id} ({envelope.type}) has no entityversion",
                                 service=uow.service,
                                 fix="publish it with entity= or version= so copies can be ordered")
        if self._deletes(envelope):
            await self.delete(uow, envelope.partitionkey, envelope.entityversion)
        else:  # nobody reads the row count here: let a batch of events share one executemany
            await uow.write_later(*self._write(uow.runtime.dialect, envelope.partitionkey, envelope.entityversion,
                                               envelope.json()))

    def gated_writes(self, envelope: Envelope, dialect: Dialect, gate: Any,
                     prefix: str) -> list[tuple[Any, dict[str, Any]]] | None:
        """What :meth:`_handle` writes for ``envelope``, applied only where ``gate`` holds (the
        event is new to the inbox), with bind names starting ``prefix``: for a consumer that sends
        the inbox row and every write in one statement (see :mod:`isles.consumer`). None when the
        handler must run as usual (an event without entityversion, which raises there; a column
        default that needs SQLAlchemy's execution context)."""
        if envelope.entityversion is None:
            return None
        params: dict[str, Any] = {f"{prefix}key": self._typed_key(envelope.partitionkey),
                                  f"{prefix}version": envelope.entityversion}
        if self._deletes(envelope):
            return [(self._delete_statement(prefix, gate), params)]
        values = self.values_from(envelope.json())
        built = self._gated_statement(dialect, tuple(values), gate, prefix)
        if built is None:
            return None
        statement, defaults = built
        params.update({f"{prefix}{column}": value for column, value in values.items()})
        params.update({param: make() for param, make in defaults.items()})
        return [(statement, params)]

    def _deletes(self, envelope: Envelope) -> bool:
        return self.on_deleted == "delete" and envelope.type.endswith(".deleted")

    async def apply(self, uow: UnitOfWork, key: str, version: int, data: Mapping[str, Any]) -> int:
        """Write the values if ``version`` is newer than the stored one; return rows changed."""
        result = await uow.execute(*self._write(uow.runtime.dialect, key, version, data))
        return result.rowcount or 0

    def _typed_key(self, key: str) -> Any:
        return key if self._key_type is str else self._key_type(key)

    def _write(self, dialect: Dialect, key: str, version: int, data: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        values = self.values_from(data)
        params = {f"r_{column}": value for column, value in values.items()}
        params["r_key"] = self._typed_key(key)
        params["r_version"] = version
        return self._statement(dialect, tuple(values)), params

    def _statement(self, dialect: Dialect, columns: tuple[str, ...]) -> Any:
        """The guarded write of ``columns``, with bound parameters ``r_key``, ``r_version``, ``r_<column>``."""
        stmt = self._statements.get((dialect.name, columns))
        if stmt is not None:
            return stmt
        t, (key, values, newer) = self.table, self._parts(columns, "r_")
        if self.upsert:
            stmt = (dialect.insert(t).values({self.key: key, **values})
                    .on_conflict_do_update(index_elements=[self.key], set_=values, where=newer))
        else:
            stmt = update(t).where(t.c[self.key] == key, newer).values(values)
        self._statements[(dialect.name, columns)] = stmt
        return stmt

    def _parts(self, columns: tuple[str, ...], prefix: str) -> tuple[Any, dict[str, Any], Any]:
        """The key's bound parameter, the values written (the version's among them) and the "newer" guard."""
        t, vcol = self.table, self.table.c[self._version_column]
        version = bindparam(f"{prefix}version", type_=vcol.type)
        values = {self._version_column: version, **{c: bindparam(f"{prefix}{c}", type_=t.c[c].type) for c in columns}}
        return bindparam(f"{prefix}key", type_=t.c[self.key].type), values, or_(vcol.is_(None), vcol < version)

    def _gated_statement(self, dialect: Dialect, columns: tuple[str, ...], gate: Any,
                         prefix: str) -> tuple[Any, dict[str, Callable[[], Any]]] | None:
        """The write of :meth:`_statement`, only where ``gate`` holds, and the parameters to fill
        for the Python-side defaults that SQLAlchemy does not fill in a statement inside another
        (None if one needs SQLAlchemy's execution context)."""
        cache_key = (dialect.name, columns, prefix, id(gate))
        cached = self._gated.get(cache_key)
        if cached is not None and cached[0] is gate:  # (the gate kept, so its id is not another's)
            found: tuple[Any, dict[str, Callable[[], Any]]] | None = cached[1]
            return found
        t, (key, values, newer) = self.table, self._parts(columns, prefix)
        written = {self.key, *values} if self.upsert else set(values)
        defaults = python_defaults(t, written, update=not self.upsert)
        built = None
        if defaults is not None:
            filled = {name: f"{prefix}default_{name}" for name, how in defaults.items()
                      if not isinstance(how, ClauseElement)}
            extra = {name: bindparam(filled[name], type_=t.c[name].type) if name in filled else how
                     for name, how in defaults.items()}
            if self.upsert:  # INSERT ... SELECT <the values> WHERE <gate>
                row = {self.key: key, **values, **extra}
                stmt = (dialect.insert(t).from_select(list(row), select(*row.values()).where(gate))
                        .on_conflict_do_update(index_elements=[self.key], set_=values, where=newer))
            else:
                stmt = update(t).where(t.c[self.key] == key, newer, gate).values({**values, **extra})
            built = stmt, {param: defaults[name] for name, param in filled.items()}
        self._gated[cache_key] = (gate, built)
        return built

    def _delete_statement(self, prefix: str, gate: Any = None) -> Any:
        """Delete the copy of ``<prefix>key`` unless it is newer than ``<prefix>version``; where
        ``gate`` is given, only if it holds."""
        cache_key = ("delete", (), prefix, id(gate))
        cached = self._gated.get(cache_key)
        if cached is not None and cached[0] is gate:
            return cached[1]
        t, vcol = self.table, self.table.c[self._version_column]
        version = bindparam(f"{prefix}version", type_=vcol.type)
        stmt = delete(t).where(t.c[self.key] == bindparam(f"{prefix}key", type_=t.c[self.key].type),
                               or_(vcol.is_(None), vcol <= version), *([gate] if gate is not None else []))
        self._gated[cache_key] = (gate, stmt)
        return stmt

    async def delete(self, uow: UnitOfWork, key: str, version: int) -> int:
        result = await uow.execute(self._delete_statement("r_"), {"r_key": self._typed_key(key), "r_version": version})
        return result.rowcount or 0


@dataclass
class Snapshot:
    """How the owning service describes an entity's current state for backfills.

    ``to_event(row)`` returns the event that describes ``row`` now (usually its ``.updated``
    event); its key and ``row.version`` become the snapshot's key and entityversion.
    """

    source: str
    model: Any
    to_event: Callable[[Any], Event]

    async def described(self, uow: UnitOfWork, page_size: int = 500) -> AsyncIterator[list[tuple[Any, Event]]]:
        """Every row of the model with the event that describes it now, a page at a time, in key
        order (keyset paging: each page starts after the last key of the one before)."""
        mapper = sa_inspect(self.model)
        pk = mapper.primary_key[0]
        last = None
        while True:
            query = select(self.model).order_by(pk).limit(page_size)
            if last is not None:
                query = query.where(pk > last)
            rows = list(await uow.scalars(query))
            if not rows:
                return
            yield [(row, self.to_event(row)) for row in rows]
            last = getattr(rows[-1], pk.key)

    async def pages(self, uow: UnitOfWork,
                    page_size: int = 500) -> AsyncIterator[list[tuple[str, int, dict[str, Any]]]]:
        """(key, entity version, event data) of every row, a page at a time (backfills of copies)."""
        async for page in self.described(uow, page_size):
            yield [(event.key() or str(row.id), int(row.version), orjson.loads(event.to_json()))
                   for row, event in page]

    async def count(self, uow: UnitOfWork) -> int:
        return int(await uow.scalar(select(func.count()).select_from(self.model)) or 0)
