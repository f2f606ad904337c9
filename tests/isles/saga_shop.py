"""A four-service toy system for the saga tests (seed 002's OrderSaga, small).

orders runs the saga: place the order (local), reserve inventory, authorize payment, create the
shipment, confirm (local). payment refuses amounts divisible by 3; shipping refuses quantity 5;
inventory's release can be made to fail (FAIL_RELEASE) to exercise retries and dead letters.
Every command handler appends a row to its service's ``effects`` table, blindly, so a test
counts how many times each effect was applied.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Service, System, UnitOfWork
from isles.messaging import Command, CommandHandlers, Reply
from isles.sagas import Saga, SagaInstance, Step

FAIL_RELEASE: set[str] = set()  # order ids whose release fails
PAYMENT_GATE: list[Any] = []  # an asyncio.Event here holds authorizations until it is set (a slow payment)


def _effects_model(base: type) -> type:
    class Effect(base):  # type: ignore[misc, valid-type]
        __tablename__ = "effects"
        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        order_id: Mapped[str] = mapped_column(String(64), index=True)
        kind: Mapped[str] = mapped_column(String(32))
    return Effect


# -- commands (each declared by the service that carries it out) -----------------------------------
class ReserveInventory(Command, type="sagashop.inventory.reserve", target="inventory"):
    order_id: str
    quantity: int


class ReleaseInventory(Command, type="sagashop.inventory.release", target="inventory"):
    order_id: str


class AuthorizePayment(Command, type="sagashop.payment.authorize", target="payment"):
    order_id: str
    amount: int


class VoidPayment(Command, type="sagashop.payment.void", target="payment"):
    order_id: str
    authorization: str | None = None  # unknown when the authorization timed out


class CreateShipment(Command, type="sagashop.shipping.create", target="shipping"):
    order_id: str
    quantity: int


# -- inventory ------------------------------------------------------------------------------------
class InventoryBase(DeclarativeBase):
    pass


InventoryEffect = _effects_model(InventoryBase)
inventory_commands = CommandHandlers()


@inventory_commands.handle(ReserveInventory)
async def reserve(cmd: ReserveInventory, uow: UnitOfWork) -> Reply:
    uow.add(InventoryEffect(order_id=cmd.order_id, kind="reserve"))
    return Reply.succeeded(reservation=f"r-{cmd.order_id}")


@inventory_commands.handle(ReleaseInventory)
async def release(cmd: ReleaseInventory, uow: UnitOfWork) -> Reply:
    if cmd.order_id in FAIL_RELEASE:
        return Reply.failed("the warehouse is closed")
    uow.add(InventoryEffect(order_id=cmd.order_id, kind="release"))
    return Reply.succeeded()


inventory = Service("inventory", metadata=InventoryBase.metadata, commands=inventory_commands)


# -- payment --------------------------------------------------------------------------------------
class PaymentBase(DeclarativeBase):
    pass


PaymentEffect = _effects_model(PaymentBase)
payment_commands = CommandHandlers()


@payment_commands.handle(AuthorizePayment)
async def authorize(cmd: AuthorizePayment, uow: UnitOfWork) -> Reply:
    for gate in PAYMENT_GATE:
        await gate.wait()
    if cmd.amount % 3 == 0:
        return Reply.failed("card refused")
    uow.add(PaymentEffect(order_id=cmd.order_id, kind="authorize"))
    return Reply.succeeded(authorization=f"a-{cmd.order_id}")


@payment_commands.handle(VoidPayment)
async def void(cmd: VoidPayment, uow: UnitOfWork) -> Reply:
    uow.add(PaymentEffect(order_id=cmd.order_id, kind="void"))
    return Reply.succeeded()


payment = Service("payment", metadata=PaymentBase.metadata, commands=payment_commands)


# -- shipping -------------------------------------------------------------------------------------
class ShippingBase(DeclarativeBase):
    pass


ShippingEffect = _effects_model(ShippingBase)
shipping_commands = CommandHandlers()


@shipping_commands.handle(CreateShipment)
async def ship(cmd: CreateShipment, uow: UnitOfWork) -> Reply:
    if cmd.quantity == 5:
        return Reply.failed("no carrier for 5")
    uow.add(ShippingEffect(order_id=cmd.order_id, kind="ship"))
    return Reply.succeeded(tracking=f"t-{cmd.order_id}")


shipping = Service("shipping", metadata=ShippingBase.metadata, commands=shipping_commands)


# -- orders: the saga -------------------------------------------------------------------------------
class OrdersBase(DeclarativeBase):
    pass


class Order(OrdersBase):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))


async def mark_placed(saga: SagaInstance, uow: UnitOfWork) -> Mapping[str, Any]:
    order = await uow.get(Order, saga.data["order_id"])
    order.status = "placed"
    return {}


async def cancel_order(saga: SagaInstance, uow: UnitOfWork) -> None:
    order = await uow.get(Order, saga.data["order_id"])
    order.status = "cancelled"


async def confirm_order(saga: SagaInstance, uow: UnitOfWork) -> None:
    order = await uow.get(Order, saga.data["order_id"])
    order.status = "confirmed"


def order_saga(timeout: float | None = None, version: int = 1, *, timeouts: Mapping[str, float] | None = None,
               **options: Any) -> Saga:
    """``timeout`` for every step that sends a command; ``timeouts`` overrides it by step name."""
    def limit(step: str) -> float | None:
        return (timeouts or {}).get(step, timeout)

    return Saga("order", version=version, steps=[
        Step("place", local=mark_placed, undo=cancel_order),
        Step("reserve", send=ReserveInventory, compensate=ReleaseInventory, timeout=limit("reserve")),
        Step("authorize", send=AuthorizePayment, compensate=VoidPayment, timeout=limit("authorize")),
        Step("ship", send=CreateShipment, timeout=limit("ship")),
        Step("confirm", local=confirm_order),
    ], **options)


SAGA = order_saga()
orders = Service("orders", metadata=OrdersBase.metadata, sagas=[SAGA])


def build_system(env: Mapping[str, str] | None = None, **options: Any) -> System:
    """The system; ``SAGASHOP_NAME`` names it (and so its topics: crash runs over Redis do not meet)."""
    name = (os.environ if env is None else env).get("SAGASHOP_NAME", "sagashop")
    return System(name, [orders, inventory, payment, shipping], env=env, **options)


async def place(order_id: str, *, quantity: int = 1, amount: int = 10) -> str:
    """Create an order and start its saga in one transaction; returns the saga id."""
    async with orders.unit_of_work() as uow:
        uow.add(Order(id=order_id, status="new"))
        return await SAGA.start(uow, saga_id=f"saga-{order_id}", order_id=order_id, quantity=quantity,
                                amount=amount)


async def effects() -> dict[tuple[str, str], int]:
    """(order id, effect) -> how many times it was applied, over the three target services."""
    counts: dict[tuple[str, str], int] = {}
    for service, model in ((inventory, InventoryEffect), (payment, PaymentEffect), (shipping, ShippingEffect)):
        async with service.unit_of_work() as uow:
            rows = (await uow.execute(select(model.order_id, model.kind, func.count())
                                      .group_by(model.order_id, model.kind))).all()
        for order_id, kind, count in rows:
            counts[(order_id, kind)] = count
    return counts


def expected_outcome(quantity: int, amount: int) -> tuple[str, dict[str, int]]:
    """(final saga status, effects) for an order placed with these numbers."""
    if amount % 3 == 0:
        return "compensated", {"reserve": 1, "release": 1}
    if quantity == 5:
        return "compensated", {"reserve": 1, "authorize": 1, "void": 1, "release": 1}
    return "completed", {"reserve": 1, "authorize": 1, "ship": 1}
