"""Which errors are transient (worth a retry) and which are not."""

from __future__ import annotations

from db.errors import DatabaseUnavailableError, sqlstate

__all__ = ["TRANSIENT_ERRORS", "is_transient"]


def _transient_types() -> tuple[type[BaseException], ...]:
    import sqlalchemy.exc as sa_exc
    from kombu.exceptions import OperationalError as KombuOperationalError

    types: list[type[BaseException]] = [
        sa_exc.OperationalError,  # connection lost, server restarting, serialization failure
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        KombuOperationalError,
        ConnectionError,
        TimeoutError,
    ]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        types += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover - redis is a dependency via celery[redis]
        pass
    return tuple(types)


TRANSIENT_ERRORS = _transient_types()


def is_transient(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or its cause) is a transient infrastructure error.

    Transient: a lost or refused connection (database, broker, result backend), a server
    restarting, a serialization failure or deadlock, an unreachable configured server. Not
    transient: bad input, constraint violations, programming errors: retrying cannot help.

    A ``celery.exceptions.Retry`` (what a task's retry raises where Celery cannot retry it, e.g.
    a task run in-process) is judged by the error it carries.
    """
    from celery.exceptions import Retry
    from sqlalchemy.exc import DBAPIError

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, Retry):
            exc = exc.exc if isinstance(exc.exc, BaseException) else None
            seen += 1
            continue
        if isinstance(exc, DatabaseUnavailableError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, TRANSIENT_ERRORS):
            # A data error surfacing as OperationalError (e.g. division by zero) is not transient.
            code = sqlstate(exc)
            return code is None or code[:2] in {"08", "40", "53", "57"}
        exc = exc.__cause__
        seen += 1
    return False
