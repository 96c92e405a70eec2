"""the scatter index: exact binned scatter over 1e6 predictions without reading them all

Revision ID: 0011_scatter_index
Revises: 0010_fast_ingest_results
Create Date: 2026-11-30 03:10:00

Issue 19, item 3 (``scatter_by_mass`` over a run of 10^6 predictions in < 200 ms p50, arbitrary
bin edges, exact percentiles). The plain functions of 0010 read every prediction of a bin and
sort its residuals (the sort of ~10^6 residuals and the scan are each ~100-250 ms on 2 cores).

* tables ``results_index_runs`` / ``_blocks`` / ``_cells`` (db/tables/results_index.py): a
  run's predictions per (input domain, catalogue) sorted along mass and along redshift, cut
  into blocks (count, residual sum, sum of squared deviations, axis range) and, per block,
  residual counts in cells of ``cell_width_dex``;
* ``results_build_index(run_id, block_rows, cell_width_dex, min_predictions)`` builds a run's
  index (refuses, returning false, a run with a non-finite or absurd residual, or with fewer
  than ``min_predictions`` predictions (NULL: the setting
  ``clustermass.scatter_index_min_predictions``, else 50,000): the plain path serves it);
* statement triggers on ``predictions`` delete a run's index on any write to its predictions
  (transition tables name the runs; TRUNCATE drops every index): missing, never stale. A
  build and a write of the same run serialise on an advisory lock;
* ``scatter_by_mass`` / ``scatter_by_z`` (same signatures, CREATE OR REPLACE) use the index
  when the run has one: blocks inside a bin are summed, the predictions of the partial blocks
  at its edges are read (covering index), the cells locate each percentile's order statistics
  and only that cell's predictions in the bin are read and sorted. N, bias and the variance are
  exact sums (Chan et al. 1979 pairwise combination); the percentiles are ``percentile_cont``'s,
  value for value. Without an index they run the 0010 query, kept as ``scatter_by_mass_exact``
  / ``scatter_by_z_exact`` (also public: the reference the index is tested against);
* ``ix_predictions_run_residual``: (run_id, residual_dex) covering the percentile step;
* ``refresh_results()`` builds the index of every run that lacks one before refreshing
  ``v_scatter_summary``.

``scatter_by_mass_z`` keeps the plain query (the index is one-dimensional).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0011_scatter_index"
down_revision: str | Sequence[str] | None = "0010_fast_ingest_results"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER = "clustermass_reader"
F8A = "double precision[]"
# pg_advisory_xact_lock(LOCK_CLASS, run_id): builds (exclusive) and writes (shared) of one run.
LOCK_CLASS = 190011
DEFAULT_BLOCK_ROWS = 8192
DEFAULT_CELL_WIDTH = 0.002
# Smaller runs keep the plain query: on 2 cores it answers a run of 5,000 in ~2 ms and of 20,000
# in ~7 ms, where the index costs ~10-17 ms of planning and statements (docs/benchmarks.md).
DEFAULT_MIN_PREDICTIONS = 50_000
# ... unless this setting says otherwise (ALTER DATABASE ... SET, or SET in a session).
MIN_PREDICTIONS_SETTING = "clustermass.scatter_index_min_predictions"
# Residuals beyond this [dex] are not indexed (the run keeps the plain path): floor(r / w) must
# stay a bigint and no physical residual is 1000 dex.
MAX_ABS_RESIDUAL = 1000


def _module(filename: str, name: str) -> ModuleType:
    """An earlier revision's module (its frozen SQL text)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES = [
    """
CREATE TABLE results_index_runs (
    run_id integer NOT NULL,
    block_rows integer NOT NULL,
    cell_width_dex double precision NOT NULL,
    n_predictions bigint NOT NULL,
    built_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT pk_results_index_runs PRIMARY KEY (run_id),
    CONSTRAINT fk_results_index_runs_run_id_model_runs FOREIGN KEY (run_id)
        REFERENCES model_runs (id) ON DELETE CASCADE,
    CONSTRAINT ck_results_index_runs_block_rows_positive CHECK (block_rows > 0),
    CONSTRAINT ck_results_index_runs_cell_width_positive CHECK (cell_width_dex > 0)
)""",
    """
CREATE TABLE results_index_blocks (
    run_id integer NOT NULL,
    axis varchar(8) NOT NULL,
    input_domain varchar(16) NOT NULL,
    catalogue_id integer NOT NULL,
    block integer NOT NULL,
    lo double precision NOT NULL,
    hi double precision NOT NULL,
    n bigint NOT NULL,
    s1 double precision NOT NULL,
    m2 double precision NOT NULL,
    CONSTRAINT pk_results_index_blocks PRIMARY KEY (run_id, axis, input_domain, catalogue_id,
                                                    block),
    CONSTRAINT fk_results_index_blocks_run_id_results_index_runs FOREIGN KEY (run_id)
        REFERENCES results_index_runs (run_id) ON DELETE CASCADE,
    CONSTRAINT ck_results_index_blocks_axis CHECK (axis IN ('mass', 'z')),
    CONSTRAINT ck_results_index_blocks_range_order CHECK (lo <= hi)
)""",
    """
CREATE TABLE results_index_cells (
    run_id integer NOT NULL,
    axis varchar(8) NOT NULL,
    input_domain varchar(16) NOT NULL,
    catalogue_id integer NOT NULL,
    block integer NOT NULL,
    cell bigint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT pk_results_index_cells PRIMARY KEY (run_id, axis, input_domain, catalogue_id,
                                                   block, cell),
    CONSTRAINT fk_results_index_cells_run_id_results_index_runs FOREIGN KEY (run_id)
        REFERENCES results_index_runs (run_id) ON DELETE CASCADE
)""",
]
COMMENTS = {
    "TABLE results_index_runs": "Runs whose scatter index (blocks and cells) is current",
    "COLUMN results_index_runs.block_rows": "Predictions per block (more where equal axis values "
    "straddle a cut)",
    "COLUMN results_index_runs.cell_width_dex": "Width of the residual cells [dex]",
    "COLUMN results_index_runs.n_predictions": "Predictions with a residual when the index was "
    "built",
    "COLUMN results_index_runs.built_at": "Row creation time (UTC)",
    "TABLE results_index_blocks": "Blocks of a run's predictions sorted along an axis (scatter "
    "index)",
    "COLUMN results_index_blocks.axis": "'mass' (log10 M500c) or 'z' (redshift)",
    "COLUMN results_index_blocks.block": "Order along the axis",
    "COLUMN results_index_blocks.lo": "Smallest axis value in the block (dex or redshift)",
    "COLUMN results_index_blocks.hi": "Largest axis value in the block (dex or redshift)",
    "COLUMN results_index_blocks.n": "Predictions in the block",
    "COLUMN results_index_blocks.s1": "Sum of the residuals [dex]",
    "COLUMN results_index_blocks.m2": "Sum of squared deviations of the residuals from their "
    "mean [dex^2]",
    "TABLE results_index_cells": "Residual counts per block and cell (scatter index)",
    "COLUMN results_index_cells.cell": "floor(residual_dex / cell_width_dex)",
    "COLUMN results_index_cells.n": "Residuals of the block in the cell",
}
INDEX = (
    "CREATE INDEX ix_predictions_run_residual ON predictions (run_id, residual_dex) "
    "INCLUDE (input_domain, cluster_catalogue_id, cluster_log10_m500c, cluster_redshift, "
    "cluster_id)"
)

BUILD = f"""
CREATE FUNCTION results_build_index(run_id integer,
                                    block_rows integer DEFAULT {DEFAULT_BLOCK_ROWS},
                                    cell_width_dex double precision DEFAULT {DEFAULT_CELL_WIDTH},
                                    min_predictions bigint DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    p_run ALIAS FOR $1;
    n_rows bigint;
    refused boolean;
    ax text;
BEGIN
    IF block_rows IS NULL OR block_rows < 1 OR cell_width_dex IS NULL
       OR NOT (cell_width_dex > 0 AND cell_width_dex < 'Infinity') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('results_build_index: block_rows must be >= 1 and cell_width_dex '
                             'finite and > 0; got %s and %s', block_rows, cell_width_dex);
    END IF;
    -- Writes of this run's predictions take the shared lock (results_index_invalidate): the
    -- build reads them only once they are committed, and a write after the build deletes it.
    PERFORM pg_advisory_xact_lock({LOCK_CLASS}, p_run);
    DELETE FROM results_index_runs i WHERE i.run_id = p_run;
    IF NOT EXISTS (SELECT 1 FROM model_runs m WHERE m.id = p_run) THEN
        RETURN false;
    END IF;
    SELECT count(*),
           coalesce(bool_or(NOT (abs(p.residual_dex) < {MAX_ABS_RESIDUAL})
                            OR p.cluster_log10_m500c = 'NaN' OR p.cluster_redshift = 'NaN'
                            OR p.cluster_catalogue_id IS NULL), false)
    INTO n_rows, refused
    FROM predictions p WHERE p.run_id = p_run AND p.residual_dex IS NOT NULL;
    IF refused OR n_rows < coalesce(
            min_predictions,
            nullif(current_setting('{MIN_PREDICTIONS_SETTING}', true), '')::bigint,
            {DEFAULT_MIN_PREDICTIONS}) THEN
        -- the plain path serves this run: NaN or absurd residuals, or a run small enough that
        -- the plain query beats the index's fixed cost (~20 statements per call)
        RETURN false;
    END IF;
    INSERT INTO results_index_runs (run_id, block_rows, cell_width_dex, n_predictions)
    VALUES (p_run, block_rows, cell_width_dex, n_rows);
    FOREACH ax IN ARRAY ARRAY['mass', 'z'] LOOP
        -- rank(): equal axis values share a rank, hence a block (no value straddles two).
        EXECUTE format($q$
            WITH ranked AS MATERIALIZED (
                SELECT p.input_domain, p.cluster_catalogue_id AS catalogue_id, p.%1$I AS x,
                       p.residual_dex AS r,
                       ((rank() OVER (PARTITION BY p.input_domain, p.cluster_catalogue_id
                                      ORDER BY p.%1$I) - 1) / $2)::integer AS block
                FROM predictions p
                WHERE p.run_id = $1 AND p.residual_dex IS NOT NULL AND p.%1$I IS NOT NULL
            ), blocks AS (
                INSERT INTO results_index_blocks
                    (run_id, axis, input_domain, catalogue_id, block, lo, hi, n, s1, m2)
                SELECT $1, $4, k.input_domain, k.catalogue_id, k.block, min(k.x), max(k.x),
                       count(*), sum(k.r), var_pop(k.r) * count(*)
                FROM ranked k GROUP BY k.input_domain, k.catalogue_id, k.block
            )
            INSERT INTO results_index_cells
                (run_id, axis, input_domain, catalogue_id, block, cell, n)
            SELECT $1, $4, k.input_domain, k.catalogue_id, k.block, floor(k.r / $3)::bigint,
                   count(*)
            FROM ranked k GROUP BY k.input_domain, k.catalogue_id, k.block, 6
            $q$, CASE ax WHEN 'mass' THEN 'cluster_log10_m500c' ELSE 'cluster_redshift' END)
        USING p_run, block_rows, cell_width_dex, ax;
    END LOOP;
    -- fresh statistics: the functions' plans join blocks to cells by index
    ANALYZE results_index_blocks;
    ANALYZE results_index_cells;
    RETURN true;
END
$fn$"""

INVALIDATE = f"""
CREATE FUNCTION results_index_invalidate() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    runs integer[];
    r integer;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM results_index_runs;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        runs := ARRAY(SELECT DISTINCT n.run_id FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        runs := ARRAY(SELECT DISTINCT o.run_id FROM old_rows o);
    ELSE
        runs := ARRAY(SELECT o.run_id FROM old_rows o UNION SELECT n.run_id FROM new_rows n);
    END IF;
    FOREACH r IN ARRAY runs LOOP
        PERFORM pg_advisory_xact_lock_shared({LOCK_CLASS}, r);
    END LOOP;
    DELETE FROM results_index_runs i WHERE i.run_id = ANY (runs);
    RETURN NULL;
END
$fn$"""
TRIGGERS = [
    "CREATE TRIGGER predictions_index_insert AFTER INSERT ON predictions "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION results_index_invalidate()",
    "CREATE TRIGGER predictions_index_update AFTER UPDATE ON predictions "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION results_index_invalidate()",
    "CREATE TRIGGER predictions_index_delete AFTER DELETE ON predictions "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION results_index_invalidate()",
    "CREATE TRIGGER predictions_index_truncate AFTER TRUNCATE ON predictions "
    "FOR EACH STATEMENT EXECUTE FUNCTION results_index_invalidate()",
]
TRIGGER_NAMES = ("insert", "update", "delete", "truncate")

# One bin's exact sums and the cells of its percentiles' order statistics. Parameters: $1 run,
# $2 axis ('mass' / 'z'), $3 input domain (NULL: all), $4 catalogue (NULL: all), $5 / $6 the bin
# [lo, hi), $7 cell width. %1$I: the axis column of v_residuals.
BIN_STATS = """
WITH blk AS MATERIALIZED (
    SELECT b.input_domain, b.catalogue_id, b.block, b.n, b.s1, b.m2, b.lo, b.hi
    FROM results_index_blocks b
    WHERE b.run_id = $1 AND b.axis = $2
      AND ($3::text IS NULL OR b.input_domain = $3)
      AND ($4::integer IS NULL OR b.catalogue_id = $4)
      AND b.lo >= $5 AND b.hi < $6
), grp AS (
    SELECT g.input_domain, g.catalogue_id, min(f.lo) AS lo_full, max(f.hi) AS hi_full
    FROM (SELECT DISTINCT b.input_domain, b.catalogue_id
          FROM results_index_blocks b
          WHERE b.run_id = $1 AND b.axis = $2
            AND ($3::text IS NULL OR b.input_domain = $3)
            AND ($4::integer IS NULL OR b.catalogue_id = $4)) g
    LEFT JOIN blk f ON f.input_domain = g.input_domain AND f.catalogue_id = g.catalogue_id
    GROUP BY g.input_domain, g.catalogue_id
), raw AS MATERIALIZED (
    -- the bin's predictions outside its whole blocks: below the first, above the last
    SELECT q.r FROM grp CROSS JOIN LATERAL (
        SELECT v.residual_dex AS r FROM v_residuals v
        WHERE v.run_id = $1 AND v.input_domain = grp.input_domain
          AND v.catalogue_id = grp.catalogue_id AND v.residual_dex IS NOT NULL
          AND v.%1$I >= $5 AND v.%1$I < coalesce(grp.lo_full, $6)
        UNION ALL
        SELECT v.residual_dex FROM v_residuals v
        WHERE v.run_id = $1 AND v.input_domain = grp.input_domain
          AND v.catalogue_id = grp.catalogue_id AND v.residual_dex IS NOT NULL
          AND v.%1$I > grp.hi_full AND v.%1$I < $6
    ) q
), parts AS (
    SELECT f.n::double precision AS n, f.s1, f.m2 FROM blk f
    UNION ALL
    SELECT count(*), sum(w.r), var_pop(w.r) * count(*) FROM raw w HAVING count(*) > 0
), tot AS (
    SELECT coalesce(sum(p.n), 0)::bigint AS n, sum(p.s1) / nullif(sum(p.n), 0) AS mean
    FROM parts p
), dev AS (  -- pairwise combination of the parts' sums of squared deviations
    SELECT sum(p.m2 + p.n * (p.s1 / p.n - t.mean) ^ 2) AS m2 FROM parts p CROSS JOIN tot t
), cells AS (
    SELECT c.cell, sum(c.k) AS k FROM (
        SELECT x.cell, x.n AS k
        FROM blk f CROSS JOIN LATERAL (
            SELECT c.cell, c.n FROM results_index_cells c
            WHERE c.run_id = $1 AND c.axis = $2 AND c.input_domain = f.input_domain
              AND c.catalogue_id = f.catalogue_id AND c.block = f.block) x
        UNION ALL
        SELECT floor(w.r / $7)::bigint, 1 FROM raw w
    ) c GROUP BY c.cell
), cum AS MATERIALIZED (
    SELECT c.cell, (sum(c.k) OVER (ORDER BY c.cell) - c.k)::bigint AS before FROM cells c
), tgt AS (  -- percentile_cont's rows: floor and ceil of f * (n - 1), 0-based
    SELECT u.j, floor(u.f * (t.n - 1)::double precision)::bigint AS k0,
           ceil(u.f * (t.n - 1)::double precision)::bigint AS k1
    FROM tot t, unnest('{0.16,0.5,0.84}'::double precision[]) WITH ORDINALITY AS u(f, j)
    WHERE t.n > 0
), pick AS (
    SELECT g.j, g.k0, g.k1, a.cell AS c0, a.before AS b0,
           (SELECT c.cell FROM cum c WHERE c.before <= g.k1 ORDER BY c.cell DESC LIMIT 1) AS c1
    FROM tgt g
    CROSS JOIN LATERAL (SELECT c.cell, c.before FROM cum c WHERE c.before <= g.k0
                        ORDER BY c.cell DESC LIMIT 1) a
)
SELECT t.n, t.mean, d.m2,
       array(SELECT p.c0 FROM pick p ORDER BY p.j) AS c0,
       array(SELECT p.c1 FROM pick p ORDER BY p.j) AS c1,
       array(SELECT p.k0 - p.b0 FROM pick p ORDER BY p.j) AS skip,
       array(SELECT p.k1 - p.k0 + 1 FROM pick p ORDER BY p.j) AS take
FROM tot t CROSS JOIN dev d"""

# The bin's residuals in cells c0..c1, sorted, from the (run_id, residual_dex) index: $1 run,
# $2 domain, $3 catalogue, $4 / $5 first and last cell, $6 cell width, $7 / $8 the bin,
# $9 rows to skip, $10 rows to take.
CELL_VALUES = """
SELECT array(
    SELECT v.residual_dex FROM v_residuals v
    WHERE v.run_id = $1 AND ($2::text IS NULL OR v.input_domain = $2)
      AND ($3::integer IS NULL OR v.catalogue_id = $3)
      AND v.residual_dex >= ($4 - 1) * $6 AND v.residual_dex < ($5 + 2) * $6
      AND floor(v.residual_dex / $6)::bigint BETWEEN $4 AND $5
      AND v.%1$I >= $7 AND v.%1$I < $8
    ORDER BY v.residual_dex OFFSET $9 LIMIT $10)"""

STAT_COLUMNS = """n bigint, bias_dex double precision, sigma_lnm double precision,
    p16_dex double precision, p50_dex double precision, p84_dex double precision"""
ONE_D_COLUMNS = f"bin integer, bin_lo double precision, bin_hi double precision, {STAT_COLUMNS}"

INDEXED = """
CREATE OR REPLACE FUNCTION {name}(run_id integer, {edges_param} {F8A} DEFAULT {default},
                                  input_domain text DEFAULT 'mock',
                                  catalogue_id integer DEFAULT NULL)
RETURNS TABLE ({columns})
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
DECLARE
    p_run ALIAS FOR $1;
    p_edges ALIAS FOR $2;
    p_domain ALIAS FOR $3;
    cat integer;
    w double precision;
    s record;
    x double precision[];
    h double precision;
    pct double precision[];
    fractions constant double precision[] := '{{0.16,0.5,0.84}}';
BEGIN
    PERFORM results_check_edges(p_edges, '{edges_param}');
    SELECT i.cell_width_dex INTO w FROM results_index_runs i WHERE i.run_id = p_run;
    IF w IS NULL THEN  -- no current index: the plain query
        RETURN QUERY EXECUTE 'SELECT * FROM {name}_exact($1, $2, $3, $4)'
            USING p_run, p_edges, p_domain, $4;
        RETURN;
    END IF;
    cat := (SELECT coalesce($4, r.catalogue_id) FROM v_runs r WHERE r.run_id = p_run);
    FOR i IN 1 .. cardinality(p_edges) - 1 LOOP
        EXECUTE format({stats}, '{column}') INTO s
            USING p_run, '{axis}', p_domain, cat, p_edges[i], p_edges[i + 1], w;
        bin := i;
        bin_lo := p_edges[i];
        bin_hi := p_edges[i + 1];
        n := s.n;
        IF s.n = 0 THEN
            bias_dex := NULL; sigma_lnm := NULL;
            p16_dex := NULL; p50_dex := NULL; p84_dex := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        bias_dex := s.mean;
        sigma_lnm := CASE WHEN s.n > 1 THEN sqrt(s.m2 / (s.n - 1)) * ln(10::double precision) END;
        pct := '{{}}';
        FOR j IN 1 .. 3 LOOP
            EXECUTE format({values}, '{column}') INTO x
                USING p_run, p_domain, cat, (s.c0)[j], (s.c1)[j], w, p_edges[i], p_edges[i + 1],
                      (s.skip)[j], (s.take)[j];
            -- percentile_cont: lo + (h - floor(h)) * (hi - lo), h = f * (n - 1)
            h := fractions[j] * (s.n - 1)::double precision;
            pct := pct || CASE WHEN (s.take)[j] = 1 THEN x[1]
                               ELSE x[1] + (h - floor(h)) * (x[2] - x[1]) END;
        END LOOP;
        p16_dex := pct[1];
        p50_dex := pct[2];
        p84_dex := pct[3];
        RETURN NEXT;
    END LOOP;
END
$fn$"""


def _dollar(sql: str) -> str:
    return "$sql$" + sql + "$sql$"


def _indexed_functions() -> dict[str, str]:
    """Signature -> CREATE OR REPLACE statement of the indexed 1-D functions."""
    out = {}
    for name, edges_param, default, column, axis in (
        ("scatter_by_mass", "mass_edges", "'{13.5,13.75,14.0,14.25,14.5,15.1}'", "log10_m500c",
         "mass"),
        ("scatter_by_z", "z_edges", "'{0.0,0.15,0.3,0.5}'", "redshift", "z"),
    ):  # fmt: skip
        out[f"{name}(integer, {F8A}, text, integer)"] = INDEXED.format(
            name=name,
            edges_param=edges_param,
            default=default,
            F8A=F8A,
            columns=ONE_D_COLUMNS,
            stats=_dollar(BIN_STATS),
            values=_dollar(CELL_VALUES),
            column=column,
            axis=axis,
        )
    return out


def _exact_functions(rev0010: ModuleType) -> dict[str, str]:
    """Signature -> CREATE statement of 0010's 1-D functions under the names ``*_exact``."""
    out = {}
    for signature, ddl in rev0010._functions().items():
        name = signature.split("(")[0]
        if name == "scatter_by_mass_z":
            continue
        renamed = ddl.replace(f"CREATE FUNCTION {name}(", f"CREATE FUNCTION {name}_exact(", 1)
        assert renamed != ddl
        out[signature.replace(name, f"{name}_exact", 1)] = renamed
    return out


REFRESH = """
CREATE OR REPLACE FUNCTION refresh_results() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    -- the scatter index of every run with predictions that lacks one (revision 0011)
    PERFORM results_build_index(m.id) FROM model_runs m
    WHERE NOT EXISTS (SELECT 1 FROM results_index_runs i WHERE i.run_id = m.id)
      AND EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = m.id);
    -- CONCURRENTLY: readers keep seeing the previous summary while it is rebuilt.
    REFRESH MATERIALIZED VIEW CONCURRENTLY v_scatter_summary;
END
$fn$"""


def upgrade() -> None:
    rev0010 = _module("0010_fast_ingest_results.py", "_clustermass_rev0010")
    for ddl in TABLES:
        op.execute(ddl)
    for target, text in COMMENTS.items():
        quoted = text.replace("'", "''")
        op.execute(f"COMMENT ON {target} IS '{quoted}'")
    op.execute(INDEX)
    op.execute(BUILD)
    op.execute("REVOKE ALL ON FUNCTION results_build_index(integer, integer, double precision, bigint) "
               "FROM PUBLIC")  # fmt: skip
    op.execute(INVALIDATE)
    for ddl in TRIGGERS:
        op.execute(ddl)
    exact = _exact_functions(rev0010)
    for ddl in exact.values():
        op.execute(ddl)
    indexed = _indexed_functions()
    for ddl in indexed.values():
        op.execute(ddl)
    op.execute(REFRESH)
    for signature in [*exact, *indexed]:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {READER}")
    # The indexed functions run with the caller's rights and read the index tables (derived
    # sums and counts of what the reader may already see through v_residuals).
    op.execute(
        f"GRANT SELECT ON results_index_runs, results_index_blocks, results_index_cells TO {READER}"
    )


def downgrade() -> None:
    rev0010 = _module("0010_fast_ingest_results.py", "_clustermass_rev0010")
    rev0002 = rev0010._rev0002()
    op.execute(rev0002.REFRESH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    # CREATE OR REPLACE keeps the functions' identity: v_scatter_summary still depends on them.
    for signature, ddl in rev0010._functions().items():
        if signature.startswith("scatter_by_mass_z"):
            continue
        op.execute(ddl.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for signature in _exact_functions(rev0010):
        op.execute(f"DROP FUNCTION {signature}")
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER predictions_index_{name} ON predictions")
    op.execute("DROP FUNCTION results_index_invalidate()")
    op.execute("DROP FUNCTION results_build_index(integer, integer, double precision, bigint)")
    op.execute("DROP INDEX ix_predictions_run_residual")
    for table in ("results_index_cells", "results_index_blocks", "results_index_runs"):
        op.execute(f"DROP TABLE {table}")
