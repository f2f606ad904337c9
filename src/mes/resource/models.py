"""The resource service's own tables: the ISA-95 equipment hierarchy, personnel and their
qualifications, products with routings and operations, and tools.

Levels reference their parent with a foreign key (all inside this service's database); references
to other services (a personnel record's auth user, a product's material part) are plain id
columns, never foreign keys.
"""
from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Entity, ReadModel


class Base(DeclarativeBase):
    pass


class Level:
    """Columns every hierarchy level and catalogue row has."""

    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Enterprise(Level, Entity, Base):
    __tablename__ = "enterprises"
    __table_args__ = (Index("idx_enterprises_code", "code", unique=True),)


class Site(Level, Entity, Base):
    __tablename__ = "sites"
    __table_args__ = (Index("idx_sites_enterprise_id_code", "enterprise_id", "code", unique=True),)

    enterprise_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("enterprises.id"), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    address: Mapped[str | None] = mapped_column(String(500))


class Area(Level, Entity, Base):
    __tablename__ = "areas"
    __table_args__ = (Index("idx_areas_site_id_code", "site_id", "code", unique=True),)

    site_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sites.id"), nullable=False)


class WorkCenter(Level, Entity, Base):
    """ISA-95 work center: ProcessCell, ProductionLine, ProductionUnit or StorageZone."""

    __tablename__ = "work_centers"
    __table_args__ = (Index("idx_work_centers_area_id_code", "area_id", "code", unique=True),)

    area_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("areas.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False, default="ProductionLine")
    capacity_per_hour: Mapped[float | None] = mapped_column(Numeric(12, 3))


class WorkUnit(Level, Entity, Base):
    """ISA-95 work unit: Unit, WorkCell or StorageUnit."""

    __tablename__ = "work_units"
    __table_args__ = (Index("idx_work_units_work_center_id_code", "work_center_id", "code", unique=True),)

    work_center_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_centers.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False, default="WorkCell")


class Equipment(Level, Entity, Base):
    __tablename__ = "equipment"
    __table_args__ = (
        Index("idx_equipment_code", "code", unique=True),
        Index("idx_equipment_work_center_id", "work_center_id"),
        Index("idx_equipment_work_unit_id", "work_unit_id"),
    )

    work_center_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_centers.id"), nullable=False)
    work_unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("work_units.id"))
    equipment_class: Mapped[str | None] = mapped_column(String(64))
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    serial_number: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="available")


class PersonnelClass(Level, Entity, Base):
    __tablename__ = "personnel_classes"
    __table_args__ = (Index("idx_personnel_classes_code", "code", unique=True),)


class Personnel(Entity, Base):  # isles: ignore[ISL101] "personnel" is already plural (ISA-95 term)
    __tablename__ = "personnel"
    __table_args__ = (
        Index("idx_personnel_employee_number", "employee_number", unique=True),
        Index("idx_personnel_user_id", "user_id"),
        Index("idx_personnel_personnel_class_id", "personnel_class_id"),
        Index("idx_personnel_site_id", "site_id"),
        Index("idx_personnel_work_center_id", "work_center_id"),
    )

    employee_number: Mapped[str] = mapped_column(String(64), nullable=False)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # auth's user: an id, not a foreign key
    personnel_class_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("personnel_classes.id"))
    site_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("sites.id"))
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("work_centers.id"))
    shift: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Skill(Level, Entity, Base):
    __tablename__ = "skills"
    __table_args__ = (Index("idx_skills_code", "code", unique=True),)


class PersonnelSkill(Entity, Base):
    __tablename__ = "personnel_skills"
    __table_args__ = (
        Index("idx_personnel_skills_personnel_id_skill_id", "personnel_id", "skill_id", unique=True),
        Index("idx_personnel_skills_skill_id", "skill_id"),
    )

    personnel_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("personnel.id"), nullable=False)
    skill_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("skills.id"), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False, default=1)  # 1 (trainee) .. 5 (expert/trainer)


class Certification(Entity, Base):
    __tablename__ = "certifications"
    __table_args__ = (
        Index("idx_certifications_personnel_id", "personnel_id"),
        Index("idx_certifications_skill_id", "skill_id"),
        Index("idx_certifications_valid_until", "valid_until"),
    )

    personnel_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("personnel.id"), nullable=False)
    skill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("skills.id"))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    certificate_number: Mapped[str | None] = mapped_column(String(128))
    issuer: Mapped[str | None] = mapped_column(String(255))
    level: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[date | None] = mapped_column(Date)  # None = does not expire
    is_revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Product(Entity, Base):
    __tablename__ = "products"
    __table_args__ = (
        Index("idx_products_product_number_revision", "product_number", "revision", unique=True),
        Index("idx_products_part_id", "part_id"),
    )

    product_number: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    revision: Mapped[str] = mapped_column(String(16), nullable=False, default="A")
    description: Mapped[str | None] = mapped_column(Text)
    part_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # material's part: an id, not a foreign key
    #: material's part number, replicated through part_id (service_def.py): a rename follows
    part_number: Mapped[str | None] = mapped_column(String(64))
    part_version: Mapped[int | None] = mapped_column(BigInteger)
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False, default="EA")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class ReplicatedPart(ReadModel, Base):
    """resource's read model of material's parts (number only), fed by part events: a product
    naming a part gets its number at once, and every product follows a rename."""

    __tablename__ = "replicated_parts"

    part_number: Mapped[str | None] = mapped_column(String(64))


class Routing(Entity, Base):
    __tablename__ = "routings"
    __table_args__ = (
        Index("idx_routings_product_id_code_revision", "product_id", "code", "revision", unique=True),
        Index("idx_routings_site_id", "site_id"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("products.id"), nullable=False)
    site_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("sites.id"))
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    revision: Mapped[str] = mapped_column(String(16), nullable=False, default="A")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")  # draft, released, obsolete


class Operation(Entity, Base):
    """One step of a routing; ``sequence`` orders them and is unique within the routing."""

    __tablename__ = "operations"
    __table_args__ = (
        Index("idx_operations_routing_id_sequence", "routing_id", "sequence", unique=True),
        Index("idx_operations_work_center_id", "work_center_id"),
        Index("idx_operations_required_skill_id", "required_skill_id"),
    )

    routing_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("routings.id"), nullable=False)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("work_centers.id"))
    setup_minutes: Mapped[float] = mapped_column(Numeric(10, 2), nullable=False, default=0)
    run_minutes_per_unit: Mapped[float] = mapped_column(Numeric(10, 3), nullable=False, default=0)
    required_skill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("skills.id"))


class Tool(Entity, Base):
    __tablename__ = "tools"
    __table_args__ = (
        Index("idx_tools_tool_number", "tool_number", unique=True),
        Index("idx_tools_work_center_id", "work_center_id"),
    )

    tool_number: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    tool_type: Mapped[str | None] = mapped_column(String(64))
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("work_centers.id"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="available")
    calibration_due: Mapped[date | None] = mapped_column(Date)
    usage_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_usage: Mapped[int | None] = mapped_column(Integer)

