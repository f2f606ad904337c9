"""Event contracts: what consumers read is checked against what producers publish.

A consumer never imports the producer's event class (a service imports only ``isles`` and its
own modules), so nothing but this check notices when the two drift apart: a renamed field, a
dropped one, a string where a consumer reads a number. Left alone, such a mismatch shows up in
production as dead letters, or worse, as a replicated column that silently stops following.
``System(...)`` therefore calls :func:`check_contracts` when it is built, and every handler's
payload model and every :class:`~isles.Replica` field is compared with the *current* version of
the publishing service's :class:`~isles.Event`.

The comparison is on the JSON the consumer receives (the producer's model serialized, camelCase
keys; the consumer's model validating it, as Pydantic does in lax mode):

- a field the consumer requires must be published under its wire name (``partNumber``; a
  consumer field ``part_number`` of an :class:`~isles.Payload` reads that name);
- its JSON type must be one the consumer accepts: ``integer`` is a ``number``, a ``Decimal`` is
  sent as a string a ``float`` or ``Decimal`` reads, a ``UUID`` or ``datetime`` is a string a
  ``str`` reads; but a ``str`` never reads a number, an ``int`` never a string or fraction;
- if the producer may send ``null`` (``Optional``), the consumer must accept ``null`` too: the
  field is sent as ``null``, not left out, so even a consumer field with a default breaks;
- extra producer fields are fine (tolerant reader), so are consumer fields with defaults the
  producer lacks; formats, patterns and enums are only compared when both sides list values.

Handlers that take the raw :class:`~isles.Envelope` are not checked. This module knows services,
handlers and replicas only by the attributes it reads (see the protocols), so it imports nothing
but events and errors.
"""
from __future__ import annotations

import builtins
import datetime
import decimal
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pydantic import AliasChoices, BaseModel
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from isles.errors import ConfigurationError
from isles.events import EventRegistry, EventSpec

Schema = Mapping[str, Any]


# -- what the check reads of services (duck-typed: no import of Service, Replica, Subscription) --------
class SubscriptionLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def model(self) -> builtins.type[BaseModel] | None: ...  # `type` is the property above
    @property
    def name(self) -> str: ...


class ReplicaLike(Protocol):
    table: Any  # a SQLAlchemy Table
    source: str
    fields: Mapping[str, str]
    actions: tuple[str, ...]
    on_deleted: str


class ServiceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def subscriptions(self) -> Sequence[SubscriptionLike]: ...
    @property
    def replicas(self) -> Sequence[ReplicaLike]: ...


@dataclass(frozen=True)
class Mismatch:
    """One consumer reading something its producer does not publish."""

    service: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"service '{self.service}': {self.problem}\n  fix: {self.fix}"


def check_contracts(services: Iterable[ServiceLike], registry: EventRegistry) -> None:
    """Raise a :class:`ConfigurationError` naming every consumer that reads what is not published."""
    found = find_mismatches(services, registry)
    if len(found) == 1:
        raise ConfigurationError(found[0].problem, service=found[0].service, fix=found[0].fix)
    if found:
        raise ConfigurationError(f"{len(found)} consumers read what their producers do not publish:\n"
                                 + "\n".join(str(m) for m in found),
                                 fix="see each problem's fix above")


def find_mismatches(services: Iterable[ServiceLike], registry: EventRegistry) -> list[Mismatch]:
    """Every mismatch between consumers and the current version of their producers' events."""
    found: list[Mismatch] = []
    for service in services:
        for sub in service.subscriptions:
            spec = registry.get(sub.type)
            if spec is not None and sub.model is not None:  # unknown types: see System._check_subscriptions
                found.extend(_handler_mismatches(service.name, sub, sub.model, spec))
        for replica in service.replicas:
            for type_name in _copying_types(replica):
                spec = registry.get(type_name)
                if spec is not None:
                    found.extend(_replica_mismatches(service.name, replica, spec))
    return found


# -- handlers ---------------------------------------------------------------------------------------------
def _handler_mismatches(service: str, sub: SubscriptionLike, model: type[BaseModel], spec: EventSpec) -> list[Mismatch]:
    wire = _Wire.of(spec.model)
    reading = _schema(model, "validation")
    consumer_props: Mapping[str, Schema] = reading.get("properties", {})
    found = []
    for name, info in model.model_fields.items():
        names = _accepted_names(model, name, info)
        schema = next((consumer_props[n] for n in names if n in consumer_props), {})
        field = f"{model.__name__}.{name}"
        published = next((n for n in names if n in wire.properties), None)
        where = f"handler {sub.name or '?'} reads field '{names[0]}' of {spec.type} ({field})"
        if published is None:
            if info.is_required():
                found.append(Mismatch(
                    service, f"{where}, which service '{spec.service}' does not publish ({wire.has})",
                    f"rename {field} to one of {spec.model.__name__}'s fields (camelCase on the wire), give it a "
                    f"default if it may be missing, or add it to {spec.model.__name__} in service '{spec.service}'"))
            continue
        produced = wire.properties[published]
        problem = _type_problem(schema, reading, produced, wire.schema)
        if problem is None:
            continue
        source = f"{spec.model.__name__}.{wire.names.get(published, published)}"
        if problem == "null":
            found.append(Mismatch(
                service, f"{where}, which does not accept null, but service '{spec.service}' may publish null "
                         f"for it ({source} is Optional)",
                f"make {field} Optional (`... | None = None`), or make {source} required in service '{spec.service}'"))
        else:
            found.append(Mismatch(
                service, f"{where} as {_describe(schema, reading)}, but service '{spec.service}' publishes it as "
                         f"{_describe(produced, wire.schema)} ({source})",
                f"declare {field} with a type that reads {_describe(produced, wire.schema)}, or change {source} "
                f"in service '{spec.service}' (a new event version with an upcaster)"))
    return found


def _accepted_names(model: type[BaseModel], name: str, info: Any) -> list[str]:
    """The keys ``model`` reads a field from, the one its JSON schema shows first."""
    names: list[str] = []
    alias = info.validation_alias
    if isinstance(alias, str):
        names.append(alias)
    elif isinstance(alias, AliasChoices):
        names.extend(c for c in alias.choices if isinstance(c, str))
    elif info.alias:
        names.append(info.alias)
    config = model.model_config
    if not names or config.get("populate_by_name") or config.get("validate_by_name"):
        names.append(name)
    return list(dict.fromkeys(names))


# -- replicas -------------------------------------------------------------------------------------------
def _copying_types(replica: ReplicaLike) -> list[str]:
    """The event types a replica copies fields from (``.deleted`` only if listed in its actions and
    it does not delete the row on it)."""
    return [f"{replica.source}.{action}" for action in replica.actions
            if not (action == "deleted" and replica.on_deleted == "delete")]


def _replica_mismatches(service: str, replica: ReplicaLike, spec: EventSpec) -> list[Mismatch]:
    wire = _Wire.of(spec.model)
    found = []
    for column_name, field_name in replica.fields.items():
        label = f"replica {replica.table.name}.{column_name}"
        published = next((n for n in (field_name, to_camel(field_name)) if n in wire.properties), None)
        if published is None:
            found.append(Mismatch(
                service, f"{label} reads field '{field_name}' of {spec.type}, which service '{spec.service}' "
                         f"does not publish ({wire.has})",
                f"map {column_name!r} to one of {spec.model.__name__}'s fields in the Replica's fields=, or add "
                f"'{to_camel(field_name)}' to {spec.model.__name__} in service '{spec.service}'"))
            continue
        column = replica.table.c[column_name]
        problem = _column_problem(column, wire.properties[published], wire.schema)
        if problem is None:
            continue
        source = f"{spec.model.__name__}.{wire.names.get(published, published)}"
        produced = _describe(wire.properties[published], wire.schema)
        if problem == "null":
            found.append(Mismatch(
                service, f"{label} is NOT NULL, but service '{spec.service}' may publish null for field "
                         f"'{published}' of {spec.type} ({source} is Optional)",
                f"make the column nullable, or make {source} required in service '{spec.service}'"))
        else:
            found.append(Mismatch(
                service, f"{label} ({column.type}) copies field '{published}' of {spec.type}, which service "
                         f"'{spec.service}' publishes as {produced} ({source})",
                f"give the column a type that stores {produced}, copy the field with a handler that converts "
                f"it, or change {source} in service '{spec.service}' (a new event version with an upcaster)"))
    return found


#: the JSON types a column takes as they come from the event (a replica binds them unconverted)
_COLUMN_KINDS: tuple[tuple[type, frozenset[str]], ...] = (
    (bool, frozenset({"boolean"})),  # before int: bool is an int
    (int, frozenset({"integer"})),
    (float, frozenset({"integer", "number"})),
    (decimal.Decimal, frozenset({"integer", "number", "string"})),
    (str, frozenset({"string"})),
    (uuid.UUID, frozenset({"string"})),
)


def _column_problem(column: Any, produced: Schema, defs: Schema) -> str | None:
    """"null", "type" or None (fits): can the column store what the event carries?"""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = None
    accepted = next((kinds for kind, kinds in _COLUMN_KINDS if python_type is not None
                     and isinstance(python_type, type) and issubclass(python_type, kind)), None)
    kinds = _kinds_of(produced, defs)
    if kinds is None:
        return None
    if "null" in kinds and not column.nullable:
        return "null"
    if accepted is None or python_type in (datetime.datetime, datetime.date):
        return None  # JSON, arrays, dates: the column type decides; not judged here
    return None if kinds - {"null"} <= accepted else "type"


# -- JSON schema comparison ---------------------------------------------------------------------------------
class _WireJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON schema, with Decimals sent as strings marked ``format: decimal``:
    a number-reading consumer accepts those strings, but no others."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        json_schema = super().decimal_schema(schema)
        if json_schema.get("type") == "string":
            json_schema = {**json_schema, "format": "decimal"}
        return json_schema


@cache
def _schema(model: type[BaseModel], mode: str) -> Schema:
    return model.model_json_schema(by_alias=True, mode=mode, schema_generator=_WireJsonSchema)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Wire:
    """A producer's event as it is on the wire: its JSON schema, properties and Python names."""

    schema: Schema
    properties: Mapping[str, Schema]
    names: Mapping[str, str]  # wire name -> Python field name
    has: str  # "PartUpdated has: partId, partNumber"

    @staticmethod
    @cache
    def of(model: type[BaseModel]) -> _Wire:
        schema = _schema(model, "serialization")
        properties = schema.get("properties", {})
        names = {info.serialization_alias or info.alias or name: name for name, info in model.model_fields.items()}
        return _Wire(schema, properties, names, f"{model.__name__} has: {', '.join(properties) or 'no fields'}")


def _resolve(schema: Schema, defs: Schema) -> Schema:
    """Follow ``$ref`` (and a lone ``allOf``) into ``defs``' ``$defs``."""
    for _ in range(20):
        if "$ref" in schema:
            schema = defs.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            break
    return schema


def _branches(schema: Schema, defs: Schema) -> list[Schema]:
    """The alternatives of a (possibly nested) union, each resolved."""
    schema = _resolve(schema, defs)
    union = schema.get("anyOf") or schema.get("oneOf")
    if not union:
        return [schema]
    return [branch for member in union for branch in _branches(member, defs)]


def _kinds(schema: Schema) -> frozenset[str] | None:
    """The JSON types one resolved branch allows; None when it says nothing (any value)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return frozenset({kind})
    if isinstance(kind, list):
        return frozenset(kind)
    values = schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else None
    if values is None:
        return None
    return frozenset(_json_kind(v) for v in values)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string"}.get(type(value),
                                                                "object" if isinstance(value, dict) else "array")


def _kinds_of(schema: Schema, defs: Schema) -> frozenset[str] | None:
    """Every JSON type a field may have; None when some branch allows anything."""
    kinds: set[str] = set()
    for branch in _branches(schema, defs):
        found = _kinds(branch)
        if found is None:
            return None
        kinds |= found
    return frozenset(kinds)


def _type_problem(reads: Schema, reads_defs: Schema, sends: Schema, sends_defs: Schema) -> str | None:
    """"null", "type" or None (compatible): does a consumer field read every value the producer sends?"""
    sent, read = _branches(sends, sends_defs), _branches(reads, reads_defs)
    for branch in sent:
        if not any(_reads(r, reads_defs, branch, sends_defs, 0) for r in read):
            return "null" if _kinds(branch) == frozenset({"null"}) else "type"
    return None


def _reads(reads: Schema, reads_defs: Schema, sends: Schema, sends_defs: Schema, depth: int) -> bool:
    """Whether one consumer branch reads every value of one producer branch (both resolved)."""
    read, sent = _kinds(reads), _kinds(sends)
    if read is None or sent is None or depth > 8:
        return True  # one side says nothing: not judged
    if not all(any(_kind_reads(r, s, sends) for r in read) for s in sent):
        return False
    if _values(reads) is not None and _values(sends) is not None and not _values(sends) <= _values(reads):  # type: ignore[operator]
        return False
    if "array" in sent and "array" in read:
        items_r, items_s = reads.get("items"), sends.get("items")
        if (isinstance(items_r, dict) and isinstance(items_s, dict)
                and _type_problem(items_r, reads_defs, items_s, sends_defs)):
            return False
    if "object" in sent and "object" in read:
        return _object_reads(reads, reads_defs, sends, sends_defs, depth)
    return True


def _kind_reads(read: str, sent: str, sends: Schema) -> bool:
    """Pydantic's lax JSON reading: an integer is a number; a decimal string is a number."""
    return read == sent or (read == "number" and sent == "integer") or (
        read == "number" and sent == "string" and sends.get("format") == "decimal")


def _values(schema: Schema) -> frozenset[Any] | None:
    values = schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else None
    try:
        return None if values is None else frozenset(values)
    except TypeError:  # unhashable values: not compared
        return None


def _object_reads(reads: Schema, reads_defs: Schema, sends: Schema, sends_defs: Schema, depth: int) -> bool:
    """A nested model reads a nested object: its required properties are sent, and each it finds fits."""
    read_props, sent_props = reads.get("properties"), sends.get("properties")
    if isinstance(read_props, dict) and isinstance(sent_props, dict):
        for name, schema in read_props.items():
            if name not in sent_props:
                if name in reads.get("required", ()):
                    return False
                continue
            if _type_problem(schema, reads_defs, sent_props[name], sends_defs):
                return False
        return True
    extra_r, extra_s = reads.get("additionalProperties"), sends.get("additionalProperties")
    if isinstance(extra_r, dict) and isinstance(extra_s, dict):
        return _type_problem(extra_r, reads_defs, extra_s, sends_defs) is None
    return True


def _describe(schema: Schema, defs: Schema) -> str:
    """A field's JSON type for a message: ``string``, ``integer or null``, ``array of number``."""
    words = []
    for branch in _branches(schema, defs):
        kinds = _kinds(branch)
        if kinds is None:
            words.append("any JSON value")
            continue
        for kind in sorted(kinds):
            if kind == "array" and isinstance(branch.get("items"), dict):
                words.append(f"array of {_describe(branch['items'], defs)}")
            elif kind == "string" and branch.get("format"):
                words.append(f"string ({branch['format']})")
            else:
                words.append(kind)
    return " or ".join(dict.fromkeys(words))


__all__ = ["Mismatch", "ReplicaLike", "ServiceLike", "SubscriptionLike", "check_contracts", "find_mismatches"]
