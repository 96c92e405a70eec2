"""Which database errors are worth a retry: the SQLSTATE class decides, whatever the driver."""

from __future__ import annotations

import psycopg.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.transient import is_transient

# SQLSTATE classes (PostgreSQL manual, appendix A): 08 connection exception, 40 transaction
# rollback (serialization failure, deadlock), 53 insufficient resources, 57 operator
# intervention (server shutting down) are transient; the others are not, even when the driver
# raises them as an OperationalError (psycopg maps 28, 54 and 55 there).
TRANSIENT = ["08006", "40001", "40P01", "53300", "57P01"]
NOT_TRANSIENT = [
    "28P01",  # invalid_password: an authentication failure stays one
    "42601",  # syntax_error
    "54000",  # program_limit_exceeded
    "55000",  # object_not_in_prerequisite_state
]


class _Psycopg2Error(Exception):
    """What psycopg2 raises: the SQLSTATE in ``pgcode`` (psycopg 3 calls it ``sqlstate``)."""

    def __init__(self, pgcode: str) -> None:
        super().__init__(f"error {pgcode}")
        self.pgcode = pgcode


def _operational(orig: Exception) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [(c, True) for c in TRANSIENT] + [(c, False) for c in NOT_TRANSIENT],
)
def test_operational_errors_are_transient_by_sqlstate_class(sqlstate: str, expected: bool) -> None:
    psycopg3 = psycopg.errors.lookup(sqlstate)(f"error {sqlstate}")
    assert is_transient(_operational(psycopg3)) is expected
    assert is_transient(_operational(_Psycopg2Error(sqlstate))) is expected
    # also when it is the cause of the error the caller sees
    wrapper = RuntimeError("ingest failed")
    wrapper.__cause__ = _operational(psycopg3)
    assert is_transient(wrapper) is expected


def test_an_operational_error_from_the_server_that_retrying_cannot_fix(engine: Engine) -> None:
    # currval() before nextval() in a session: SQLSTATE 55000, an OperationalError to psycopg
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TEMPORARY SEQUENCE transient_probe"))
        with pytest.raises(sa.exc.OperationalError) as info:
            conn.execute(sa.text("SELECT currval('transient_probe')"))
    assert not is_transient(info.value)


def _chain(innermost: BaseException, depth: int) -> BaseException:
    """``innermost`` as the cause of ``depth`` wrapping RuntimeErrors (``depth`` 0: itself)."""
    exc = innermost
    for i in range(depth):
        wrapper = RuntimeError(f"wrapper {i}")
        wrapper.__cause__ = exc
        exc = wrapper
    return exc


def test_an_unreachable_server_and_an_invalidated_connection_are_transient() -> None:
    from db.errors import DatabaseUnavailableError

    assert is_transient(DatabaseUnavailableError("no server at 127.0.0.1:1"))
    assert is_transient(_chain(DatabaseUnavailableError("down"), 2))
    # a statement error on a connection the pool invalidated (server restarted): retry
    invalidated = sa.exc.ProgrammingError(
        "SELECT 1", {}, Exception("gone"), connection_invalidated=True
    )
    assert is_transient(invalidated)
    assert not is_transient(sa.exc.ProgrammingError("SELECT 1", {}, Exception("bad sql")))


def test_network_errors_without_a_sqlstate_are_transient_and_bad_input_is_not() -> None:
    assert is_transient(ConnectionRefusedError("broker down"))
    assert is_transient(TimeoutError("result backend timed out"))
    assert not is_transient(ValueError("log10_m500c must be finite"))
    assert not is_transient(None)


def test_the_cause_chain_is_followed_five_errors_deep_and_no_further() -> None:
    down = ConnectionError("lost")
    assert all(is_transient(_chain(down, d)) for d in range(5))
    assert not is_transient(_chain(ConnectionError("lost"), 5))


def test_transient_types_cover_database_broker_and_redis_connection_errors() -> None:
    import kombu.exceptions
    import redis.exceptions

    from services.transient import TRANSIENT_ERRORS, _transient_types

    types = _transient_types()
    assert types == TRANSIENT_ERRORS
    for t in (
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.DisconnectionError,
        kombu.exceptions.OperationalError,
        ConnectionError,
        TimeoutError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    ):
        assert t in types


def _retries(exc: BaseException, depth: int) -> BaseException:
    from celery.exceptions import Retry

    for _ in range(depth):
        exc = Retry(exc=exc)
    return exc


def test_a_celery_retry_is_judged_by_the_error_it_carries_within_the_same_depth() -> None:
    from celery.exceptions import Retry

    # an in-process task's retry raises Retry(exc=...): each Retry counts as one link
    assert all(is_transient(_retries(ConnectionError("lost"), d)) for d in range(1, 5))
    assert not is_transient(_retries(ConnectionError("lost"), 5))
    assert not is_transient(_retries(ValueError("bad input"), 1))
    assert not is_transient(Retry())
    carries_text = Retry()
    carries_text.exc = "connection lost"  # not an exception: nothing to judge
    assert not is_transient(carries_text)
