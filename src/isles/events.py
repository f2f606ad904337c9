"""Events: typed payloads, the CloudEvents 1.0 envelope, and the registry of event types.

A producer declares what it publishes::

    class PartUpdated(Event, type="mes.material.part.updated", key="part_id", version=1):
        part_id: str
        part_number: str

A consumer declares what it reads with its own model (a tolerant reader: unknown fields are
ignored), because a service's code never imports another service's::

    class PartRenamed(Payload):
        part_id: str
        part_number: str

On the wire the payload is camelCase JSON (``partId``) like the seeds', wrapped in a CloudEvents
envelope whose extensions carry ``partitionkey`` (entity id), ``entityversion`` (monotonic per
entity), ``traceparent`` (W3C trace context) and ``dataversion`` (the type's schema version).

When a type's shape changes, the producer declares a new version with an upcaster from the one
before, so events already written (the retained outbox, dead letters, a producer not yet
upgraded) still reach every consumer in the current shape::

    class PartUpdated(Event, type="mes.material.part.updated", key="part_id", version=2):
        part_id: str
        part_number: str

        @upcaster(from_version=1)
        def _number_renamed(data: dict[str, Any]) -> dict[str, Any]:
            data["partNumber"] = data.pop("number")  # v1 called it "number"
            return data

An upcaster works on the JSON data as it is on the wire (camelCase keys) and returns the data
of the next version; :meth:`EventRegistry.upcast` chains them (v1 -> v2 -> v3).
"""
from __future__ import annotations

import builtins
import contextvars
import re
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Iterable, Mapping

import orjson
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from isles.errors import ConfigurationError, InvalidPayload, UnknownEventType

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,}$")
_JSON = JSONFormat()
#: the attributes isles writes (see Envelope.attributes); events with others are read by the package
_PLAIN_ATTRIBUTES = frozenset({"id", "source", "type", "specversion", "time", "datacontenttype", "subject",
                               "partitionkey", "entityversion", "traceparent", "dataversion", "sequence"})

#: The trace context of the event being handled, so events published while handling it join its trace.
current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("isles_traceparent", default=None)


def new_traceparent(parent: str | None = None) -> str:
    """A W3C ``traceparent``: a child span of ``parent`` when given, else a new trace."""
    trace_id = parent.split("-")[1] if parent and parent.count("-") == 3 else secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


class Payload(BaseModel):
    """A consumer-side view of an event's data: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


Upcast = Callable[[dict[str, Any]], dict[str, Any]]
_UPCAST_FROM = "__isles_upcast_from__"


def upcaster(*, from_version: int) -> Callable[[Upcast], Upcast]:
    """Mark a function in an :class:`Event` body as the step from ``from_version`` to the next.

    The function takes the event's JSON data (a dict, camelCase keys) of ``from_version`` and
    returns the data of ``from_version + 1``; it may change the dict it is given. It is a plain
    function of the data (no ``self``): the event it upcasts is not valid for the model yet.
    """
    if isinstance(from_version, bool) or not isinstance(from_version, int) or from_version < 1:
        raise ConfigurationError(f"@upcaster(from_version={from_version!r})",
                                 fix="name the version it reads as a whole number from 1")

    def mark(fn: Upcast) -> Upcast:
        setattr(fn, _UPCAST_FROM, from_version)
        return staticmethod(fn)  # callable on the class, ignored by Pydantic
    return mark


def _declared_upcasters(cls: type, version: int) -> dict[int, Upcast]:
    """The upcasters in ``cls``'s body (and its bases'), by the version each reads."""
    inherited: Mapping[int, Upcast] = getattr(cls, "event_upcasters", {})
    found = {step: fn for step, fn in inherited.items() if step < version}
    own: set[int] = set()
    for name, member in vars(cls).items():
        fn = member.__func__ if isinstance(member, staticmethod) else member
        step = getattr(fn, _UPCAST_FROM, None)
        if step is None:
            continue
        if step >= version:
            raise ConfigurationError(
                f"event {cls.__name__} (version {version}) declares an upcaster {name} from version {step}",
                fix=f"an upcaster reads an older version: declare version={step + 1} or more, "
                    f"or correct from_version (1 to {version - 1})")
        if step in own:
            raise ConfigurationError(f"event {cls.__name__} declares two upcasters from version {step}",
                                     fix="keep one function per step (v1 -> v2, v2 -> v3, ...)")
        own.add(step)
        found[step] = fn
    return found


class Event(BaseModel):
    """A published event's data. Subclasses declare ``type``, ``key`` and ``version``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")

    event_type: ClassVar[str] = ""
    event_version: ClassVar[int] = 1
    key_field: ClassVar[str | None] = None
    #: version -> function giving the data of the next version (see :func:`upcaster`)
    event_upcasters: ClassVar[Mapping[int, Upcast]] = {}

    def __init_subclass__(cls, *, type: str | None = None, version: int = 1, key: str | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if type is not None:
            if not _TYPE_NAME.match(type):
                raise ConfigurationError(
                    f"event {cls.__name__} has type {type!r}, which is not of the form system.service.entity.action",
                    fix="name it like 'mes.material.part.updated' (lower case, dot separated)")
            cls.event_type = type
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigurationError(f"event {cls.__name__} has version={version!r}",
                                     fix="versions are whole numbers from 1, raised by one per change of shape")
        cls.event_version = version
        cls.event_upcasters = _declared_upcasters(cls, version)
        if key is not None:
            cls.key_field = key

    def key(self) -> str | None:
        """The entity id this event is about (its partition key), from the declared key field."""
        return None if self.key_field is None else str(getattr(self, self.key_field))

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self, by_alias=True)

    def envelope_id(self) -> str | None:
        """The id its envelope must have, if it is fixed already (a command's, see isles.messaging)."""
        return None


@dataclass(slots=True)
class Envelope:
    """A CloudEvents 1.0 event as isles moves it: attributes plus the raw JSON data."""

    id: str
    source: str
    type: str
    data: bytes
    partitionkey: str
    entityversion: int | None = None
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    subject: str | None = None
    traceparent: str | None = None
    dataversion: int = 1
    datacontenttype: str = "application/json"
    specversion: str = "1.0"
    #: its position in the source's outbox (the row id), set by the relay; projections checkpoint on it
    #: (CloudEvents ``sequence`` extension)
    sequence: int | None = None

    @classmethod
    def wrap(cls, event: Event, *, source: str, key: str, version: int | None,
             traceparent: str | None = None) -> "Envelope":
        return cls(id=event.envelope_id() or str(uuid.uuid4()), source=source, type=event.event_type,
                   data=event.to_json(),
                   partitionkey=key, entityversion=version, subject=key,
                   traceparent=traceparent or new_traceparent(current_traceparent.get()),
                   dataversion=event.event_version)

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.data)
        return parsed

    # -- CloudEvents conversions (the `cloudevents` package owns the wire formats) -------------
    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "id": self.id, "source": self.source, "type": self.type, "specversion": self.specversion,
            "time": self.time, "datacontenttype": self.datacontenttype,
            "partitionkey": self.partitionkey, "dataversion": self.dataversion,
        }
        if self.subject is not None:
            attrs["subject"] = self.subject
        if self.entityversion is not None:
            attrs["entityversion"] = self.entityversion
        if self.traceparent is not None:
            attrs["traceparent"] = self.traceparent
        if self.sequence is not None:
            attrs["sequence"] = str(self.sequence)
        return attrs

    def to_cloudevent(self, *, parsed: bool = False) -> CloudEvent:
        """The event for the cloudevents bindings; ``parsed`` gives JSON data as an object
        (structured JSON) instead of bytes (binary content modes, e.g. Kafka headers + value)."""
        return CloudEvent(self.attributes(), orjson.loads(self.data) if parsed else self.data)

    @classmethod
    def from_cloudevent(cls, event: BaseCloudEvent) -> "Envelope":
        attrs = event.get_attributes()
        data = event.get_data()
        if isinstance(data, (dict, list)):
            data = orjson.dumps(data)
        elif isinstance(data, str):
            data = data.encode()
        missing = [a for a in ("partitionkey",) if attrs.get(a) in (None, "")]
        if missing:
            raise InvalidPayload(f"event {attrs.get('id')} of type {attrs.get('type')} has no {missing[0]} extension",
                                 fix="publish it through isles, which sets partitionkey to the entity id")
        version = attrs.get("entityversion")
        return cls(
            id=str(attrs["id"]), source=str(attrs["source"]), type=str(attrs["type"]), data=data or b"null",
            partitionkey=str(attrs["partitionkey"]),
            entityversion=None if version in (None, "") else int(version),
            time=attrs.get("time") or datetime.now(timezone.utc), subject=attrs.get("subject"),
            traceparent=attrs.get("traceparent"), dataversion=int(attrs.get("dataversion") or 1),
            datacontenttype=attrs.get("datacontenttype") or "application/json",
            sequence=_sequence(attrs.get("sequence")),
        )

    def to_structured(self) -> bytes:
        """CloudEvents JSON (structured mode).

        Written directly with orjson, the data embedded as the JSON it already is: the relay calls
        this once per event, and going through ``CloudEvent`` and the stdlib encoder cost about
        ten times as much. ``tests/isles/test_events.py`` holds it to the ``cloudevents`` package's
        own reading and writing of the same event.
        """
        attrs = self.attributes()  # orjson writes "time" as rfc3339() does (UTC as "Z")
        attrs["data"] = orjson.Fragment(self.data)
        return orjson.dumps(attrs, option=orjson.OPT_UTC_Z)

    @classmethod
    def from_structured(cls, raw: bytes) -> "Envelope":
        """Read CloudEvents JSON (structured mode).

        What isles writes is read directly (a consumer reads every event: the generic path cost
        about 25 us an event); anything else goes through the ``cloudevents`` package, which
        also says what is wrong. ``tests/isles/test_events.py`` holds the two paths equal.
        """
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if type(parsed) is dict and "data_base64" not in parsed and type(parsed.get("data")) in (dict, list):
            plain = cls.from_plain_attributes(parsed, orjson.dumps(parsed["data"]), ignore=("data",))
            if plain is not None:
                return plain
        return cls.from_cloudevent(_JSON.read(CloudEvent, raw))

    @classmethod
    def from_plain_attributes(cls, attrs: dict[str, Any], data: bytes, *,
                              ignore: tuple[str, ...] = ()) -> "Envelope | None":
        """The envelope for attributes in exactly the shape isles writes them, else None.

        Values may be JSON types or header strings. None means "let the ``cloudevents`` package
        read it": an unknown attribute, another spec version or content type, a missing or odd
        value.
        """
        try:
            if attrs["specversion"] != "1.0" or not all(k in _PLAIN_ATTRIBUTES or k in ignore for k in attrs):
                return None
            text = [attrs[k] for k in ("id", "source", "type", "partitionkey", "time")]
            optional = [attrs.get(k) for k in ("subject", "traceparent")]
            if not all(type(v) is str and v for v in text) or not all(v is None or type(v) is str for v in optional):
                return None
            content_type = attrs.get("datacontenttype", "application/json")
            moment = datetime.fromisoformat(attrs["time"])
            if content_type != "application/json" or moment.tzinfo is None:
                return None
            version, dataversion = attrs.get("entityversion"), attrs.get("dataversion", 1)
            if not all(type(v) in (int, str) for v in (dataversion, *([version] if version is not None else []))):
                return None
            return cls(id=attrs["id"], source=attrs["source"], type=attrs["type"], data=data or b"null",
                       partitionkey=attrs["partitionkey"],
                       entityversion=None if version in (None, "") else int(version),
                       time=moment, subject=optional[0], traceparent=optional[1], dataversion=int(dataversion or 1),
                       datacontenttype=content_type, sequence=_sequence(attrs.get("sequence")))
        except (KeyError, ValueError, TypeError):
            return None

    def with_id(self, new_id: str) -> "Envelope":
        return replace(self, id=new_id)


def _sequence(value: Any) -> int | None:
    """The ``sequence`` extension (a string on the wire) as the outbox position."""
    return None if value in (None, "") else int(value)


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    model: builtins.type[Event]  # `type` is the field above here
    service: str


class EventRegistry:
    """Every event type a system's services publish, with its schema version and owner."""

    def __init__(self) -> None:
        self._specs: dict[str, EventSpec] = {}

    def register(self, service: str, model: type[Event]) -> None:
        if not (isinstance(model, type) and issubclass(model, Event) and model.event_type):
            raise ConfigurationError(f"{model!r} in publishes= is not an Event subclass with a type",
                                     service=service,
                                     fix="declare it as class X(Event, type='system.service.entity.action')")
        existing = self._specs.get(model.event_type)
        if existing and existing.model is not model:
            raise ConfigurationError(
                f"event type {model.event_type!r} is declared twice (by '{existing.service}' and '{service}')",
                service=service, fix="give each event type exactly one owning service")
        self._specs[model.event_type] = EventSpec(model.event_type, model.event_version, model, service)

    def get(self, type_name: str) -> EventSpec | None:
        return self._specs.get(type_name)

    def require(self, type_name: str, *, service: str) -> EventSpec:
        spec = self._specs.get(type_name)
        if spec is None:
            known = ", ".join(sorted(self._specs)) or "none"
            raise UnknownEventType(f"event type {type_name!r} is not published by any service of the system",
                                   service=service,
                                   fix=f"check the spelling; known types: {known}")
        return spec

    def types(self) -> Iterable[str]:
        return self._specs.keys()

    def upcast(self, envelope: Envelope, *, service: str | None = None) -> Envelope:
        """``envelope`` with its data in the current version of its type, for a consumer.

        Consumers call this once per delivered event, so handlers and replicas only ever see the
        current shape. An event of a type not known here, or already current, is returned as
        is (the common case costs one dict lookup). An older one goes through the type's
        upcasters; one newer than this system knows, or that cannot be upcast, is an
        :class:`InvalidPayload` (the consumer dead-letters it with the message).
        """
        spec = self._specs.get(envelope.type)
        if spec is None or envelope.dataversion == spec.version:
            return envelope
        return _upcast(spec, envelope, service)

    def __contains__(self, type_name: str) -> bool:
        return type_name in self._specs


def _upcast(spec: EventSpec, envelope: Envelope, service: str | None) -> Envelope:
    """Chain ``spec``'s upcasters from the envelope's data version to the current one."""
    model, have, want = spec.model, envelope.dataversion, spec.version
    label = f"event {envelope.id} ({envelope.type}) has data version {have}"
    if have > want:
        raise InvalidPayload(
            f"{label}, newer than version {want} that this system knows ({model.__name__} of service "
            f"'{spec.service}')", service=service,
            fix=f"deploy this service with {model.__name__} at version {have} (the producer's new declaration and "
                "its upcasters), then `isles dlq retry` the dead letter")
    data = envelope.json()
    for step in range(max(have, 1), want):
        fn = model.event_upcasters.get(step)
        if fn is None:
            raise InvalidPayload(f"{label}, and {model.__name__} (version {want}) has no upcaster from version {step}",
                                 service=service,
                                 fix=f"add `@upcaster(from_version={step})` to {model.__name__} in service "
                                     f"'{spec.service}', then `isles dlq retry` the dead letter")
        if not isinstance(data, dict):
            raise InvalidPayload(f"{label} whose data is not a JSON object", service=service,
                                 fix="fix the producer; then `isles dlq retry` the dead letter")
        try:
            data = fn(data)
        except Exception as exc:  # noqa: BLE001 - any failure of producer code becomes a dead letter
            raise InvalidPayload(f"{label}; upcaster {model.__name__}.{fn.__name__} (version {step} -> {step + 1}) "
                                 f"failed: {type(exc).__name__}: {exc}", service=service,
                                 fix="fix the upcaster; then `isles dlq retry` the dead letter") from None
    try:
        current = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(f"{label}; upcast to version {want} it does not match {model.__name__}: "
                             f"{_problems(exc)}", service=service,
                             fix=f"make {model.__name__}'s upcasters return valid version {want} data "
                                 "(camelCase keys, every required field); then `isles dlq retry` the dead letter"
                             ) from None
    return replace(envelope, data=current.to_json(), dataversion=want)


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5])


def rfc3339(moment: datetime) -> str:
    """A timestamp as CloudEvents writes it: ISO 8601, UTC as ``Z``."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def decode(model: type[BaseModel], envelope: Envelope, *, service: str) -> BaseModel:
    """Validate an envelope's data into ``model``; a mismatch is an :class:`InvalidPayload`."""
    try:
        return model.model_validate_json(envelope.data)
    except ValidationError as exc:
        raise InvalidPayload(
            f"event {envelope.id} ({envelope.type}) has data that does not match {model.__name__}: {_problems(exc)}",
            service=service,
            fix="fix the producer, or widen the consumer's model; then `isles dlq retry` the dead letter",
        ) from None
