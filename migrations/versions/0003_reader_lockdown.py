"""reader role lockdown: no large objects, no temporary objects, CONNECT by grant only

Revision ID: 0003_reader_lockdown
Revises: 0002
Create Date: 2026-11-29 14:50:00

What ``0002`` left open to ``clustermass_reader`` once a session switches its read-only default
off (``SET default_transaction_read_only = off``), closed here for this database (see
docs/sql.md, "The read-only role"):

* **large objects**: ``lo_from_bytea``, ``lo_create`` and the other functions that create or
  write large objects are executable by ``PUBLIC``; revoked from ``PUBLIC`` (granted back to the
  database owner). Needs a superuser (the functions belong to the bootstrap superuser): run by
  anyone else, the migration warns and leaves them; docs/sql.md gives the DBA's statement.
* **temporary tables and functions**: ``TEMPORARY`` on the database is granted to ``PUBLIC`` by
  default, and ``pg_temp`` is where a role without ``CREATE`` on any schema can still create
  tables and functions; revoked from ``PUBLIC``. ``CREATE`` on schema ``public`` is revoked
  from ``PUBLIC`` too (PostgreSQL 15 does it by default; older servers do not).
* **CONNECT**: revoked from ``PUBLIC`` on this database and granted to the reader explicitly,
  so only the owner, superusers and the reader (and roles granted it) connect to it. That the
  reader cannot connect to *other* databases of the server is the server's choice (their
  ``CONNECT`` grants, or ``pg_hba.conf``): a migration of one database cannot make it.

The role's ``default_transaction_read_only = on`` stays as ``0002`` set it (on the role).
Privileges, not that default, are what forbid every write.

Downgrade gives ``PUBLIC`` back ``CONNECT``, ``TEMPORARY`` and the large-object functions; it
leaves ``CREATE`` on schema ``public`` revoked (PostgreSQL 15's own default).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_reader_lockdown"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER = "clustermass_reader"

# Server-side large-object functions that create, write or delete large objects (pg_catalog).
LO_FUNCTIONS = (
    "lo_creat(integer)",
    "lo_create(oid)",
    "lo_from_bytea(oid, bytea)",
    "lo_import(text)",
    "lo_import(text, oid)",
    "lo_put(oid, bigint, bytea)",
    "lo_open(oid, integer)",
    "lowrite(integer, bytea)",
    "lo_truncate(integer, integer)",
    "lo_truncate64(integer, bigint)",
    "lo_unlink(oid)",
)


def _lo_sql(action: str) -> str:
    """A DO block that grants or revokes the large-object functions when the user may."""
    revoke = action == "revoke"
    lines = []
    for fn in LO_FUNCTIONS:
        if revoke:
            lines.append(f"EXECUTE 'REVOKE EXECUTE ON FUNCTION pg_catalog.{fn} FROM PUBLIC';")
            lines.append(
                f"EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.{fn} TO %I', owner);"
            )
        else:
            lines.append(f"EXECUTE 'GRANT EXECUTE ON FUNCTION pg_catalog.{fn} TO PUBLIC';")
    body = "\n        ".join(lines)
    return f"""
DO $do$
DECLARE
    owner text := (SELECT pg_get_userbyid(datdba) FROM pg_database
                   WHERE datname = current_database());
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        {body}
    ELSE
        RAISE WARNING 'clustermass: large-object functions left executable by PUBLIC: only a '
            'superuser can change their privileges (see docs/sql.md, the read-only role)';
    END IF;
END
$do$"""


def _database_sql(grant: bool) -> str:
    """Grant or revoke CONNECT and TEMPORARY on the current database (name from the server)."""
    if grant:
        stmts = (
            "EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', db);",
            f"EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM {READER}', db);",
        )
    else:
        stmts = (
            "EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', db);",
            f"EXECUTE format('GRANT CONNECT ON DATABASE %I TO {READER}', db);",
        )
    body = "\n    ".join(stmts)
    return f"""
DO $do$
DECLARE
    db text := current_database();
BEGIN
    {body}
END
$do$"""


def upgrade() -> None:
    op.execute(_database_sql(grant=False))
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(_lo_sql("revoke"))


def downgrade() -> None:
    op.execute(_lo_sql("grant"))
    op.execute(_database_sql(grant=True))
