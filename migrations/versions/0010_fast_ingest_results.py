"""results per catalogue and faster: a stored residual, the catalogue on predictions

Revision ID: 0010_fast_ingest_results
Revises: 0009_run_states
Create Date: 2026-11-29 17:30:00

Issue 16 ("Numbers"): a run's scatter counted the predictions of every catalogue the run
predicted (N = 190 for a 150-cluster catalogue). Issue 19 (results SQL over 1e6 predictions).

* ``predictions.cluster_catalogue_id``: the cluster's catalogue, kept by the same triggers as
  ``cluster_log10_m500c`` / ``cluster_redshift`` (never written by clients);
* ``predictions.residual_dex``: a stored generated column, ``log10_m500c_pred -
  cluster_log10_m500c``, read by ``v_residuals`` and the binned functions (no per-row
  arithmetic at query time);
* the covering indexes ``ix_predictions_run_mass`` / ``_run_redshift`` now include
  ``residual_dex`` and ``cluster_catalogue_id`` (instead of ``log10_m500c_pred``);
* ``v_residuals`` takes ``catalogue_id`` and ``residual_dex`` from those columns (same columns,
  same order: its join with ``clusters`` is removed by the planner when unused);
* ``scatter_by_mass`` / ``_by_z`` / ``_by_mass_z`` take a last argument ``catalogue_id integer
  DEFAULT NULL``: NULL means the run's training catalogue (``model_runs.catalogue_id``; every
  catalogue when the run records none);
* ``v_scatter_summary`` has one run subject per (run, input domain, catalogue):
  ``run:<run>:<domain>:<catalogue>``, with ``catalogue_id`` filled in.

The 0002 objects this revision replaces are restored on downgrade from 0002's own (frozen) text.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0010_fast_ingest_results"
down_revision: str | Sequence[str] | None = "0009_run_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER = "clustermass_reader"
MASS_EDGES = "'{13.5,13.75,14.0,14.25,14.5,15.1}'::double precision[]"
Z_EDGES = "'{0.0,0.15,0.3,0.5}'::double precision[]"
ALL_EDGES = "'{-Infinity,Infinity}'::double precision[]"
F8A = "double precision[]"
RUN_SIGNATURES_0002 = (
    f"scatter_by_mass(integer, {F8A}, text)",
    f"scatter_by_z(integer, {F8A}, text)",
    f"scatter_by_mass_z(integer, {F8A}, {F8A}, text)",
)


def _rev0002() -> ModuleType:
    """Revision 0002's module (its frozen SQL text, for the downgrade)."""
    path = Path(__file__).with_name("0002_results_sql.py")
    spec = importlib.util.spec_from_file_location("_clustermass_rev0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRIGGER_FROM_CLUSTERS = """
CREATE OR REPLACE FUNCTION results_predictions_from_clusters() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT c.log10_m500c, c.redshift, c.catalogue_id
    INTO NEW.cluster_log10_m500c, NEW.cluster_redshift, NEW.cluster_catalogue_id
    FROM clusters c WHERE c.id = NEW.cluster_id;
    RETURN NEW;
END
$fn$"""
TRIGGER_TO_PREDICTIONS = [
    """
CREATE OR REPLACE FUNCTION results_clusters_to_predictions() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE predictions SET cluster_log10_m500c = NEW.log10_m500c,
                           cluster_redshift = NEW.redshift,
                           cluster_catalogue_id = NEW.catalogue_id
    WHERE cluster_id = NEW.id;
    RETURN NULL;
END
$fn$""",
    "DROP TRIGGER clusters_to_predictions ON clusters",
    """
CREATE TRIGGER clusters_to_predictions
AFTER UPDATE OF log10_m500c, redshift, catalogue_id ON clusters
FOR EACH ROW
WHEN (OLD.log10_m500c IS DISTINCT FROM NEW.log10_m500c OR OLD.redshift IS DISTINCT FROM NEW.redshift
      OR OLD.catalogue_id IS DISTINCT FROM NEW.catalogue_id)
EXECUTE FUNCTION results_clusters_to_predictions()""",
]

INDEXES = {
    "ix_predictions_run_mass": "(run_id, cluster_log10_m500c) INCLUDE (input_domain, "
    "cluster_catalogue_id, cluster_redshift, residual_dex, cluster_id)",
    "ix_predictions_run_redshift": "(run_id, cluster_redshift) INCLUDE (input_domain, "
    "cluster_catalogue_id, cluster_log10_m500c, residual_dex, cluster_id)",
}

# Same columns in the same order as 0002's view (CREATE OR REPLACE VIEW requires it).
V_RESIDUALS = """
        SELECT p.id AS prediction_id, p.run_id, r.name AS run_name, r.kind AS run_kind,
               p.cluster_id, p.cluster_catalogue_id AS catalogue_id, c.name AS cluster_name,
               c.external_id, c.snapshot, p.cluster_redshift AS redshift,
               p.cluster_log10_m500c AS log10_m500c, c.log10_m500c_err, p.log10_m500c_pred,
               p.log10_m500c_pred_err, p.residual_dex,
               p.residual_dex
                 / NULLIF(sqrt(coalesce(p.log10_m500c_pred_err, 0) ^ 2
                               + coalesce(c.log10_m500c_err, 0) ^ 2), 0) AS pull,
               p.fold, p.input_domain, p.instrument
        FROM predictions p
        LEFT JOIN clusters c ON c.id = p.cluster_id
        LEFT JOIN model_runs r ON r.id = p.run_id"""

STAT_COLUMNS = """n bigint, bias_dex double precision, sigma_lnm double precision,
    p16_dex double precision, p50_dex double precision, p84_dex double precision"""
TWO_D_COLUMNS = f"""mass_bin integer, mass_lo double precision, mass_hi double precision,
    z_bin integer, z_lo double precision, z_hi double precision, {STAT_COLUMNS}"""
ONE_D_COLUMNS = f"bin integer, bin_lo double precision, bin_hi double precision, {STAT_COLUMNS}"

# The catalogue a run's statistics use: the argument, else the run's training catalogue
# (NULL, i.e. every catalogue, for a run that records none). Uncorrelated: evaluated once.
CATALOGUE = "(SELECT coalesce({param}, r.catalogue_id) FROM v_runs r WHERE r.run_id = $1)"
# Rows of one run, input domain and catalogue, with a residual. {domain} / {cat} are parameters.
SOURCE = """v_residuals v
        WHERE v.run_id = $1 AND ({domain} IS NULL OR v.input_domain = {domain})
          AND v.residual_dex IS NOT NULL
          AND (v.catalogue_id = {catalogue} OR {catalogue} IS NULL)"""

AGGREGATES = """count(*) AS n, avg(v.residual_dex) AS bias, stddev_samp(v.residual_dex) AS sd,
               percentile_cont('{0.16,0.5,0.84}'::double precision[])
                   WITHIN GROUP (ORDER BY v.residual_dex) AS pct"""
STATS = "s.bias, s.sd * ln(10::double precision), s.pct[1], s.pct[2], s.pct[3]"
# One aggregate per bin (LATERAL): empty bins give n = 0 and NULL statistics, and each bin is
# one index-only range scan of ix_predictions_run_mass / _run_redshift.
ONE_D_BODY = """
    SELECT b.i, {edges}[b.i], {edges}[b.i + 1], s.n, {stats}
    FROM generate_series(1, cardinality({edges}) - 1) AS b(i)
    CROSS JOIN LATERAL (
        SELECT {aggregates}
        FROM {source}
          AND v.{column} >= {edges}[b.i] AND v.{column} < {edges}[b.i + 1]
    ) AS s
    WHERE results_check_edges({edges}, '{param}')
    ORDER BY b.i"""
TWO_D_BODY = """
    SELECT m.i, $2[m.i], $2[m.i + 1], s.zi, $3[s.zi], $3[s.zi + 1], coalesce(s.n, 0), {stats}
    FROM generate_series(1, cardinality($2) - 1) AS m(i)
    CROSS JOIN LATERAL (
        SELECT zz.i AS zi, g.*
        FROM generate_series(1, cardinality($3) - 1) AS zz(i)
        LEFT JOIN (
            SELECT width_bucket(v.redshift, $3) AS zb, {aggregates}
            FROM {source}
              AND v.log10_m500c >= $2[m.i] AND v.log10_m500c < $2[m.i + 1]
            GROUP BY 1
        ) AS g ON g.zb = zz.i
    ) AS s
    WHERE results_check_edges($2, 'mass_edges') AND results_check_edges($3, 'z_edges')
    ORDER BY m.i, s.zi"""


def _source(domain: str, cat: str) -> str:
    catalogue = CATALOGUE.format(param=cat)
    return SOURCE.format(domain=domain, catalogue=catalogue)


def _function(name: str, params: str, columns: str, body: str) -> str:
    # No SET clause (work_mem, jit): it would keep the planner from inlining the function, and
    # the generic plan of a non-inlined body measured twice as slow as the inlined one.
    return f"""
CREATE FUNCTION {name}({params})
RETURNS TABLE ({columns})
LANGUAGE sql STABLE PARALLEL SAFE AS $fn${body}
$fn$"""


def _functions() -> dict[str, str]:
    """Signature -> CREATE statement of the run functions of this revision."""
    mass = f"mass_edges {F8A} DEFAULT {MASS_EDGES}"
    z = f"z_edges {F8A} DEFAULT {Z_EDGES}"
    domain = "input_domain text DEFAULT 'mock'"
    cat = "catalogue_id integer DEFAULT NULL"
    common = {"stats": STATS, "aggregates": AGGREGATES}

    def one_d(column: str, param: str) -> str:
        return ONE_D_BODY.format(
            source=_source("$3", "$4"), edges="$2", column=column, param=param, **common
        )

    return {
        f"scatter_by_mass(integer, {F8A}, text, integer)": _function(
            "scatter_by_mass",
            f"run_id integer, {mass}, {domain}, {cat}",
            ONE_D_COLUMNS,
            one_d("log10_m500c", "mass_edges"),
        ),
        f"scatter_by_z(integer, {F8A}, text, integer)": _function(
            "scatter_by_z",
            f"run_id integer, {z}, {domain}, {cat}",
            ONE_D_COLUMNS,
            one_d("redshift", "z_edges"),
        ),
        f"scatter_by_mass_z(integer, {F8A}, {F8A}, text, integer)": _function(
            "scatter_by_mass_z",
            f"run_id integer, {mass}, {z}, {domain}, {cat}",
            TWO_D_COLUMNS,
            TWO_D_BODY.format(source=_source("$4", "$5"), **common),
        ),
    }


SUMMARY = f"""
CREATE MATERIALIZED VIEW v_scatter_summary AS
WITH subjects AS (
    SELECT 'run'::text AS source,
           format('run:%s:%s:%s', d.run_id, d.input_domain, d.catalogue_id) AS subject,
           d.run_id, d.catalogue_id, NULL::text AS proxy, d.input_domain,
           coalesce(r.name, '') AS label
    FROM (SELECT DISTINCT p.run_id, p.input_domain, p.cluster_catalogue_id AS catalogue_id
          FROM predictions p) d
    LEFT JOIN model_runs r ON r.id = d.run_id
    UNION ALL
    SELECT 'proxy', format('proxy:%s:%s', d.catalogue_id, d.proxy), NULL, d.catalogue_id,
           d.proxy, CASE cat.kind WHEN 'simulation' THEN 'mock' ELSE 'observed' END, d.proxy
    FROM (SELECT DISTINCT c.catalogue_id, e.proxy
          FROM proxy_estimates e JOIN clusters c ON c.id = e.cluster_id) d
    JOIN catalogues cat ON cat.id = d.catalogue_id
)
SELECT s.source, s.subject, s.run_id, s.catalogue_id, s.proxy, s.input_domain, s.label,
       b.axis, b.bin, b.bin_lo, b.bin_hi, b.n, b.bias_dex, b.sigma_lnm,
       b.p16_dex, b.p50_dex, b.p84_dex
FROM subjects s
CROSS JOIN LATERAL (
    SELECT 'all'::text AS axis, x.*
    FROM scatter_by_mass(s.run_id, {ALL_EDGES}, s.input_domain, s.catalogue_id) x
    WHERE s.source = 'run'
    UNION ALL
    SELECT 'mass', x.*
    FROM scatter_by_mass(s.run_id, input_domain => s.input_domain, catalogue_id => s.catalogue_id) x
    WHERE s.source = 'run'
    UNION ALL
    SELECT 'z', x.*
    FROM scatter_by_z(s.run_id, input_domain => s.input_domain, catalogue_id => s.catalogue_id) x
    WHERE s.source = 'run'
    UNION ALL
    SELECT 'all', x.* FROM proxy_scatter_by_mass(s.catalogue_id, s.proxy, {ALL_EDGES}) x
    WHERE s.source = 'proxy'
    UNION ALL
    SELECT 'mass', x.* FROM proxy_scatter_by_mass(s.catalogue_id, s.proxy) x
    WHERE s.source = 'proxy'
    UNION ALL
    SELECT 'z', x.* FROM proxy_scatter_by_z(s.catalogue_id, s.proxy) x
    WHERE s.source = 'proxy'
) b
WITH DATA"""
SUMMARY_INDEX = (
    "CREATE UNIQUE INDEX ix_v_scatter_summary_key ON v_scatter_summary (subject, axis, bin)"
)


def _grant(signatures: Sequence[str]) -> None:
    for signature in signatures:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {READER}")
    op.execute(f"GRANT SELECT ON v_scatter_summary TO {READER}")


def _indexes(definitions: dict[str, str]) -> None:
    for name, columns in definitions.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON predictions {columns}")


def upgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW v_scatter_summary")
    for signature in RUN_SIGNATURES_0002:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute(
        "ALTER TABLE predictions ADD COLUMN cluster_catalogue_id integer, "
        "ADD COLUMN residual_dex double precision "
        "GENERATED ALWAYS AS (log10_m500c_pred - cluster_log10_m500c) STORED"
    )
    op.execute(
        "COMMENT ON COLUMN predictions.cluster_catalogue_id IS "
        "'Copy of clusters.catalogue_id, kept by trigger (do not write)'"
    )
    op.execute(
        "COMMENT ON COLUMN predictions.residual_dex IS "
        "'log10_m500c_pred - cluster_log10_m500c [dex] (generated)'"
    )
    op.execute(TRIGGER_FROM_CLUSTERS)
    for ddl in TRIGGER_TO_PREDICTIONS:
        op.execute(ddl)
    op.execute(
        "UPDATE predictions p SET cluster_catalogue_id = c.catalogue_id "
        "FROM clusters c WHERE c.id = p.cluster_id"
    )
    op.execute(f"CREATE OR REPLACE VIEW v_residuals AS {V_RESIDUALS}")
    _indexes(INDEXES)
    functions = _functions()
    for ddl in functions.values():
        op.execute(ddl)
    op.execute(SUMMARY)
    op.execute(SUMMARY_INDEX)
    _grant(list(functions))


def downgrade() -> None:
    old = _rev0002()
    op.execute("DROP MATERIALIZED VIEW v_scatter_summary")
    for signature in reversed(list(_functions())):
        op.execute(f"DROP FUNCTION {signature}")
    op.execute(f"CREATE OR REPLACE VIEW v_residuals AS {old.VIEWS['v_residuals']}")
    op.execute(old.TRIGGERS[0].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute(old.TRIGGERS[2].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute("DROP TRIGGER clusters_to_predictions ON clusters")
    op.execute(old.TRIGGERS[3])
    include = "input_domain, {other}, log10_m500c_pred, cluster_id"
    _indexes(
        {
            "ix_predictions_run_mass": "(run_id, cluster_log10_m500c) INCLUDE ("
            + include.format(other="cluster_redshift")
            + ")",
            "ix_predictions_run_redshift": "(run_id, cluster_redshift) INCLUDE ("
            + include.format(other="cluster_log10_m500c")
            + ")",
        }
    )
    op.execute("ALTER TABLE predictions DROP COLUMN residual_dex, DROP COLUMN cluster_catalogue_id")
    functions = {s: ddl for s, ddl in old._functions().items() if s in RUN_SIGNATURES_0002}
    for ddl in functions.values():
        op.execute(ddl)
    op.execute(old.SUMMARY)
    op.execute(SUMMARY_INDEX)
    _grant(list(functions))
