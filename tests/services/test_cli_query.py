"""`clustermass query`: tables, csv and json from a seeded database; injections do nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli.main import app
from db import results
from services.settings import get_settings
from tests.results_data import Seeded, add_two_catalogue_run, seeded_database

runner = CliRunner()


def run_cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def results_db(admin_url: str) -> Iterator[tuple[str, Seeded]]:
    with seeded_database(admin_url, "cmcli") as db:
        yield db


@pytest.fixture
def owner_env(monkeypatch: pytest.MonkeyPatch, results_db: tuple[str, Seeded]) -> Seeded:
    """Query as the database owner (a superuser here): only parameterisation protects."""
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", results_db[0])
    monkeypatch.delenv("CLUSTERMASS_READ_ONLY_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield results_db[1]
    get_settings.cache_clear()


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
            for t in ("clusters", "predictions", "observables", "model_runs")
        }
    engine.dispose()
    return out


def test_scatter_table_csv_and_json(owner_env: Seeded, results_db: tuple[str, Seeded]) -> None:
    run_id = owner_env.run_ids["multi"]
    out = run_cli("query", "scatter", "--run", str(run_id), "--by", "mass,z,mass-z")
    assert "residuals by mass" in out and "residuals by z" in out and "by mass_z" in out
    assert "sigma_lnM" in out and "14.25" in out
    rows = json.loads(run_cli("query", "scatter", "--run", str(run_id), "--format", "json"))
    engine = sa.create_engine(results_db[0])
    with Session(engine) as session:
        expected = [s.as_dict() for s in results.scatter(session, run_id=run_id, by="mass")]
    engine.dispose()
    assert rows == expected  # same numbers as the library, JSON-exact
    csv_out = run_cli(
        "query",
        "scatter",
        "--run",
        str(run_id),
        "--by",
        "z",
        "--format",
        "csv",
        "--z-edges",
        "0,0.2,0.5",
    )
    lines = csv_out.strip().splitlines()
    assert lines[0] == "axis,mass_lo,mass_hi,z_lo,z_hi,n,bias_dex,sigma_lnm,p16_dex,p50_dex,p84_dex"
    assert len(lines) == 3 and lines[1].startswith("z,,,0.0,0.2,")


def test_proxy_runs_and_outliers(owner_env: Seeded, results_db: tuple[str, Seeded]) -> None:
    from db import proxy_masses

    engine = sa.create_engine(results_db[0])
    with Session(engine) as session, session.begin():
        proxy_masses.fit_proxy_estimates(session, catalogue_id=owner_env.catalogue_id)
        results.refresh(session)
    engine.dispose()
    out = run_cli(
        "query",
        "scatter",
        "--proxy",
        "L_X",
        "--catalogue",
        str(owner_env.catalogue_id),
        "--by",
        "all",
    )
    assert "proxy L_X" in out
    out = run_cli("query", "runs", "--format", "json")
    labels = {r["label"] for r in json.loads(out)}
    assert {"single CNN", "multi CNN", "multimodal CNN", "L_X", "T"} <= labels
    out = run_cli("query", "outliers", "--run", str(owner_env.run_ids["multi"]), "--format", "csv")
    assert out.splitlines()[1].startswith(f"{owner_env.outlier_cluster_id},")


def test_cluster_report(owner_env: Seeded) -> None:
    out = run_cli("query", "cluster", "SYN synthetic 0001")
    for section in ("observables", "predictions (every run)", "attribution summaries"):
        assert section in out
    assert "multi CNN" in out and "0.2850" in out
    payload = json.loads(run_cli("query", "cluster", "synthetic-1", "--format", "json"))
    assert payload[0]["cluster"]["external_id"] == "synthetic-1"
    assert len(payload[0]["predictions"]) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["cluster", "x'; DROP TABLE clusters; --"], "no cluster named"),
        (["cluster", "1 OR 1=1"], "no cluster named"),
        (["cluster", "'); DELETE FROM predictions; --"], "no cluster named"),
        (
            ["scatter", "--proxy", "T'; DROP TABLE observables; --", "--catalogue", "1"],
            "no proxy mass estimates",
        ),
        (
            ["scatter", "--run", "1", "--mass-edges", "13.5); DROP TABLE predictions; --"],
            "expected comma-separated numbers",
        ),
    ],
)
def test_injection_through_the_cli_does_nothing(
    owner_env: Seeded, results_db: tuple[str, Seeded], args: list[str], message: str
) -> None:
    before = _counts(results_db[0])
    result = runner.invoke(app, ["query", *args])
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exit_code == 2
    assert _counts(results_db[0]) == before


def test_injected_domain_is_refused_by_the_cli_and_a_plain_value_below(
    owner_env: Seeded, results_db: tuple[str, Seeded]
) -> None:
    run_id = owner_env.run_ids["multi"]
    evil = "mock' OR '1'='1"
    out = run_cli("query", "scatter", "--run", str(run_id), "--domain", evil, code=2)
    assert "choose mock, observed or all" in out
    engine = sa.create_engine(results_db[0])
    with Session(engine) as session:  # the library binds it: just a domain nobody has
        stats = results.scatter(session, run_id=run_id, input_domain=evil)
    engine.dispose()
    assert [s.n for s in stats] == [0] * (len(results.MASS_EDGES) - 1)


def test_uses_the_read_only_url_when_set(
    monkeypatch: pytest.MonkeyPatch, results_db: tuple[str, Seeded]
) -> None:
    reader_url = make_url(results_db[0]).set(username="clustermass_reader")
    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    monkeypatch.setenv(
        "CLUSTERMASS_READ_ONLY_DATABASE_URL", reader_url.render_as_string(hide_password=False)
    )
    get_settings.cache_clear()
    try:
        out = run_cli("query", "scatter", "--run", str(results_db[1].run_ids["single"]))
        assert "residuals by mass" in out
        out = run_cli("query", "cluster", "Abell 3158")
        assert "observed" in out and "14.9000" in out
    finally:
        get_settings.cache_clear()


def test_errors_are_one_line(owner_env: Seeded) -> None:
    out = run_cli("query", "scatter", "--run", "999999", code=2)
    assert "no model run with id 999999" in out and "Traceback" not in out
    out = run_cli("query", "scatter", "--run", "1", "--mass-edges", "14,13", code=2)
    assert "strictly increasing" in out
    out = run_cli("query", "scatter", "--run", "1", "--by", "snapshot", code=2)
    assert "choose from" in out


def test_query_sessions_run_as_the_reader_role_by_default(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    import sqlalchemy as sa

    from services.database import reader_session
    from services.settings import get_settings

    monkeypatch.setenv("CLUSTERMASS_DATABASE_URL", database_url)
    monkeypatch.delenv("CLUSTERMASS_READ_ONLY_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        with reader_session() as session:
            assert session.scalar(sa.text("SELECT current_user")) == "clustermass_reader"
            with pytest.raises(sa.exc.DBAPIError), session.begin_nested():
                session.execute(sa.text("SELECT count(*) FROM clusters"))  # base tables: no
            assert session.scalar(sa.text("SELECT count(*) FROM v_runs")) >= 0  # views: yes
    finally:
        get_settings.cache_clear()


def test_run_scatter_and_runs_use_one_catalogue(
    owner_env: Seeded, results_db: tuple[str, Seeded]
) -> None:
    """Issue 16: N of a run = its training catalogue's out-of-fold count; --catalogue picks."""
    engine = sa.create_engine(results_db[0])
    with Session(engine) as session, session.begin():
        two = add_two_catalogue_run(session, owner_env)
        results.refresh(session)
    try:
        rid = str(two.run_id)
        rows = json.loads(
            run_cli("query", "scatter", "--run", rid, "--by", "all", "--format", "json")
        )
        assert [r["n"] for r in rows] == [two.n_training]
        other = str(two.other_catalogue_id)
        args = ("query", "scatter", "--run", rid, "--by", "all", "--catalogue", other)
        assert [r["n"] for r in json.loads(run_cli(*args, "--format", "json"))] == [two.n_other]
        assert f"run {rid} (mock, catalogue {other})" in run_cli(*args)
        runs = json.loads(run_cli("query", "runs", "--format", "json"))
        assert [r["n"] for r in runs if r["run_id"] == two.run_id] == [two.n_training]
        runs = json.loads(run_cli("query", "runs", "--catalogue", other, "--format", "json"))
        assert [(r["run_id"], r["n"]) for r in runs] == [(two.run_id, two.n_other)]
        out = run_cli("query", "scatter", "--run", rid, "--catalogue", "999999", code=2)
        assert "no predictions of catalogue 999999" in out
    finally:
        with Session(engine) as session, session.begin():
            session.execute(sa.text("DELETE FROM model_runs WHERE id = :r"), {"r": two.run_id})
            session.execute(
                sa.text("DELETE FROM catalogues WHERE id = :c"), {"c": two.other_catalogue_id}
            )
            results.refresh(session)
        engine.dispose()
