"""Engines and sessions. The caller owns the transaction (``with session_scope(engine) as s``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseUnavailableError

__all__ = [
    "make_engine",
    "session_scope",
    "read_only_session",
    "row_counts",
    "READER_ROLE",
    "check_connection",
    "redact",
    "scrub",
]


_SECRET_KEYS = frozenset({"password", "passwd", "pwd", "pass", "sslpassword", "secret", "token"})
# user:secret@ in the authority of anything that looks like a URL, parseable or not.
_USERINFO = re.compile(r"(?P<pre>(?:^|//|\s)[^/?#@:\s]*:)(?P<secret>[^/?#\s]*)@")
# password=secret in a query string or a libpq keyword string.
_KEYVALUE = re.compile(
    r"(?P<pre>\b(?:" + "|".join(sorted(_SECRET_KEYS)) + r")\s*=\s*)(?P<secret>'[^']*'|[^&\s]+)",
    re.IGNORECASE,
)


def _secrets(url: str | sa.URL) -> list[str]:
    """Return the password-like parts of ``url``: the password and secret query values."""
    found: list[str] = []
    try:
        u = make_url(str(url)) if not isinstance(url, sa.URL) else url
        if u.password:
            found.append(str(u.password))
        if u.host and "@" in u.host:  # an unencoded '@' in the password: the rest went to host
            found.append(u.host.rsplit("@", 1)[0])
        for key, value in u.query.items():
            if key.lower() in _SECRET_KEYS:
                found += [value] if isinstance(value, str) else list(value)
    except Exception:  # noqa: BLE001 - unparseable: fall back to the patterns below
        pass
    text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)
    found += [m.group("secret") for m in _USERINFO.finditer(text)]
    found += [m.group("secret").strip("'") for m in _KEYVALUE.finditer(text)]
    return sorted({f for f in found if f}, key=len, reverse=True)


def scrub(text: str, url: str | sa.URL) -> str:
    """Return ``text`` (an error message) with every secret of ``url`` replaced by ``***``.

    Driver errors may quote the connection string; this removes the password (from the
    ``user:password@`` part, however the URL is malformed, and from ``password=`` parameters).
    """
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(lambda m: f"{m.group('pre')}***@", text)
    return _KEYVALUE.sub(lambda m: f"{m.group('pre')}***", text)


def redact(url: str | sa.URL) -> str:
    """Return ``url`` with its password hidden (safe for logs and error messages).

    Hides the ``user:password@`` part and password-like query parameters
    (``?password=...``); a URL that cannot be parsed is shown as ``<unparseable URL: ...>``
    with its secrets removed, never as it was given.
    """
    try:
        u = url if isinstance(url, sa.URL) else make_url(str(url))
        if u.host and "@" in u.host:
            raise ValueError("unencoded '@' in the password")
        query = {k: ("***" if k.lower() in _SECRET_KEYS else v) for k, v in u.query.items()}
        return u.set(query=query).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any parse failure (ArgumentError, ValueError for a port)
        return f"<unparseable URL: {scrub(str(url), url)}>"


def make_engine(url: str, *, pool_pre_ping: bool = True, **kwargs: object) -> Engine:
    """Create an engine for ``url``.

    Raises
    ------
    DatabaseUnavailableError
        If the URL cannot be parsed or names a driver that is not installed (the message never
        holds the password).
    """
    try:
        return sa.create_engine(url, pool_pre_ping=pool_pre_ping, **kwargs)  # type: ignore[arg-type]
    except (ArgumentError, ImportError, ValueError, TypeError) as exc:
        raise DatabaseUnavailableError(
            f"invalid database URL {redact(url)}: {scrub(str(exc), url)}. Fix "
            "CLUSTERMASS_DATABASE_URL (e.g. postgresql://user@host:5432/dbname) or unset it to "
            "use the embedded server."
        ) from None  # the chained exception would quote the URL


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise :class:`DatabaseUnavailableError` with one clear line if it fails."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (OperationalError, InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"cannot connect to {redact(engine.url)}: {scrub(reason, engine.url)}. Check that "
            "the server is running and CLUSTERMASS_DATABASE_URL is right, or unset it to use the "
            "embedded server."
        ) from None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session in a transaction: committed on success, rolled back on error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


READER_ROLE = "clustermass_reader"


@contextmanager
def read_only_session(
    engine: Engine, *, assume_role: str | None = READER_ROLE
) -> Iterator[Session]:
    """Yield a session in a READ ONLY transaction, rolled back at the end.

    With ``assume_role``, the rest of the transaction runs as that role when the login may
    ``SET ROLE`` (the owner's login, a member of the roles it created): queries then see exactly
    what the read-only role sees (the results views and functions, no base table). Logins that
    may not keep their own rights, still read only. Sorts of large runs get 64 MB of work_mem
    (percentiles of 1e6 predictions fit in memory; docs/benchmarks.md).
    """
    with Session(engine) as session:
        # first statement of the transaction: nothing below can write, whatever the role
        session.execute(sa.text("SET TRANSACTION READ ONLY"))
        if assume_role:
            try:
                with session.begin_nested():
                    session.execute(sa.text(f'SET LOCAL ROLE "{assume_role}"'))
            except sa.exc.DBAPIError:
                pass  # not a member of the role: the login's own rights, still read only
        session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        try:
            yield session
        finally:
            session.rollback()


def row_counts(engine: Engine, table_names: Sequence[str]) -> dict[str, int]:
    """Return the number of rows of each named table (``clustermass db status``)."""
    md = sa.MetaData()
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for name in table_names:
            table = sa.Table(name, md)
            out[name] = int(conn.scalar(sa.select(sa.func.count()).select_from(table)))
    return out
