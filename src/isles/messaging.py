"""Commands between services: a message addressed to one service, answered by a reply event.

A command is declared like an event, naming the service that carries it out::

    class ReserveInventory(Command, type="erp.inventory.reserve", target="inventory"):
        order_id: str
        quantity: int

The target declares one handler per command; it runs in the target's own unit of work, exactly
once (the target's inbox), and answers with a :class:`Reply`::

    commands = CommandHandlers()

    @commands.handle(ReserveInventory)
    async def reserve(cmd: ReserveInventory, uow: UnitOfWork) -> Reply:
        if not enough(cmd):
            return Reply.failed("out of stock")
        uow.add(Reservation(order_id=cmd.order_id, quantity=cmd.quantity))
        return Reply.succeeded(reservation_id="...")

    inventory = Service("inventory", metadata=..., commands=commands)

Any service of the system sends one with ``uow.send(ReserveInventory(...))``: an outbox row like
an event's, committed with the sender's change. Why commands ride the outbox, relay and transports
of events rather than a channel of their own: "nothing sent that did not commit, nothing committed
that is lost" then holds for them with no new machinery, on every transport.

**Routing.** A command is published on its target's *command channel*, topic
``<system>.<target>.commands``, which only the target's consumer group reads; its events stay on
``<system>.<service>.events``. The relay picks the topic by the row's type (:mod:`isles.routing`),
from a table the System builds from the declarations: no outbox column, so no change to the
outbox's schema, and a row's destination can never disagree with the command's declaration.

**Replies.** The handler's reply is an event of the target, type ``<command type>.replied``
(:class:`Replied`: command id, command type, requester, ok, reason, result), keyed like the
command and published from the handler's unit of work, so it commits with the handler's effect.
The requester (a saga) correlates it by the command id. Replies are facts about the target
(published on its events topic), so anyone may follow them; a requester ignores replies to
commands it did not send.

Unknown commands (no service of the system handles the type) and payloads that do not match the
command's model are dead-lettered by the target's consumer, like events.
"""
from __future__ import annotations

import inspect
import types
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, PrivateAttr

from isles.config import validate_service_name
from isles.errors import ConfigurationError, EventError
from isles.events import Event, EventRegistry
from isles.subscriptions import Subscription

if TYPE_CHECKING:
    from isles.unit_of_work import UnitOfWork

#: the suffix of a command's reply type
REPLIED = "replied"


class Command(Event):
    """A request to one service. Subclasses declare ``type`` and ``target`` (the service's name).

    Each instance has its own ``message_id`` from the moment it is made: the envelope's id, the
    correlation id of its reply. A sender (a saga) records it in the same transaction that sends
    the command.
    """

    command_target: ClassVar[str] = ""
    _message_id: str = PrivateAttr(default_factory=lambda: str(uuid.uuid4()))

    def __init_subclass__(cls, *, target: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if target is not None:
            try:
                validate_service_name(target)
            except ConfigurationError as exc:
                raise ConfigurationError(f"command {cls.__name__} has target={target!r}: {exc.problem}",
                                         fix="name the service that carries it out, e.g. target='inventory'") from None
            cls.command_target = target

    @property
    def message_id(self) -> str:
        return self._message_id

    def envelope_id(self) -> str | None:
        return self._message_id

    def sent_in(self, uow: UnitOfWork, *, key: str | None = None, version: int | None = None) -> str:
        """What ``uow.send(command)`` does: see :func:`send`."""
        return send(uow, self, key=key, version=version)


class Replied(Event):
    """The reply event to a command (see :func:`reply_model` for one command's type)."""

    command_id: str
    command_type: str
    #: the CloudEvents source of the service that sent the command
    requester: str
    ok: bool
    reason: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)


_REPLY_MODELS: dict[type[Command], type[Replied]] = {}


def reply_type(command: type[Command]) -> str:
    return f"{command.event_type}.{REPLIED}"


def reply_model(command: type[Command]) -> type[Replied]:
    """The reply event class of ``command`` (type ``<command type>.replied``), made once."""
    model = _REPLY_MODELS.get(command)
    if model is None:
        _check_command(command)
        model = types.new_class(f"{command.__name__}Replied", (Replied,), {"type": reply_type(command)})
        model.__module__ = command.__module__
        _REPLY_MODELS[command] = model
    return model


@dataclass(frozen=True)
class Reply:
    """What a command handler answers: succeeded (with a result) or failed (with a reason).

    A failed reply commits like a succeeded one (the handler decides what it changed); a
    handler that *raises* is retried and then dead-lettered, like an event handler.
    """

    ok: bool
    reason: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def succeeded(cls, **result: Any) -> Reply:
        return cls(True, None, result)

    @classmethod
    def failed(cls, reason: str, **result: Any) -> Reply:
        return cls(False, reason, result)


CommandFn = Callable[[Any, "UnitOfWork"], Awaitable["Reply | None"]]


def _check_command(command: Any) -> None:
    if not (isinstance(command, type) and issubclass(command, Command) and command.event_type
            and command.command_target):
        raise ConfigurationError(f"{command!r} is not a Command subclass with a type and a target",
                                 fix="declare it as class X(Command, type='system.service.action', target='service')")


class CommandHandlers:
    """The commands a service carries out, declared with ``@commands.handle(CommandType)``."""

    def __init__(self) -> None:
        self.handlers: dict[type[Command], CommandFn] = {}

    def handle(self, command: type[Command]) -> Callable[[CommandFn], CommandFn]:
        _check_command(command)

        def register(fn: CommandFn) -> CommandFn:
            if not inspect.iscoroutinefunction(fn):
                raise ConfigurationError(f"command handler {fn.__qualname__} for {command.event_type!r} is not "
                                         "`async def`", fix="declare it as `async def handler(command, uow) -> Reply`")
            if command in self.handlers:
                raise ConfigurationError(f"command {command.event_type!r} has two handlers",
                                         fix="keep one handler per command type")
            self.handlers[command] = fn
            return fn
        return register

    @property
    def types(self) -> list[type[Command]]:
        return list(self.handlers)

    def subscriptions(self, service: str) -> list[Subscription]:
        subs = []
        for command, fn in self.handlers.items():
            if command.command_target != service:
                raise ConfigurationError(
                    f"handles command {command.event_type!r}, whose target is '{command.command_target}'",
                    service=service, fix=f"declare the handler in service '{command.command_target}', "
                                         f"or set target='{service}' on {command.__name__}")
            subs.append(Subscription(command.event_type, command, _answering(command, fn), fn.__qualname__))
        return subs


def _answering(command: type[Command], fn: CommandFn) -> Callable[[Any, UnitOfWork], Awaitable[None]]:
    """The subscription function: run ``fn``, publish its reply in the same unit of work."""
    model = reply_model(command)

    async def run(cmd: Any, uow: UnitOfWork) -> None:
        envelope = uow.incoming
        assert envelope is not None  # set by the consumer while handlers run
        reply = await fn(cmd, uow)
        if reply is None:
            reply = Reply.succeeded()
        if not isinstance(reply, Reply):
            raise EventError(f"command handler {fn.__qualname__} returned {reply!r}", service=uow.service,
                             fix="return Reply.succeeded(...) or Reply.failed('reason') (or None for success)")
        uow.publish(model(command_id=envelope.id, command_type=envelope.type, requester=envelope.source,
                          ok=reply.ok, reason=reply.reason, result=dict(reply.result)),
                    key=envelope.partitionkey, version=envelope.entityversion or 1)
    run.__qualname__ = fn.__qualname__
    return run


def send(uow: UnitOfWork, command: Command, *, key: str | None = None, version: int | None = None) -> str:
    """Write ``command`` to ``uow``'s outbox (routed to its target's channel); return its id.

    The partition key is ``key``, else the command's declared key field, else its id: commands of
    one key reach the target in the order they were sent.
    """
    if not isinstance(command, Command) or not command.command_target:
        raise EventError(f"{command!r} is not a Command with a declared type and target", service=uow.service,
                         fix="declare it as class X(Command, type='system.service.action', target='service')")
    if command.event_type not in uow.runtime.routes:
        raise EventError(f"sends command {command.event_type!r}, which no service of the system handles",
                         service=uow.service,
                         fix=f"declare `@commands.handle({type(command).__name__})` in service "
                             f"'{command.command_target}' and add that service to the system")
    uow.publish(command, key=key or command.key() or command.message_id, version=version or 1)
    return command.message_id


# -- what the System wires -------------------------------------------------------------------------
def command_topic(system: str, service: str) -> str:
    """The command channel of ``service``: only its consumer group reads it."""
    return f"{system}.{service}.commands"


def register(registry: EventRegistry, services: Iterable[Any]) -> None:
    """Register every handled command (owned by its target) and its reply event."""
    for service in services:
        for command in service.commands.types:
            service.commands.subscriptions(service.name)  # refuses a handler in the wrong service
            registry.register(service.name, command)
            registry.register(service.name, reply_model(command))


def routes(system_name: str, registry: EventRegistry) -> dict[str, str]:
    """Command type -> its target's command topic, for every handled command."""
    return {t: command_topic(system_name, spec.service) for t in registry.types()
            if issubclass((spec := registry.require(t, service=system_name)).model, Command)}


def sendable(registry: EventRegistry, service: Any) -> frozenset[str]:
    """What ``service`` may write to its outbox beyond its events: any command, its own replies."""
    commands = {t for t in registry.types() if issubclass(registry.require(t, service=service.name).model, Command)}
    replies = {reply_type(c) for c in service.commands.types}
    return frozenset(commands | replies)


def topics_for(system: Any, service: str, subscriptions: Iterable[Subscription]) -> list[str]:
    """The topics ``service``'s consumer group reads: owners' events topics, its own command channel."""
    topics = set()
    for sub in subscriptions:
        spec = system.registry.get(sub.type)
        if spec is None or getattr(spec.model, "internal", False):
            continue
        if issubclass(spec.model, Command):
            topics.add(command_topic(system.name, spec.service))
        else:
            topics.add(system.topic(spec.service))
    return sorted(topics)


def wire_runtime(system: Any, service: Any, runtime: Any) -> None:
    """Give a started service's runtime the command routes and what it may send."""
    runtime.routes = routes(system.name, system.registry)
    runtime.publishes = runtime.publishes | sendable(system.registry, service)


__all__ = ["Command", "CommandHandlers", "Replied", "Reply", "command_topic", "reply_model", "reply_type", "send"]
