"""A small plant history told as material's and work_order's events, for the traceability tests.

    R1 (resin, Acme) --split 20--> R1-01 --merge--> M1 <--merge-- R2 (resin)
    S1 (steel) --10--> WO-1 <--5-- M1         WO-1 produces B1 (no parent list: what WO-1 consumed)
    B1 --2--> WO-2 (units U1, U2)            R1 --1--> U1 only (issued into the unit)
    U1, U2 --> SH1 (Globex); U2 returned from SH1, shipped again in SH2 and returned again (a cycle)
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from isles.events import Envelope

M, W = "mes.material", "mes.work_order.work_order"
START = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)


class Story:
    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.envelopes: list[Envelope] = []
        self.versions: dict[str, int] = {}

    def id(self, name: str) -> str:
        return self.ids.setdefault(name, str(uuid.uuid4()))

    def emit(self, type_: str, key: str, data: dict[str, Any]) -> None:
        self.versions[key] = self.versions.get(key, 0) + 1
        source = "/mes/work_order" if type_.startswith(W) else "/mes/material"
        self.envelopes.append(Envelope(id=str(uuid.uuid4()), source=source, type=type_, data=orjson.dumps(data),
                                       partitionkey=key, entityversion=self.versions[key],
                                       time=START + timedelta(minutes=len(self.envelopes))))

    def part(self, name: str, number: str) -> None:
        self.emit(f"{M}.part.created", self.id(name), {"partId": self.id(name), "partNumber": number,
                                                       "partName": name, "revision": "A", "unitOfMeasure": "KG"})

    def lot(self, name: str, part: str, quantity: float, **extra: Any) -> dict[str, Any]:
        return {"lotId": self.id(name), "lotNumber": name, "partId": self.id(part), "partNumber": part,
                "quantity": quantity, "unitOfMeasure": "KG", "status": "released", "origin": "received", **extra}

    def order(self, name: str, part: str, action: str = "created", **extra: Any) -> None:
        self.emit(f"{W}.{action}", self.id(name), {"workOrderId": self.id(name), "workOrderNumber": name,
                                                   "partId": self.id(part), "partNumber": part, "quantity": 2,
                                                   "status": "released", **extra})

    def consume(self, lot: str, part: str, order: str, quantity: float, serial: str | None = None,
                origin: str = "received") -> None:
        self.emit(f"{M}.lot.consumed", self.id(lot), {
            **self.lot(lot, part, 0, origin=origin), "consumptionId": str(uuid.uuid4()), "consumedQuantity": quantity,
            "workOrderId": self.id(order), "workOrderNumber": order, "operationCode": "OP10",
            "serialId": self.id(serial) if serial else None, "consumedAt": START.isoformat()})

    def serial(self, name: str, part: str, order: str) -> None:
        self.emit(f"{M}.serial.created", self.id(name), {
            "serialId": self.id(name), "partId": self.id(part), "partNumber": part, "processSerial": name,
            "status": "in_process", "workOrderId": self.id(order)})

    def build(self) -> "Story":
        for name, number in (("RESIN", "P-RES"), ("STEEL", "P-STL"), ("BRACKET", "P-BRK"), ("ASSY", "P-ASM")):
            self.part(name, number)
        self.emit(f"{M}.lot.created", self.id("R1"), self.lot("R1", "RESIN", 100, supplier="Acme",
                                                              supplierLotNumber="A-77"))
        self.emit(f"{M}.lot.created", self.id("R2"), self.lot("R2", "RESIN", 30))
        self.emit(f"{M}.lot.created", self.id("S1"), self.lot("S1", "STEEL", 50))
        self.emit(f"{M}.lot.split", self.id("R1"), {**self.lot("R1", "RESIN", 80), "childLotId": self.id("R1-01"),
                                                    "childLotNumber": "R1-01", "splitQuantity": 20})
        self.emit(f"{M}.lot.created", self.id("R1-01"), self.lot("R1-01", "RESIN", 20, origin="split"))
        self.emit(f"{M}.lot.merged", self.id("M1"), {**self.lot("M1", "RESIN", 50, origin="merge"), "sources": [
            {"lotId": self.id("R1-01"), "lotNumber": "R1-01", "quantity": 20},
            {"lotId": self.id("R2"), "lotNumber": "R2", "quantity": 30}]})
        self.order("WO-1", "BRACKET")
        self.consume("S1", "STEEL", "WO-1", 10)
        self.consume("M1", "RESIN", "WO-1", 5, origin="merge")
        self.emit(f"{M}.lot.produced", self.id("B1"), {
            **self.lot("B1", "BRACKET", 4, origin="produced"), "workOrderId": self.id("WO-1"),
            "workOrderNumber": "WO-1"})
        self.order("WO-1", "BRACKET", "completed", status="completed", quantityProduced=4,
                   actualEnd=START.isoformat())
        self.order("WO-2", "ASSY")
        self.serial("U1", "ASSY", "WO-2")
        self.serial("U2", "ASSY", "WO-2")
        self.consume("B1", "BRACKET", "WO-2", 2, origin="produced")
        self.consume("R1", "RESIN", "WO-2", 1, serial="U1")
        self.emit(f"{M}.shipment.created", self.id("SH1"), {
            "shipmentId": self.id("SH1"), "shipmentNumber": "SH1", "customer": "Globex",
            "serials": [self.id("U1"), {"serialId": self.id("U2")}]})
        self.emit(f"{M}.return.received", self.id("RMA1"), {
            "returnId": self.id("RMA1"), "shipmentId": self.id("SH1"), "reason": "scratched",
            "serials": [self.id("U2")]})
        self.emit(f"{M}.shipment.created", self.id("SH2"), {
            "shipmentId": self.id("SH2"), "shipmentNumber": "SH2", "customer": "Initech", "serials": [self.id("U2")]})
        self.emit(f"{M}.return.received", self.id("RMA2"), {
            "returnId": self.id("RMA2"), "shipmentId": self.id("SH2"), "reason": "wrong unit",
            "serials": [self.id("U2")]})
        return self
