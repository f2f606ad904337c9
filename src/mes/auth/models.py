"""The auth service's own tables.

Users are deactivated, never deleted (a trigger refuses DELETE), so a username - unique over
every row ever created - is never reused, and a signature's user id always names one person
(21 CFR Part 11 11.100). The audit log is append-only at the database: triggers refuse UPDATE
and DELETE on every supported database (11.10(e)), created from this metadata when the tables
are created.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Entity, append_only
from isles.orm import utcnow


class Base(DeclarativeBase):
    pass


class User(Entity, Base):
    __tablename__ = "users"
    __table_args__ = (Index("idx_users_username", "username", unique=True),)

    username: Mapped[str] = mapped_column(String(150), nullable=False)  # stored lower-case
    first_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    last_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    email: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_login_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    must_change_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.username


class Credential(Entity, Base):
    """A user's current password (argon2id hash) and its age (11.300 password aging)."""

    __tablename__ = "credentials"
    __table_args__ = (Index("idx_credentials_user_id", "user_id", unique=True),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Role(Entity, Base):
    __tablename__ = "roles"
    __table_args__ = (Index("idx_roles_name", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(String(255), nullable=False, default="")


class UserRole(Entity, Base):
    __tablename__ = "user_roles"
    __table_args__ = (
        Index("idx_user_roles_user_id_role_id", "user_id", "role_id", unique=True),
        Index("idx_user_roles_role_id", "role_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    role_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("roles.id"), nullable=False)


class Session(Entity, Base):
    """A login: the family of its rotating refresh tokens."""

    __tablename__ = "sessions"
    __table_args__ = (Index("idx_sessions_user_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    mfa_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    last_signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # 11.200 signing sequence
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class RefreshToken(Entity, Base):
    """One refresh token of a session (stored as a SHA-256 hash); spent on use."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("idx_refresh_tokens_token_hash", "token_hash", unique=True),
        Index("idx_refresh_tokens_session_id", "session_id"),
        Index("idx_refresh_tokens_user_id", "user_id"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sessions.id"), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(Entity, Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("idx_api_tokens_token_hash", "token_hash", unique=True),
        Index("idx_api_tokens_user_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    token_prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # shown in lists, not a secret
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MfaFactor(Entity, Base):
    """A TOTP authenticator; the shared secret is sealed with a key derived from the auth secret."""

    __tablename__ = "mfa_factors"
    __table_args__ = (Index("idx_mfa_factors_user_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="totp")
    secret_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)  # refuses a replayed code


class SignatureMeaning(Entity, Base):
    """What a signature means (21 CFR Part 11 11.50): review, approval, responsibility, authorship."""

    __tablename__ = "signature_meanings"
    __table_args__ = (Index("idx_signature_meanings_code", "code", unique=True),)

    code: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class AuditLog(Entity, Base):
    """Append-only: who did what, when (server UTC), to which entity and field, old and new value."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("idx_audit_logs_entity_id", "entity_id"),
        Index("idx_audit_logs_actor_id", "actor_id"),
        Index("idx_audit_logs_occurred_at", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_username: Mapped[str | None] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(String(64))


# -- database-enforced rules ---------------------------------------------------------------------
APPEND_ONLY_MESSAGE = "audit_logs is append-only (21 CFR Part 11 11.10(e)): rows cannot be updated or deleted"
NO_DELETE_MESSAGE = "users are deactivated, never deleted (21 CFR Part 11 11.100)"


#: The statements that make the rules hold, per table and dialect (isles.append_only, the same
#: mechanism as isles' own audit trail). create_all runs them through the DDL events below; a
#: migration that creates these tables must run them too:
#: ``for sql in trigger_sql("audit_logs", op.get_bind().dialect.name): op.execute(sql)``.
TRIGGERS: dict[str, dict[str, list[str]]] = {
    "audit_logs": append_only.refuse_statements("audit_logs", message=APPEND_ONLY_MESSAGE,
                                                function="audit_logs_append_only"),
    "users": append_only.refuse_statements("users", message=NO_DELETE_MESSAGE, function="users_never_deleted",
                                           delete_only=True),
}


def trigger_sql(table: str, dialect: str) -> list[str]:
    return list(TRIGGERS.get(table, {}).get(dialect, []))


for _table, _by_dialect in TRIGGERS.items():
    append_only.listen(Base.metadata.tables[_table], _by_dialect)
