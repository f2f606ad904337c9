"""Material lots: receive, disposition (quarantine / release / reject), expire, move, split, merge, sublots.

A lot's ``status`` follows :data:`TRANSITIONS`; ``consumed`` is reached only by issuing (or
merging away) its whole quantity. Every change publishes the lot's whole state, and the
genealogy events (``lot.split``, ``lot.merged``) say which lots came from which.

A sublot is a portion of a lot stored apart (a box, a bin). Sublot quantities are part of the
lot's quantity, so the lot's *loose* quantity is its quantity minus its sublots'.

Expiry holds by the clock, not by the sweep: a lot past its ``expiresAt`` is refused at every use
(issue, split, merge, sublot) and counted as expired in inventory even while its status still
says released; the ``expire-due`` job (service_def.py, every few minutes in the service's worker)
then records the status. A lot already past its expiry when it is received is received straight
into ``expired`` (never ``received``): the delivery is on the dock and on record, it cannot be
used, and the usual way out applies - quarantine for a re-test that sets a new expiresAt, or reject.

Genealogy one level up and down: a split child names its parent (``parent_lot_id``); a merged lot
has one ``lot_merge_sources`` row per source with the quantity taken and the supplier data it
carried (``/lots/{id}/parents``, ``/lots/{id}/children``).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut, Quantity
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, get_or_404, not_found, page_of, paged
from isles.orm import as_utc, utcnow
from isles.security import Principal
from isles.text import Identifier, Name
from mes.material.access import Handler, Quality
from mes.material.events import LotCreated, LotMerged, LotSplit, LotStatusChanged, MergedSource
from mes.material.models import LOT_NUMBER, Location, LotMergeSource, MaterialLot, MaterialSublot, Part
from mes.material.parts import get_part

router = APIRouter()

Status = Literal["received", "quarantine", "released", "consumed", "expired", "rejected", "shipped"]
#: dispositions a person may make; ``consumed`` follows from issuing the whole quantity.
TRANSITIONS: dict[str, set[str]] = {
    "received": {"quarantine", "released", "rejected", "expired"},
    "quarantine": {"released", "rejected"},
    "released": {"quarantine", "expired"},
    "expired": {"quarantine", "rejected"},  # quarantine: a re-test may extend the shelf life
    "consumed": set(),
    "rejected": set(),
    "shipped": set(),  # reached by shipping the whole quantity (shipments.py)
}
ON_HAND = ("received", "quarantine", "released")
NEEDS_REASON = {"quarantine", "rejected"}


class LotIn(ApiModel):
    part_id: uuid.UUID
    quantity: Quantity = Field(gt=0)
    lot_number: Identifier | None = Field(default=None, min_length=1, max_length=64,
                                          description="generated when omitted")
    location_id: uuid.UUID | None = None
    supplier: Name | None = Field(default=None, max_length=255)
    supplier_lot_number: Identifier | None = Field(default=None, max_length=64)
    certificate_number: Identifier | None = Field(default=None, max_length=64, description="certificate of conformance")
    expires_at: datetime | None = None
    quarantine: bool = Field(default=False, description="receive straight into quarantine (inspection pending)")


class LotOut(ApiOut):
    id: uuid.UUID
    lot_number: str
    part_id: uuid.UUID
    quantity: Quantity
    initial_quantity: Quantity
    unit_of_measure: str
    status: str
    status_reason: str | None
    location_id: uuid.UUID | None
    origin: str
    parent_lot_id: uuid.UUID | None
    supplier: str | None
    supplier_lot_number: Identifier | None
    certificate_number: str | None
    received_at: datetime
    expires_at: datetime | None
    version: int


class StatusIn(ApiModel):
    status: Literal["quarantine", "released", "rejected", "expired"]
    reason: str | None = Field(default=None, min_length=1, max_length=500,
                               description="required for quarantine and rejected")
    expires_at: datetime | None = Field(default=None, description="a new expiry (e.g. after a re-test)")


class MoveIn(ApiModel):
    location_id: uuid.UUID


class SplitIn(ApiModel):
    quantity: Quantity = Field(gt=0, description="moved to the new lot; less than the lot's loose quantity")
    lot_number: Identifier | None = Field(default=None, min_length=1, max_length=64)
    location_id: uuid.UUID | None = None


class SplitOut(ApiOut):
    parent: LotOut
    child: LotOut


class MergeIn(ApiModel):
    lot_ids: list[uuid.UUID] = Field(min_length=2, max_length=100)
    lot_number: Identifier | None = Field(default=None, min_length=1, max_length=64)
    location_id: uuid.UUID | None = None


class LotLinkOut(LotOut):
    """A lot one level up or down the genealogy, with how it is linked and the quantity that moved."""

    link: Literal["split", "merge"]
    link_quantity: Quantity


class SublotIn(ApiModel):
    quantity: Quantity = Field(gt=0)
    sublot_number: Identifier | None = Field(default=None, min_length=1, max_length=64)
    location_id: uuid.UUID | None = None


class SublotOut(ApiOut):
    id: uuid.UUID
    sublot_number: str
    lot_id: uuid.UUID
    quantity: Quantity
    location_id: uuid.UUID | None
    version: int


# -- shared with consumption ------------------------------------------------------------------------
def lot_state(lot: MaterialLot, part: Part) -> dict[str, Any]:
    """The lot's whole state as event fields."""
    return dict(lot_id=str(lot.id), lot_number=lot.lot_number, part_id=str(lot.part_id), part_number=part.part_number,
                quantity=lot.quantity, unit_of_measure=lot.unit_of_measure, status=lot.status,
                location_id=str(lot.location_id) if lot.location_id else None, origin=lot.origin,
                parent_lot_id=str(lot.parent_lot_id) if lot.parent_lot_id else None, supplier=lot.supplier,
                supplier_lot_number=lot.supplier_lot_number,
                expires_at=lot.expires_at.isoformat() if lot.expires_at else None)


async def get_lot(uow: UnitOfWork, lot_id: uuid.UUID, *, lock: bool = False) -> MaterialLot:
    """The lot, or 404. ``lock`` takes its row lock (``FOR UPDATE``; SQLite is serial anyway): every
    command that changes a lot's quantity or its sublots takes it *before* reading quantities, so two
    of them cannot both spend the same units (received - consumed - issued - in sublots >= 0)."""
    if not lock:
        return await get_or_404(uow, MaterialLot, lot_id, what="lot")
    lot: MaterialLot | None = await uow.scalar(select(MaterialLot).where(MaterialLot.id == lot_id).with_for_update()
                                               .execution_options(populate_existing=True))
    if lot is None:
        raise not_found("lot", lot_id)
    return lot


async def loose_quantity(uow: UnitOfWork, lot: MaterialLot) -> Decimal:
    """What is not in a sublot."""
    in_sublots = await uow.scalar(select(func.coalesce(func.sum(MaterialSublot.quantity), 0))
                                  .where(MaterialSublot.lot_id == lot.id))
    return Decimal(lot.quantity) - Decimal(in_sublots or 0)


def is_expired(lot: MaterialLot) -> bool:
    expires = lot.expires_at
    if expires is None:
        return False
    return as_utc(expires) <= utcnow()


def refuse_expired(lot: MaterialLot, action: str) -> None:
    """409 when the lot's shelf life has ended, whether or not the expire-due sweep has run."""
    if lot.status == "expired" or is_expired(lot):
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} expired at {lot.expires_at}; it "
                                                      f"cannot be {action} (quarantine it for a re-test to extend "
                                                      "its shelf life)")


async def _location(uow: UnitOfWork, location_id: uuid.UUID | None) -> uuid.UUID | None:
    if location_id is not None:
        location = await uow.get(Location, location_id)
        if location is None or not location.is_active:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"locationId {location_id} is not an active location")
    return location_id


async def _number_free(uow: UnitOfWork, number: str) -> str:
    if await uow.scalar(select(MaterialLot.id).where(MaterialLot.lot_number == number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot number {number} is already used")
    return number


async def _new_number(uow: UnitOfWork, prefix: str) -> str:
    """L/M + date + the service's lot sequence; a number someone typed by hand is skipped."""
    for _ in range(1000):
        number = f"{prefix}{utcnow():%y%m%d}-{await LOT_NUMBER.next_value(uow):06d}"
        if not await uow.scalar(select(MaterialLot.id).where(MaterialLot.lot_number == number)):
            return number
    raise HTTPException(status.HTTP_409_CONFLICT, "1000 generated lot numbers in a row are taken; pass lotNumber")


def _set_status(lot: MaterialLot, new: str, reason: str | None) -> str:
    previous = lot.status
    lot.status, lot.status_reason = new, reason
    return previous


# -- receive, read ------------------------------------------------------------------------------------
async def receive_lot(uow: UnitOfWork, data: LotIn) -> MaterialLot:
    part = await get_part(uow, data.part_id)
    if part.tracking == "none":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"part {part.part_number} is not lot-tracked (tracking=none); it needs no lot")
    number = (await _number_free(uow, data.lot_number) if data.lot_number else await _new_number(uow, "L"))
    state, why = ("quarantine", "incoming inspection") if data.quarantine else ("received", None)
    if data.expires_at is not None and as_utc(data.expires_at) <= utcnow():
        state, why = "expired", f"expired on receipt (expiresAt {data.expires_at.isoformat()} had passed)"
    lot = MaterialLot(lot_number=number, part_id=part.id, quantity=data.quantity, initial_quantity=data.quantity,
                      unit_of_measure=part.unit_of_measure, status=state, status_reason=why,
                      location_id=await _location(uow, data.location_id), origin="received",
                      supplier=data.supplier, supplier_lot_number=data.supplier_lot_number,
                      certificate_number=data.certificate_number, received_at=utcnow(), expires_at=data.expires_at)
    uow.add(lot)
    await uow.flush()
    uow.publish(LotCreated(**lot_state(lot, part)), entity=lot)
    return lot


@router.post("/lots", status_code=status.HTTP_201_CREATED, response_model=LotOut)
async def post_lot(data: LotIn, uow: Uow, _: Handler) -> MaterialLot:
    """Receive a lot (status received, or quarantine when inspection is pending; expired when its
    expiresAt has already passed)."""
    lot = await receive_lot(uow, data)
    await uow.commit()
    return lot


@router.get("/lots", response_model=PageOut[LotOut])
async def list_lots(uow: Uow, page: Page, part_id: uuid.UUID | None = Query(None, alias="partId"),
                    status_: Status | None = Query(None, alias="status"),
                    location_id: uuid.UUID | None = Query(None, alias="locationId"),
                    lot_number: str | None = Query(None, alias="lotNumber", max_length=64)) -> Paged[MaterialLot]:
    return await paged(uow, select(MaterialLot).order_by(MaterialLot.received_at, MaterialLot.lot_number), page,
                       part_id=part_id, status=status_, location_id=location_id, lot_number=lot_number)


@router.get("/lots/{lot_id}", response_model=LotOut)
async def read_lot(lot_id: uuid.UUID, uow: Uow) -> MaterialLot:
    return await get_lot(uow, lot_id)


def _link(lot: MaterialLot, link: Literal["split", "merge"], quantity: Decimal) -> LotLinkOut:
    return LotLinkOut(**LotOut.model_validate(lot).model_dump(), link=link, link_quantity=quantity)


@router.get("/lots/{lot_id}/children", response_model=PageOut[LotLinkOut])
async def lot_children(lot_id: uuid.UUID, uow: Uow, page: Page) -> Paged[LotLinkOut]:
    """Lots made from this one, one level down: split off it, or merged from it (traceability
    answers deeper questions)."""
    await get_lot(uow, lot_id)
    split = [_link(c, "split", Decimal(c.initial_quantity)) for c in await uow.scalars(
        select(MaterialLot).where(MaterialLot.parent_lot_id == lot_id).order_by(MaterialLot.lot_number))]
    merged = [_link(lot, "merge", Decimal(row.quantity)) for row, lot in (await uow.execute(
        select(LotMergeSource, MaterialLot).join(MaterialLot, MaterialLot.id == LotMergeSource.merged_lot_id)
        .where(LotMergeSource.source_lot_id == lot_id).order_by(MaterialLot.lot_number))).all()]
    return page_of(split + merged, page)


@router.get("/lots/{lot_id}/parents", response_model=PageOut[LotLinkOut])
async def lot_parents(lot_id: uuid.UUID, uow: Uow, page: Page) -> Paged[LotLinkOut]:
    """Lots this one was made from, one level up: the lot it was split off, or every source of a
    merge with the quantity each gave."""
    lot = await get_lot(uow, lot_id)
    parents = []
    if lot.parent_lot_id is not None:
        parents.append(_link(await get_lot(uow, lot.parent_lot_id), "split", Decimal(lot.initial_quantity)))
    parents += [_link(source, "merge", Decimal(row.quantity)) for row, source in (await uow.execute(
        select(LotMergeSource, MaterialLot).join(MaterialLot, MaterialLot.id == LotMergeSource.source_lot_id)
        .where(LotMergeSource.merged_lot_id == lot_id).order_by(MaterialLot.lot_number))).all()]
    return page_of(parents, page)


# -- disposition ----------------------------------------------------------------------------------------
async def change_status(uow: UnitOfWork, lot: MaterialLot, data: StatusIn, principal: Principal | None = None
                        ) -> MaterialLot:
    """Disposition ``lot`` (audited; ``principal`` None: the system, e.g. the expiry sweep)."""
    if data.status not in TRANSITIONS[lot.status]:
        allowed = ", ".join(sorted(TRANSITIONS[lot.status])) or "nothing (final)"
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"lot {lot.lot_number} is {lot.status}; it can become: {allowed}")
    if data.status in NEEDS_REASON and not data.reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"a reason is required to make a lot {data.status}")
    expires_before = lot.expires_at
    if data.expires_at is not None:
        lot.expires_at = data.expires_at
    if data.status == "released" and is_expired(lot):
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} expired at {lot.expires_at}; "
                                                      "release it with a new expiresAt after a re-test")
    previous = _set_status(lot, data.status, data.reason)
    audit(uow, principal, "lot.status_changed", "lot", lot.id,
          {"status": (previous, lot.status), "expires_at": (expires_before, lot.expires_at)}, reason=data.reason)
    await uow.flush()
    part = await get_part(uow, lot.part_id, active=False)
    uow.publish(LotStatusChanged(**lot_state(lot, part), previous_status=previous, reason=data.reason), entity=lot)
    return lot


@router.post("/lots/{lot_id}/status", response_model=LotOut)
async def post_lot_status(lot_id: uuid.UUID, data: StatusIn, uow: Uow, principal: Quality) -> MaterialLot:
    """Quality disposition: quarantine, release, reject (or expire by hand)."""
    lot = await change_status(uow, await get_lot(uow, lot_id, lock=True), data, principal)
    await uow.commit()
    return lot


async def expire_due_lots(uow: UnitOfWork) -> list[MaterialLot]:
    """Mark every on-hand lot whose expiry has passed as expired, and commit. The ``expire-due``
    job runs this in the service's worker; two workers may run it at once: each lot is re-read
    under its row lock and changed only if it is still due."""
    expired = []
    due = list(await uow.scalars(select(MaterialLot.id).where(MaterialLot.status.in_(("received", "released")),
                                                              MaterialLot.expires_at.is_not(None))
                                 .order_by(MaterialLot.id)))
    for lot_id in due:
        lot = await get_lot(uow, lot_id, lock=True)
        if lot.status in ("received", "released") and is_expired(lot):
            expired.append(await change_status(uow, lot, StatusIn(status="expired", reason="shelf life ended")))
    await uow.commit()
    return expired


@router.post("/lots/expire-due", response_model=list[LotOut])
async def expire_due(uow: Uow, _: Quality) -> list[MaterialLot]:
    """Mark every on-hand lot whose expiry has passed as expired now (the service's worker does it
    every few minutes on its own; use, inventory and every total treat such lots as expired anyway)."""
    return await expire_due_lots(uow)


@router.post("/lots/{lot_id}/move", response_model=LotOut)
async def move_lot(lot_id: uuid.UUID, data: MoveIn, uow: Uow, _: Handler) -> MaterialLot:
    lot = await get_lot(uow, lot_id, lock=True)
    if lot.status not in ON_HAND:
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} is {lot.status}; only lots on hand move")
    lot.location_id = await _location(uow, data.location_id)
    await uow.commit()
    return lot


# -- split, merge ------------------------------------------------------------------------------------------
@router.post("/lots/{lot_id}/split", status_code=status.HTTP_201_CREATED, response_model=SplitOut)
async def split_lot(lot_id: uuid.UUID, data: SplitIn, uow: Uow, _: Handler) -> SplitOut:
    """Move part of a lot's loose quantity to a new lot with the same part, status and expiry."""
    parent = await get_lot(uow, lot_id, lock=True)
    if parent.status not in ON_HAND:
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {parent.lot_number} is {parent.status}; it cannot be split")
    refuse_expired(parent, "split")
    loose = await loose_quantity(uow, parent)
    if data.quantity >= loose:
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {parent.lot_number} has {loose} {parent.unit_of_measure} "
                                                      "outside sublots; a split takes less than that")
    children = await uow.scalar(select(func.count()).where(MaterialLot.parent_lot_id == parent.id))
    number = await _number_free(uow, data.lot_number or f"{parent.lot_number}-{(children or 0) + 1:02d}")
    child = MaterialLot(lot_number=number, part_id=parent.part_id, quantity=data.quantity,
                        initial_quantity=data.quantity, unit_of_measure=parent.unit_of_measure, status=parent.status,
                        status_reason=parent.status_reason,
                        location_id=await _location(uow, data.location_id) or parent.location_id, origin="split",
                        parent_lot_id=parent.id, supplier=parent.supplier,
                        supplier_lot_number=parent.supplier_lot_number, certificate_number=parent.certificate_number,
                        received_at=parent.received_at, expires_at=parent.expires_at)
    parent.quantity = Decimal(parent.quantity) - data.quantity
    uow.add(child)
    await uow.flush()
    part = await get_part(uow, parent.part_id, active=False)
    uow.publish(LotSplit(**lot_state(parent, part), child_lot_id=str(child.id), child_lot_number=child.lot_number,
                         split_quantity=data.quantity), entity=parent)
    uow.publish(LotCreated(**lot_state(child, part)), entity=child)
    await uow.commit()
    return SplitOut(parent=LotOut.model_validate(parent), child=LotOut.model_validate(child))


def _common(lots: list[MaterialLot], field: str) -> str | None:
    """The sources' value of ``field`` when they agree; else None (each source's stays on its
    merge-source row and shows in ``/lots/{id}/parents``)."""
    values = {getattr(lot, field) for lot in lots}
    return values.pop() if len(values) == 1 else None


@router.post("/lots/merge", status_code=status.HTTP_201_CREATED, response_model=LotOut)
async def merge_lots(data: MergeIn, uow: Uow, _: Handler) -> MaterialLot:
    """Empty several lots of one part and one status into a new lot (it expires with the earliest)."""
    if len(set(data.lot_ids)) != len(data.lot_ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "lotIds lists a lot twice")
    # locked in id order, so two merges sharing lots cannot deadlock
    locked = {lot_id: await get_lot(uow, lot_id, lock=True) for lot_id in sorted(data.lot_ids)}
    sources = [locked[lot_id] for lot_id in data.lot_ids]
    first = sources[0]
    for lot in sources:
        if lot.status not in ON_HAND:
            raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} is {lot.status}; it cannot be merged")
        refuse_expired(lot, "merged")
        if (lot.part_id, lot.status, lot.unit_of_measure) != (first.part_id, first.status, first.unit_of_measure):
            raise HTTPException(status.HTTP_409_CONFLICT, "only lots of one part, one status and one unit merge; "
                                                          f"{lot.lot_number} differs from {first.lot_number}")
        if await loose_quantity(uow, lot) != lot.quantity:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"lot {lot.lot_number} has sublots; issue or merge them first")
    expiries = [lot.expires_at for lot in sources if lot.expires_at is not None]
    total = sum((Decimal(lot.quantity) for lot in sources), Decimal(0))
    number = (await _number_free(uow, data.lot_number) if data.lot_number else await _new_number(uow, "M"))
    target = MaterialLot(lot_number=number, part_id=first.part_id, quantity=total, initial_quantity=total,
                         unit_of_measure=first.unit_of_measure, status=first.status, status_reason=first.status_reason,
                         location_id=await _location(uow, data.location_id) or first.location_id, origin="merge",
                         supplier=_common(sources, "supplier"),
                         supplier_lot_number=_common(sources, "supplier_lot_number"),
                         certificate_number=_common(sources, "certificate_number"), received_at=utcnow(),
                         expires_at=min(expiries) if expiries else None)
    uow.add(target)
    await uow.flush()
    part = await get_part(uow, first.part_id, active=False)
    merged = []
    for lot in sources:
        merged.append(MergedSource(lot_id=str(lot.id), lot_number=lot.lot_number, quantity=lot.quantity,
                                   supplier=lot.supplier, supplier_lot_number=lot.supplier_lot_number,
                                   certificate_number=lot.certificate_number))
        uow.add(LotMergeSource(merged_lot_id=target.id, source_lot_id=lot.id, quantity=lot.quantity,
                               supplier=lot.supplier, supplier_lot_number=lot.supplier_lot_number,
                               certificate_number=lot.certificate_number))
        lot.quantity = Decimal(0)
        previous = _set_status(lot, "consumed", f"merged into {target.lot_number}")
        await uow.flush()
        uow.publish(LotStatusChanged(**lot_state(lot, part), previous_status=previous, reason=lot.status_reason),
                    entity=lot)
    uow.publish(LotMerged(**lot_state(target, part), sources=merged), entity=target)
    await uow.commit()
    return target


# -- sublots ---------------------------------------------------------------------------------------------------
@router.post("/lots/{lot_id}/sublots", status_code=status.HTTP_201_CREATED, response_model=SublotOut)
async def post_sublot(lot_id: uuid.UUID, data: SublotIn, uow: Uow, _: Handler) -> MaterialSublot:
    lot = await get_lot(uow, lot_id, lock=True)
    if lot.status not in ON_HAND:
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} is {lot.status}; it takes no sublots")
    refuse_expired(lot, "divided into sublots")
    loose = await loose_quantity(uow, lot)
    if data.quantity > loose:
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} has only {loose} {lot.unit_of_measure} "
                                                      "outside sublots")
    count = await uow.scalar(select(func.count()).where(MaterialSublot.lot_id == lot.id))
    number = data.sublot_number or f"{lot.lot_number}.{(count or 0) + 1:03d}"
    if await uow.scalar(select(MaterialSublot.id).where(MaterialSublot.sublot_number == number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"sublot number {number} is already used")
    sublot = MaterialSublot(sublot_number=number, lot_id=lot.id, quantity=data.quantity,
                            location_id=await _location(uow, data.location_id) or lot.location_id)
    uow.add(sublot)
    await uow.commit()
    return sublot


@router.get("/lots/{lot_id}/sublots", response_model=PageOut[SublotOut])
async def list_sublots(lot_id: uuid.UUID, uow: Uow, page: Page) -> Paged[MaterialSublot]:
    await get_lot(uow, lot_id)
    return await paged(uow, select(MaterialSublot).where(MaterialSublot.lot_id == lot_id)
                       .order_by(MaterialSublot.sublot_number), page)
