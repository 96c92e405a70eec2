"""The SQLSTATE of a database error, whatever the driver and however it is wrapped."""

from __future__ import annotations

import psycopg.errors
import sqlalchemy as sa

from db.errors import sqlstate


class _Psycopg2Error(Exception):
    def __init__(self, pgcode: str) -> None:
        super().__init__(pgcode)
        self.pgcode = pgcode


def test_sqlstate_of_driver_errors_bare_and_wrapped_by_sqlalchemy() -> None:
    serialization = psycopg.errors.lookup("40001")("could not serialize access")
    assert sqlstate(serialization) == "40001"  # psycopg 3, unwrapped
    assert sqlstate(_Psycopg2Error("53300")) == "53300"  # psycopg2, unwrapped
    assert sqlstate(sa.exc.OperationalError("SELECT 1", {}, serialization)) == "40001"
    assert sqlstate(sa.exc.OperationalError("SELECT 1", {}, _Psycopg2Error("08006"))) == "08006"


def test_an_error_without_a_sqlstate_has_none() -> None:
    assert sqlstate(ValueError("not from a database")) is None
    assert sqlstate(sa.exc.OperationalError("SELECT 1", {}, ValueError("no code"))) is None
