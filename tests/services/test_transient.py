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
