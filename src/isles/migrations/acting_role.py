"""Who a migration acts as on PostgreSQL: the owner of the schema it changes.

``isles db provision`` makes ``<prefix>_<service>_owner`` own the service's schema (``public`` of
its own database, or its schema in a shared one), gives the migrator role that owner as its
default role, and grants the app role its rights through ``ALTER DEFAULT PRIVILEGES FOR ROLE
<owner>``. Those default privileges apply only to objects the owner creates. A first-time user
who runs ``isles migrate up`` with the superuser's URL would otherwise create every table owned
by ``postgres``: the app role then gets "permission denied" and ``isles audit-isolation`` fails
on every table.

So before a migration runs, the connection does ``SET ROLE <schema owner>`` when the schema is
owned by a role other than the login user (not a superuser, not a ``pg_*`` built-in) of which the
login user is a member (a superuser is a member of every role). Whoever logs in, the objects
belong to the owner. Nothing is assumed from role names: an unprovisioned database (``public``
owned by ``pg_database_owner`` or a superuser) is left as it is, and on SQLite this does nothing.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_OWNER = text("""
SELECT r.rolname AS owner, current_user AS me,
       pg_has_role(current_user, r.oid, 'MEMBER') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         AS may_act
FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
WHERE n.nspname = coalesce(CAST(:schema AS text), current_schema())
  AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%'
""")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def act_as_schema_owner(conn: Connection, schema: str | None) -> str | None:
    """``SET ROLE`` to the owner of ``schema`` (default: the current schema) for the rest of the
    session when the login user may; returns the role acted as, or None (nothing changed)."""
    if conn.dialect.name != "postgresql":
        return None
    try:
        row = conn.execute(_OWNER, {"schema": schema}).first()
    finally:
        conn.rollback()
    if row is None or row.owner == row.me or not row.may_act:
        return None
    conn.execute(text(f"SET ROLE {_quote(row.owner)}"))
    conn.commit()  # a SET inside a transaction that rolls back would be undone
    owner: str = row.owner
    return owner
