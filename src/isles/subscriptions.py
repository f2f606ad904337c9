"""What a service consumes, declared: subscriptions and the ``Handlers`` decorator.

Declarations only; the :class:`isles.consumer.Consumer` runs them, and a System checks them
against what the other services publish.
"""
from __future__ import annotations

import builtins
import inspect
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pydantic import BaseModel

from isles.errors import ConfigurationError
from isles.events import Envelope, decode

#: ``fn(payload, uow)``: ``uow`` is the service's UnitOfWork, or for a projection's handler the
#: ProjectionUow that stands in for it (isles.projections), hence Any.
HandlerFn = Callable[[Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """``fn(payload, uow)`` runs for events of ``type``, with the data validated into ``model``."""

    type: str
    model: builtins.type[BaseModel] | None  # (the field ``type`` above shadows the builtin here)
    fn: HandlerFn
    name: str = ""
    #: an optional subscription is dropped (not refused) when no service of the system publishes its type
    optional: bool = False
    #: ``(envelope, dialect, gate, prefix) -> [(statement, params)] | None``: the writes ``fn``
    #: would make, each applied only where ``gate`` holds, so that a consumer may send them with
    #: the inbox row in one statement (replicas; see :mod:`isles.consumer`)
    gated_writes: Callable[[Envelope, Any, Any, str], list[tuple[Any, dict[str, Any]]] | None] | None = None
    #: ``fn`` does not touch the database and running it again for an event already handled
    #: changes nothing (version-guarded cache writes), so it may run before the inbox has decided
    repeatable: bool = False

    def parse(self, envelope: Envelope, service: str) -> Any:
        return envelope if self.model is None else decode(self.model, envelope, service=service)


class Handlers:
    """A service's event handlers, declared with a decorator::

        handlers = Handlers()

        @handlers.on("mes.material.part.deleted")
        async def part_deleted(event: PartDeleted, uow: UnitOfWork) -> None: ...

    The payload model is taken from the first parameter's annotation (a Pydantic model);
    annotate it ``Envelope`` to receive the raw envelope.
    """

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []

    def include(self, subscriptions: "list[Subscription]") -> None:
        """Add ready-made subscriptions (e.g. a cache that follows an owner's events)."""
        self.subscriptions.extend(subscriptions)

    def on(self, type_name: str, *, model: type[BaseModel] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        def register(fn: HandlerFn) -> HandlerFn:
            if not inspect.iscoroutinefunction(fn):
                raise ConfigurationError(f"handler {fn.__qualname__} for {type_name!r} is not `async def`",
                                         fix="declare it as `async def handler(event, uow)`")
            chosen = model if model is not None else _annotated_model(fn)
            self.subscriptions.append(Subscription(type_name, chosen, fn, fn.__qualname__))
            return fn
        return register


def _annotated_model(fn: HandlerFn) -> type[BaseModel] | None:
    params = list(inspect.signature(fn, eval_str=True).parameters.values())
    annotation = params[0].annotation if params else inspect.Parameter.empty
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if annotation is Envelope or annotation is inspect.Parameter.empty:
        return None
    raise ConfigurationError(f"handler {fn.__qualname__}: first parameter is annotated {annotation!r}",
                             fix="annotate it with a Pydantic model (isles.Payload subclass) or isles.Envelope")
