"""results in SQL: binned scatter functions, views, summary, proxy estimates, reader role

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 11:36:25.764712

Creates (see docs/sql.md for the user-facing description):

* tables ``proxy_estimates`` and ``scatter_bootstrap`` (ORM in ``db/tables/results.py``);
* columns ``predictions.cluster_log10_m500c`` / ``cluster_redshift`` (copies of the cluster's
  values kept by triggers) and a covering index, so a binned query reads one index;
* views ``v_runs``, ``v_clusters``, ``v_observables``, ``v_attributions``, ``v_residuals``,
  ``v_proxy_residuals``, ``v_scatter_bootstrap``;
* set-returning functions ``scatter_by_mass``, ``scatter_by_z``, ``scatter_by_mass_z`` (network
  runs) and ``proxy_scatter_by_mass``, ``proxy_scatter_by_z``, ``proxy_scatter_by_mass_z``
  (scalar proxies), with the helper ``results_check_edges``;
* the materialised view ``v_scatter_summary`` and its refresher ``refresh_results()``;
* the role ``clustermass_reader`` (cluster-wide; created only when missing, never dropped here)
  with SELECT on the views and EXECUTE on the functions of this database only.

The SQL text below is frozen with this revision on purpose: later revisions must not change
what this one created (so nothing here is imported from ``db/``). The DDL is built from
constants of this file only, never from user input.
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER = "clustermass_reader"
MASS_EDGES = "'{13.5,13.75,14.0,14.25,14.5,15.1}'::double precision[]"
Z_EDGES = "'{0.0,0.15,0.3,0.5}'::double precision[]"
ALL_EDGES = "'{-Infinity,Infinity}'::double precision[]"

# predictions.cluster_log10_m500c / cluster_redshift are copies of the cluster's values, kept
# exact by these triggers whatever the client writes, so the binned functions need no join.
TRIGGERS = [
    """
CREATE FUNCTION results_predictions_from_clusters() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT c.log10_m500c, c.redshift INTO NEW.cluster_log10_m500c, NEW.cluster_redshift
    FROM clusters c WHERE c.id = NEW.cluster_id;
    RETURN NEW;
END
$fn$""",
    """
CREATE TRIGGER predictions_from_clusters BEFORE INSERT OR UPDATE ON predictions
FOR EACH ROW EXECUTE FUNCTION results_predictions_from_clusters()""",
    """
CREATE FUNCTION results_clusters_to_predictions() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE predictions SET cluster_log10_m500c = NEW.log10_m500c,
                           cluster_redshift = NEW.redshift
    WHERE cluster_id = NEW.id;
    RETURN NULL;
END
$fn$""",
    """
CREATE TRIGGER clusters_to_predictions AFTER UPDATE OF log10_m500c, redshift ON clusters
FOR EACH ROW
WHEN (OLD.log10_m500c IS DISTINCT FROM NEW.log10_m500c OR OLD.redshift IS DISTINCT FROM NEW.redshift)
EXECUTE FUNCTION results_clusters_to_predictions()""",
]

VIEWS = {
    "v_runs": """
        SELECT r.id AS run_id, r.name, r.kind, r.status, r.fold_scheme, r.catalogue_id,
               r.seed, r.git_commit, r.metrics, r.config, r.created_at, r.finished_at
        FROM model_runs r""",
    "v_clusters": """
        SELECT c.id AS cluster_id, c.catalogue_id, cat.name AS catalogue_name,
               cat.kind AS catalogue_kind, c.external_id, c.name, c.ra_deg, c.dec_deg,
               c.pos_x_mpc_h, c.pos_y_mpc_h, c.pos_z_mpc_h, c.snapshot, c.redshift,
               c.log10_m500c, c.log10_m500c_err, c.r500c_mpc_h, c.mass_note
        FROM clusters c JOIN catalogues cat ON cat.id = c.catalogue_id""",
    "v_observables": """
        SELECT o.cluster_id, o.name, o.value, o.unit, o.error, o.note
        FROM observables o""",
    "v_attributions": """
        SELECT a.run_id, a.cluster_id, a.method, a.r_core_over_r500c, a.median_saliency_agn,
               a.median_saliency_icm, a.band_fractions, a.summary, a.product_id, a.created_at
        FROM attributions a""",
    # Mass and redshift come from the trigger-kept copies on predictions, and the joins are
    # LEFT JOINs to unique keys (every prediction has its cluster: foreign key), so the planner
    # removes them when their columns are unused: the binned functions read one index.
    "v_residuals": """
        SELECT p.id AS prediction_id, p.run_id, r.name AS run_name, r.kind AS run_kind,
               p.cluster_id, c.catalogue_id, c.name AS cluster_name, c.external_id,
               c.snapshot, p.cluster_redshift AS redshift, p.cluster_log10_m500c AS log10_m500c,
               c.log10_m500c_err, p.log10_m500c_pred, p.log10_m500c_pred_err,
               p.log10_m500c_pred - p.cluster_log10_m500c AS residual_dex,
               (p.log10_m500c_pred - p.cluster_log10_m500c)
                 / NULLIF(sqrt(coalesce(p.log10_m500c_pred_err, 0) ^ 2
                               + coalesce(c.log10_m500c_err, 0) ^ 2), 0) AS pull,
               p.fold, p.input_domain, p.instrument
        FROM predictions p
        LEFT JOIN clusters c ON c.id = p.cluster_id
        LEFT JOIN model_runs r ON r.id = p.run_id""",
    "v_proxy_residuals": """
        SELECT e.id AS estimate_id, e.proxy, e.method, e.fit_group, e.slope, e.intercept,
               e.n_fit, e.cluster_id, c.catalogue_id, c.name AS cluster_name, c.external_id,
               c.snapshot, c.redshift, c.log10_m500c, e.log10_m500c_est,
               e.log10_m500c_est - c.log10_m500c AS residual_dex
        FROM proxy_estimates e
        JOIN clusters c ON c.id = e.cluster_id""",
    "v_scatter_bootstrap": """
        SELECT b.run_id, b.input_domain, b.axis, b.bin_lo, b.bin_hi, b.n, b.bias_dex,
               b.sigma_lnm, b.ci_lo, b.ci_hi, b.ci_level, b.n_resamples, b.seed, b.created_at
        FROM scatter_bootstrap b""",
}

CHECK_EDGES = """
CREATE FUNCTION results_check_edges(edges double precision[], what text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    ok boolean := edges IS NOT NULL AND array_ndims(edges) = 1 AND array_lower(edges, 1) = 1
                  AND cardinality(edges) >= 2 AND array_position(edges, NULL) IS NULL
                  AND array_position(edges, 'NaN'::double precision) IS NULL;
BEGIN
    IF ok THEN
        FOR i IN 2 .. cardinality(edges) LOOP
            IF edges[i] <= edges[i - 1] THEN
                ok := false;
            END IF;
        END LOOP;
    END IF;
    IF NOT ok THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s must hold at least 2 strictly increasing bin edges (no NULL '
                             'or NaN); got %s', what, coalesce(edges::text, 'NULL'));
    END IF;
    RETURN true;
END
$fn$"""

STAT_COLUMNS = """n bigint, bias_dex double precision, sigma_lnm double precision,
    p16_dex double precision, p50_dex double precision, p84_dex double precision"""
TWO_D_COLUMNS = f"""mass_bin integer, mass_lo double precision, mass_hi double precision,
    z_bin integer, z_lo double precision, z_hi double precision, {STAT_COLUMNS}"""
ONE_D_COLUMNS = f"bin integer, bin_lo double precision, bin_hi double precision, {STAT_COLUMNS}"

# The binned statistics. {source} is a constant FROM/WHERE clause over rows with
# (log10_m500c, redshift, residual_dex); {edges}, {mass}, {z} are the positional parameters that
# hold the bin edges. Bins are half-open, [lo, hi). One aggregate per bin (LATERAL): an aggregate
# without GROUP BY always returns a row, so empty bins come out with n = 0 and NULL statistics,
# and each bin is an index range scan (ix_predictions_run_mass / _run_redshift), so no sort of
# the whole run is needed, only the per-bin sort of percentile_cont.
AGGREGATES = """count(*) AS n, avg(v.residual_dex) AS bias, stddev_samp(v.residual_dex) AS sd,
               percentile_cont('{{0.16,0.5,0.84}}'::double precision[])
                   WITHIN GROUP (ORDER BY v.residual_dex) AS pct"""
STATS = "s.bias, s.sd * ln(10::double precision), s.pct[1], s.pct[2], s.pct[3]"
ONE_D_BODY = f"""
    SELECT b.i, {{edges}}[b.i], {{edges}}[b.i + 1], s.n, {STATS}
    FROM generate_series(1, cardinality({{edges}}) - 1) AS b(i)
    CROSS JOIN LATERAL (
        SELECT {AGGREGATES}
        FROM {{source}} AND v.residual_dex IS NOT NULL
             AND v.{{column}} >= {{edges}}[b.i] AND v.{{column}} < {{edges}}[b.i + 1]
    ) AS s
    WHERE results_check_edges({{edges}}, '{{param}}')
    ORDER BY b.i"""
TWO_D_BODY = f"""
    SELECT m.i, {{mass}}[m.i], {{mass}}[m.i + 1], s.zi, {{z}}[s.zi], {{z}}[s.zi + 1],
           coalesce(s.n, 0), {STATS}
    FROM generate_series(1, cardinality({{mass}}) - 1) AS m(i)
    CROSS JOIN LATERAL (
        SELECT zz.i AS zi, g.*
        FROM generate_series(1, cardinality({{z}}) - 1) AS zz(i)
        LEFT JOIN (
            SELECT width_bucket(v.redshift, {{z}}) AS zb, {AGGREGATES}
            FROM {{source}} AND v.residual_dex IS NOT NULL
                 AND v.log10_m500c >= {{mass}}[m.i] AND v.log10_m500c < {{mass}}[m.i + 1]
            GROUP BY 1
        ) AS g ON g.zb = zz.i
    ) AS s
    WHERE results_check_edges({{mass}}, 'mass_edges') AND results_check_edges({{z}}, 'z_edges')
    ORDER BY m.i, s.zi"""


def _function(name: str, params: str, columns: str, body: str) -> str:
    return f"""
CREATE FUNCTION {name}({params})
RETURNS TABLE ({columns})
LANGUAGE sql STABLE PARALLEL SAFE AS $fn${body}
$fn$"""


def _functions() -> dict[str, str]:
    """Signature -> CREATE statement of every public results function."""
    f8a = "double precision[]"
    mass = f"mass_edges {f8a} DEFAULT {MASS_EDGES}"
    z = f"z_edges {f8a} DEFAULT {Z_EDGES}"
    domain = "input_domain text DEFAULT 'mock'"
    run_1d = "v_residuals v WHERE v.run_id = $1 AND ($3 IS NULL OR v.input_domain = $3)"
    run_2d = "v_residuals v WHERE v.run_id = $1 AND ($4 IS NULL OR v.input_domain = $4)"
    proxy = "v_proxy_residuals v WHERE v.catalogue_id = $1 AND v.proxy = $2"

    def one_d(source: str, edges: str, column: str, param: str) -> str:
        return ONE_D_BODY.format(source=source, edges=edges, column=column, param=param)

    return {
        f"scatter_by_mass(integer, {f8a}, text)": _function(
            "scatter_by_mass", f"run_id integer, {mass}, {domain}", ONE_D_COLUMNS,
            one_d(run_1d, "$2", "log10_m500c", "mass_edges"),
        ),
        f"scatter_by_z(integer, {f8a}, text)": _function(
            "scatter_by_z", f"run_id integer, {z}, {domain}", ONE_D_COLUMNS,
            one_d(run_1d, "$2", "redshift", "z_edges"),
        ),
        f"scatter_by_mass_z(integer, {f8a}, {f8a}, text)": _function(
            "scatter_by_mass_z", f"run_id integer, {mass}, {z}, {domain}", TWO_D_COLUMNS,
            TWO_D_BODY.format(source=run_2d, mass="$2", z="$3"),
        ),
        f"proxy_scatter_by_mass(integer, text, {f8a})": _function(
            "proxy_scatter_by_mass", f"catalogue_id integer, proxy text, {mass}", ONE_D_COLUMNS,
            one_d(proxy, "$3", "log10_m500c", "mass_edges"),
        ),
        f"proxy_scatter_by_z(integer, text, {f8a})": _function(
            "proxy_scatter_by_z", f"catalogue_id integer, proxy text, {z}", ONE_D_COLUMNS,
            one_d(proxy, "$3", "redshift", "z_edges"),
        ),
        f"proxy_scatter_by_mass_z(integer, text, {f8a}, {f8a})": _function(
            "proxy_scatter_by_mass_z", f"catalogue_id integer, proxy text, {mass}, {z}",
            TWO_D_COLUMNS, TWO_D_BODY.format(source=proxy, mass="$3", z="$4"),
        ),
    }


SUMMARY = f"""
CREATE MATERIALIZED VIEW v_scatter_summary AS
WITH subjects AS (
    SELECT 'run'::text AS source, format('run:%s:%s', d.run_id, d.input_domain) AS subject,
           d.run_id, NULL::integer AS catalogue_id, NULL::text AS proxy, d.input_domain,
           coalesce(r.name, '') AS label
    FROM (SELECT DISTINCT p.run_id, p.input_domain FROM predictions p) d
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
    FROM scatter_by_mass(s.run_id, {ALL_EDGES}, s.input_domain) x
    WHERE s.source = 'run'
    UNION ALL
    SELECT 'mass', x.* FROM scatter_by_mass(s.run_id, input_domain => s.input_domain) x
    WHERE s.source = 'run'
    UNION ALL
    SELECT 'z', x.* FROM scatter_by_z(s.run_id, input_domain => s.input_domain) x
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

REFRESH = """
CREATE FUNCTION refresh_results() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    -- CONCURRENTLY: readers keep seeing the previous summary while it is rebuilt.
    REFRESH MATERIALIZED VIEW CONCURRENTLY v_scatter_summary;
END
$fn$"""

CREATE_READER = f"""
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
        -- LOGIN without a password: with password authentication nobody can log in as this
        -- role until an operator sets one (from the environment; docs/sql.md). Sessions are
        -- read-only by default; privileges (not this default) are what forbid writes.
        CREATE ROLE {READER} LOGIN NOINHERIT;
        ALTER ROLE {READER} SET default_transaction_read_only = on;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database on this server
END
$do$"""


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('proxy_estimates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('proxy', sa.String(length=64), nullable=False, comment='Observable name (observables.name)'),
    sa.Column('log10_m500c_est', sa.Float(), nullable=False, comment='Inferred log10 M500c [h^-1 Msun]'),
    sa.Column('method', sa.String(length=64), nullable=False, comment="How it was inferred, e.g. 'ols_per_snapshot'"),
    sa.Column('fit_group', sa.String(length=64), nullable=False, comment="Sample the relation was fitted on, e.g. 'snapshot:3' or 'all'"),
    sa.Column('slope', sa.Float(), nullable=False, comment='Fitted slope alpha = d ln s / d ln M'),
    sa.Column('intercept', sa.Float(), nullable=False, comment='Fitted intercept pi = ln s at M = 2e14 h^-1 Msun'),
    sa.Column('n_fit', sa.Integer(), nullable=False, comment='Clusters in the fit'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Row creation time (UTC)'),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_proxy_estimates_cluster_id_clusters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proxy_estimates')),
    sa.UniqueConstraint('cluster_id', 'proxy', name=op.f('uq_proxy_estimates_cluster_id_proxy')),
    comment='Masses inferred from scalar proxies (inverted scaling relations)'
    )
    op.create_index('ix_proxy_estimates_proxy', 'proxy_estimates', ['proxy'], unique=False)
    op.create_table('scatter_bootstrap',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('input_domain', sa.String(length=16), nullable=False, comment="Predictions used: 'mock' or 'observed' (predictions.input_domain)"),
    sa.Column('axis', sa.String(length=8), nullable=False, comment="Binned quantity: 'mass' (log10 M500c), 'z' or 'all' (one bin)"),
    sa.Column('bin_lo', sa.Float(), nullable=False, comment='Lower bin edge (inclusive; log10 h^-1 Msun or redshift)'),
    sa.Column('bin_hi', sa.Float(), nullable=False, comment='Upper bin edge (exclusive)'),
    sa.Column('n', sa.Integer(), nullable=False, comment='Predictions in the bin'),
    sa.Column('bias_dex', sa.Float(), nullable=True, comment='Mean residual log10 M_pred - log10 M_true [dex]'),
    sa.Column('sigma_lnm', sa.Float(), nullable=True, comment='stddev_samp(residual) * ln 10 (NULL when n < 2)'),
    sa.Column('ci_lo', sa.Float(), nullable=True, comment='Lower bootstrap percentile of sigma_lnM'),
    sa.Column('ci_hi', sa.Float(), nullable=True, comment='Upper bootstrap percentile of sigma_lnM'),
    sa.Column('ci_level', sa.Float(), nullable=False, comment='Central probability of [ci_lo, ci_hi], e.g. 0.68'),
    sa.Column('n_resamples', sa.Integer(), nullable=False, comment='Bootstrap resamples'),
    sa.Column('seed', sa.BigInteger(), nullable=False, comment='numpy SeedSequence entropy'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Row creation time (UTC)'),
    sa.CheckConstraint("axis IN ('all', 'mass', 'z')", name=op.f('ck_scatter_bootstrap_axis')),
    sa.CheckConstraint('bin_lo < bin_hi', name=op.f('ck_scatter_bootstrap_bin_order')),
    sa.CheckConstraint('ci_level > 0 AND ci_level < 1', name=op.f('ck_scatter_bootstrap_ci_level')),
    sa.CheckConstraint('n_resamples > 0', name=op.f('ck_scatter_bootstrap_n_resamples_positive')),
    sa.ForeignKeyConstraint(['run_id'], ['model_runs.id'], name=op.f('fk_scatter_bootstrap_run_id_model_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scatter_bootstrap')),
    sa.UniqueConstraint('run_id', 'input_domain', 'axis', 'bin_lo', 'bin_hi', 'ci_level', 'n_resamples', 'seed', name='uq_scatter_bootstrap_natural_key'),
    comment='Bootstrap CIs of the scatter per bin (written by db.results.store_bootstrap)'
    )
    op.add_column('predictions', sa.Column('cluster_log10_m500c', sa.Float(), nullable=True, comment='Copy of clusters.log10_m500c [h^-1 Msun], kept by trigger (do not write)'))
    op.add_column('predictions', sa.Column('cluster_redshift', sa.Float(), nullable=True, comment='Copy of clusters.redshift, kept by trigger (do not write)'))
    # ### end Alembic commands ###

    for ddl in TRIGGERS:
        op.execute(ddl)
    op.execute(
        "UPDATE predictions p SET cluster_log10_m500c = c.log10_m500c, "
        "cluster_redshift = c.redshift FROM clusters c WHERE c.id = p.cluster_id"
    )
    op.create_index('ix_predictions_run_mass', 'predictions', ['run_id', 'cluster_log10_m500c'], unique=False, postgresql_include=['input_domain', 'cluster_redshift', 'log10_m500c_pred', 'cluster_id'])
    op.create_index('ix_predictions_run_redshift', 'predictions', ['run_id', 'cluster_redshift'], unique=False, postgresql_include=['input_domain', 'cluster_log10_m500c', 'log10_m500c_pred', 'cluster_id'])

    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")
    op.execute(CHECK_EDGES)
    functions = _functions()
    for ddl in functions.values():
        op.execute(ddl)
    op.execute(SUMMARY)
    # REFRESH ... CONCURRENTLY needs a unique index on plain columns.
    op.execute("CREATE UNIQUE INDEX ix_v_scatter_summary_key ON v_scatter_summary (subject, axis, bin)")
    op.execute(REFRESH)

    # Functions are executable by PUBLIC by default: restrict them to the owner and the reader.
    op.execute(CREATE_READER)
    for signature in [*functions, "results_check_edges(double precision[], text)"]:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {READER}")
    op.execute("REVOKE ALL ON FUNCTION refresh_results() FROM PUBLIC")
    for name in [*VIEWS, "v_scatter_summary"]:
        op.execute(f"GRANT SELECT ON {name} TO {READER}")
    # Lets the query CLI check the schema revision before it runs anything.
    op.execute(f"GRANT SELECT ON alembic_version TO {READER}")


def downgrade() -> None:
    # Dropping the objects drops their privileges. The role itself is cluster-wide and other
    # databases on this server may use it: it is kept (docs/sql.md says how to drop it).
    op.execute(f"REVOKE ALL ON alembic_version FROM {READER}")
    op.execute("DROP FUNCTION refresh_results()")
    op.execute("DROP MATERIALIZED VIEW v_scatter_summary")
    for signature in reversed(list(_functions())):
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("DROP FUNCTION results_check_edges(double precision[], text)")
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW {name}")

    op.drop_index('ix_predictions_run_redshift', table_name='predictions')
    op.drop_index('ix_predictions_run_mass', table_name='predictions')
    op.execute("DROP TRIGGER clusters_to_predictions ON clusters")
    op.execute("DROP TRIGGER predictions_from_clusters ON predictions")
    op.execute("DROP FUNCTION results_clusters_to_predictions()")
    op.execute("DROP FUNCTION results_predictions_from_clusters()")

    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_column('predictions', 'cluster_redshift')
    op.drop_column('predictions', 'cluster_log10_m500c')
    op.drop_table('scatter_bootstrap')
    op.drop_index('ix_proxy_estimates_proxy', table_name='proxy_estimates')
    op.drop_table('proxy_estimates')
    # ### end Alembic commands ###
