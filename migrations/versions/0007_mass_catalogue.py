"""mass catalogue: match sets, cluster names, mass estimates, physical clusters, v_mass_catalogue

Revision ID: 0007_mass_catalogue
Revises: 0005
Create Date: 2026-11-29 17:16:28

Issue 17 (the mass catalogue). Creates (docs/sql.md, "The mass catalogue"):

* table ``match_sets`` (one cross-match of two catalogues under one parameter set) and column
  ``cluster_matches.match_set_id``; a pair of clusters may now be in several sets. Existing
  matches are moved into one set per (catalogue pair, method) string;
* table ``cluster_names`` (every name and alias, with the search key ``cm_name_key(name)``),
  filled here from ``clusters.name`` and ``clusters.external_id``;
* table ``mass_estimates`` (estimates keyed by cluster, method and source: dynamical masses);
* function ``cm_name_key(text)``; functions ``match_sets_in_use(integer[])``,
  ``physical_clusters(integer[])`` and ``mass_catalogue(integer[])`` (NULL: the latest set of
  each catalogue pair); views ``v_match_sets``, ``v_cluster_matches``, ``v_cluster_names``,
  ``v_mass_estimates``, ``v_physical_clusters`` and ``v_mass_catalogue``;
* SELECT for ``clustermass_reader`` on those views and on the tables ``match_sets``,
  ``cluster_matches``, ``ingest_files`` and ``ingest_rejects``;
* the unit of the stored dynamical masses (observables ``log10_M500c_dyn`` and
  ``log10_M200c_dyn``, in h^-1 Msun) becomes ``dex(solMass / littleh)``.

The functions read only views and tables the reader may read (they run with the caller's
privileges). The SQL is frozen with this revision: nothing is imported from ``db/``.

Downgrade keeps, for each pair of clusters, its row of the newest set, and drops the rest.
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = '0007_mass_catalogue'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER = "clustermass_reader"

NAME_KEY = r"""
CREATE FUNCTION cm_name_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT regexp_replace(
        regexp_replace(lower(coalesce(name, '')), '[[:space:]_]+', '', 'g'),
        '^(abell|aco)(?=s?[0-9])', 'a')
$fn$"""

VIEWS = {
    "v_match_sets": """
        SELECT s.id AS match_set_id, s.name, s.catalogue_id_a, ka.name AS catalogue_a,
               s.catalogue_id_b, kb.name AS catalogue_b, s.params, s.method, s.n_matches,
               s.created_at, s.computed_at,
               s.id IN (SELECT u.match_set_id FROM match_sets_in_use(NULL) u) AS is_latest
        FROM match_sets s
        JOIN catalogues ka ON ka.id = s.catalogue_id_a
        JOIN catalogues kb ON kb.id = s.catalogue_id_b""",
    "v_cluster_matches": """
        SELECT m.match_set_id, m.cluster_id_a, m.cluster_id_b, m.separation_arcsec, m.delta_z,
               m.method, m.match_set_id IN (SELECT u.match_set_id FROM match_sets_in_use(NULL) u)
                 AS is_latest
        FROM cluster_matches m""",
    "v_cluster_names": """
        SELECT n.cluster_id, n.name, n.name_key, n.source FROM cluster_names n""",
    "v_mass_estimates": """
        SELECT c.id AS cluster_id, k.name AS catalogue_name, 'catalogue'::text AS method,
               k.name::text AS source, NULL::integer AS run_id, c.log10_m500c,
               c.log10_m500c_err, NULL::integer AS n_members, NULL::text AS interlopers,
               '{}'::text[] AS flags, c.mass_note AS note, c.created_at
        FROM clusters c JOIN catalogues k ON k.id = c.catalogue_id
        WHERE k.kind = 'survey' AND c.log10_m500c IS NOT NULL
        UNION ALL
        SELECT e.cluster_id, k.name, e.method::text, e.source::text, NULL::integer,
               e.log10_m500c, e.log10_m500c_err, e.n_members, e.interlopers::text,
               e.flags::text[], coalesce(e.details ->> 'note', ''), e.created_at
        FROM mass_estimates e
        JOIN clusters c ON c.id = e.cluster_id JOIN catalogues k ON k.id = c.catalogue_id
        UNION ALL
        SELECT p.cluster_id, k.name, 'cnn:' || r.kind, 'run:' || r.id || ' ' || r.name, p.run_id,
               p.log10_m500c_pred, p.log10_m500c_pred_err, NULL::integer, NULL::text,
               CASE WHEN p.input_domain = 'observed' THEN ARRAY['out_of_domain']
                    ELSE '{}'::text[] END,
               p.instrument::text, p.created_at
        FROM predictions p
        JOIN model_runs r ON r.id = p.run_id
        JOIN clusters c ON c.id = p.cluster_id JOIN catalogues k ON k.id = c.catalogue_id
        WHERE k.kind = 'survey'""",
}

# Functions that read only what the reader may read (they run with the caller's privileges).
FUNCTIONS = {
    "match_sets_in_use(integer[])": """
CREATE FUNCTION match_sets_in_use(chosen integer[] DEFAULT NULL)
RETURNS TABLE (match_set_id integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT DISTINCT ON (least(s.catalogue_id_a, s.catalogue_id_b),
                        greatest(s.catalogue_id_a, s.catalogue_id_b)) s.id
    FROM match_sets s
    ORDER BY least(s.catalogue_id_a, s.catalogue_id_b),
             greatest(s.catalogue_id_a, s.catalogue_id_b),
             s.id = ANY(coalesce(chosen, '{}'::integer[])) DESC, s.computed_at DESC, s.id DESC
$fn$""",
    "physical_clusters(integer[])": """
CREATE FUNCTION physical_clusters(chosen integer[] DEFAULT NULL)
RETURNS TABLE (cluster_id integer, physical_id integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH RECURSIVE edges AS (
        SELECT m.cluster_id_a AS a, m.cluster_id_b AS b FROM cluster_matches m
        WHERE m.match_set_id IN (SELECT u.match_set_id FROM match_sets_in_use(chosen) u)
    ), both_ways AS (
        SELECT e.a, e.b FROM edges e UNION SELECT e.b, e.a FROM edges e
    ), reach (root, node) AS (
        SELECT c.cluster_id, c.cluster_id FROM v_clusters c WHERE c.catalogue_kind = 'survey'
        UNION
        SELECT r.root, w.b FROM reach r JOIN both_ways w ON w.a = r.node
    )
    SELECT r.root, min(r.node) FROM reach r GROUP BY r.root
$fn$""",
    "mass_catalogue(integer[])": """
CREATE FUNCTION mass_catalogue(chosen integer[] DEFAULT NULL)
RETURNS TABLE (
    physical_id integer, name text, names text[], catalogues text[], cluster_ids integer[],
    n_catalogues integer, ra_deg double precision, dec_deg double precision,
    redshift double precision, catalogue_masses jsonb, dynamical_masses jsonb,
    cnn_masses jsonb, log10_m500c_dyn double precision, log10_m500c_dyn_err double precision,
    log10_m500c_cnn double precision, log10_m500c_cnn_err double precision,
    cnn_run_id integer, flags text[])
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH pc AS (
        SELECT p.cluster_id, p.physical_id FROM physical_clusters(chosen) p
    ), mem AS (
        SELECT pc.physical_id, array_agg(c.cluster_id ORDER BY c.cluster_id) AS ids,
               array_agg(DISTINCT c.catalogue_name::text) AS cats,
               count(DISTINCT c.catalogue_id)::integer AS n_cats, count(*) AS n_rows
        FROM pc JOIN v_clusters c ON c.cluster_id = pc.cluster_id GROUP BY pc.physical_id
    ), nam AS (
        SELECT pc.physical_id, array_agg(DISTINCT n.name::text) AS names
        FROM pc JOIN v_cluster_names n ON n.cluster_id = pc.cluster_id GROUP BY pc.physical_id
    ), est AS (
        SELECT pc.physical_id, e.* FROM pc JOIN v_mass_estimates e ON e.cluster_id = pc.cluster_id
    ), agg AS (
        SELECT est.physical_id,
               jsonb_agg(jsonb_build_object('catalogue', est.catalogue_name,
                   'cluster_id', est.cluster_id, 'log10_m500c', est.log10_m500c,
                   'log10_m500c_err', est.log10_m500c_err) ORDER BY est.cluster_id)
                 FILTER (WHERE est.method = 'catalogue') AS cat_m,
               jsonb_agg(jsonb_build_object('cluster_id', est.cluster_id, 'method', est.method,
                   'source', est.source, 'log10_m500c', est.log10_m500c,
                   'log10_m500c_err', est.log10_m500c_err, 'n_members', est.n_members,
                   'interlopers', est.interlopers, 'flags', est.flags,
                   'created_at', est.created_at) ORDER BY est.created_at, est.source)
                 FILTER (WHERE est.method LIKE 'dynamical%') AS dyn_m,
               jsonb_agg(jsonb_build_object('cluster_id', est.cluster_id, 'method', est.method,
                   'run_id', est.run_id, 'source', est.source, 'log10_m500c', est.log10_m500c,
                   'log10_m500c_err', est.log10_m500c_err, 'flags', est.flags)
                   ORDER BY est.run_id) FILTER (WHERE est.method LIKE 'cnn%') AS cnn_m
        FROM est GROUP BY est.physical_id
    ), fl AS (
        SELECT est.physical_id, array_agg(DISTINCT f.flag) AS flags
        FROM est CROSS JOIN LATERAL unnest(est.flags) AS f(flag) GROUP BY est.physical_id
    ), dyn AS (
        SELECT DISTINCT ON (est.physical_id) est.physical_id, est.log10_m500c,
               est.log10_m500c_err
        FROM est WHERE est.method LIKE 'dynamical%'
        ORDER BY est.physical_id, est.created_at DESC, est.source
    ), cnn AS (
        SELECT DISTINCT ON (est.physical_id) est.physical_id, est.log10_m500c,
               est.log10_m500c_err, est.run_id
        FROM est WHERE est.method LIKE 'cnn%'
        ORDER BY est.physical_id, est.run_id DESC, est.cluster_id
    )
    SELECT pc.physical_id, coalesce(c.name, c.external_id)::text, coalesce(nam.names, '{}'),
           mem.cats, mem.ids, mem.n_cats, c.ra_deg, c.dec_deg, c.redshift,
           coalesce(agg.cat_m, '[]'::jsonb), coalesce(agg.dyn_m, '[]'::jsonb),
           coalesce(agg.cnn_m, '[]'::jsonb), dyn.log10_m500c, dyn.log10_m500c_err,
           cnn.log10_m500c, cnn.log10_m500c_err, cnn.run_id,
           ARRAY(SELECT DISTINCT x FROM unnest(coalesce(fl.flags, '{}'::text[])
                   || CASE WHEN mem.n_rows > mem.n_cats THEN ARRAY['ambiguous_match']
                           ELSE '{}'::text[] END) AS x ORDER BY x)
    FROM pc
    JOIN v_clusters c ON c.cluster_id = pc.physical_id
    JOIN mem ON mem.physical_id = pc.physical_id
    LEFT JOIN nam ON nam.physical_id = pc.physical_id
    LEFT JOIN agg ON agg.physical_id = pc.physical_id
    LEFT JOIN fl ON fl.physical_id = pc.physical_id
    LEFT JOIN dyn ON dyn.physical_id = pc.physical_id
    LEFT JOIN cnn ON cnn.physical_id = pc.physical_id
    WHERE pc.cluster_id = pc.physical_id
    ORDER BY pc.physical_id
$fn$""",
}

# Views over the functions (created after them).
LATE_VIEWS = {
    "v_physical_clusters": "SELECT p.cluster_id, p.physical_id FROM physical_clusters(NULL) p",
    "v_mass_catalogue": "SELECT m.* FROM mass_catalogue(NULL) m",
}
READER_TABLES = ("match_sets", "cluster_matches", "ingest_files", "ingest_rejects")


def upgrade() -> None:
    op.create_table('match_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False, comment='e.g. \'mcxc x spiders_codex [sep<=180", |dz|<=0.05]\''),
    sa.Column('catalogue_id_a', sa.Integer(), nullable=False, comment='Catalogue matched from'),
    sa.Column('catalogue_id_b', sa.Integer(), nullable=False, comment='Catalogue matched to'),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Match parameters: max_sep_arcsec, max_dz, relative_dz'),
    sa.Column('params_key', sa.String(length=64), nullable=False, comment='sha256 of the canonical JSON of params (natural key with the pair)'),
    sa.Column('method', sa.Text(), server_default='', nullable=False),
    sa.Column('n_matches', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Row creation time (UTC)'),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Last time the set was (re)computed (UTC): the newest set of a pair is the latest'),
    sa.CheckConstraint('catalogue_id_a <> catalogue_id_b', name=op.f('ck_match_sets_distinct')),
    sa.ForeignKeyConstraint(['catalogue_id_a'], ['catalogues.id'], name=op.f('fk_match_sets_catalogue_id_a_catalogues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['catalogue_id_b'], ['catalogues.id'], name=op.f('fk_match_sets_catalogue_id_b_catalogues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_sets')),
    sa.UniqueConstraint('catalogue_id_a', 'catalogue_id_b', 'params_key', name=op.f('uq_match_sets_catalogue_id_a_catalogue_id_b_params_key')),
    comment='Cross-match runs of two catalogues, one per parameter set (versioned)'
    )
    op.create_table('cluster_names',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False, comment='The name as the source writes it'),
    sa.Column('name_key', sa.String(length=200), nullable=False, comment='cm_name_key(name): the search key (lower case, no spaces, A<n>)'),
    sa.Column('source', sa.String(length=100), nullable=False, comment="Where it comes from: a column name, 'external_id' or 'iau'"),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_cluster_names_cluster_id_clusters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cluster_names')),
    sa.UniqueConstraint('cluster_id', 'name_key', name=op.f('uq_cluster_names_cluster_id_name_key')),
    comment='Names and aliases of clusters (every name column of the catalogue spec)'
    )
    op.create_index('ix_cluster_names_name_key', 'cluster_names', ['name_key'], unique=False)
    op.create_table('mass_estimates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=64), nullable=False, comment="e.g. 'dynamical:shifting_gapper' (estimator and interloper method)"),
    sa.Column('source', sa.String(length=300), nullable=False, comment="What it was computed from, e.g. 'galaxies:observed/coma.csv'"),
    sa.Column('log10_m500c', sa.Float(), nullable=True, comment='log10 M500c [h^-1 Msun]'),
    sa.Column('log10_m500c_err', sa.Float(), nullable=True, comment='1-sigma uncertainty [dex]'),
    sa.Column('n_members', sa.Integer(), nullable=True, comment='Members used (dynamical)'),
    sa.Column('interlopers', sa.String(length=32), nullable=True, comment='Interloper removal used (dynamical)'),
    sa.Column('flags', postgresql.ARRAY(sa.String(length=32)), server_default='{}', nullable=False, comment="Warnings: 'truncated_velocities', 'few_members', ..."),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False, comment='Diagnostics: dispersions [km/s], M200c, notes, file sha256, ingest file id'),
    sa.Column('file_id', sa.Integer(), nullable=True, comment='Ingestion that made it'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='Row creation time (UTC)'),
    sa.CheckConstraint('n_members IS NULL OR n_members >= 0', name=op.f('ck_mass_estimates_n_members')),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_mass_estimates_cluster_id_clusters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['file_id'], ['ingest_files.id'], name=op.f('fk_mass_estimates_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_estimates')),
    sa.UniqueConstraint('cluster_id', 'method', 'source', name=op.f('uq_mass_estimates_cluster_id_method_source')),
    comment='Mass estimates per cluster, method and source (e.g. dynamical masses)'
    )
    op.create_index(op.f('ix_mass_estimates_cluster_id'), 'mass_estimates', ['cluster_id'], unique=False)
    op.add_column('cluster_matches', sa.Column('match_set_id', sa.Integer(), nullable=True, comment='The cross-match run it belongs to'))
    # existing matches: one set per (catalogue pair, method string), in their order
    op.execute("""
        INSERT INTO match_sets (name, catalogue_id_a, catalogue_id_b, params, params_key, method,
                                n_matches)
        SELECT ka.name || ' x ' || kb.name || ' [' || m.method || ']', ca.catalogue_id,
               cb.catalogue_id, jsonb_build_object('method', m.method), md5(m.method), m.method,
               count(*)
        FROM cluster_matches m
        JOIN clusters ca ON ca.id = m.cluster_id_a JOIN clusters cb ON cb.id = m.cluster_id_b
        JOIN catalogues ka ON ka.id = ca.catalogue_id JOIN catalogues kb ON kb.id = cb.catalogue_id
        GROUP BY ka.name, kb.name, ca.catalogue_id, cb.catalogue_id, m.method
        ORDER BY min(m.id)""")
    op.execute("""
        UPDATE cluster_matches m SET match_set_id = s.id
        FROM clusters ca, clusters cb, match_sets s
        WHERE ca.id = m.cluster_id_a AND cb.id = m.cluster_id_b
          AND s.catalogue_id_a = ca.catalogue_id AND s.catalogue_id_b = cb.catalogue_id
          AND s.method = m.method""")
    op.alter_column('cluster_matches', 'match_set_id', nullable=False)
    op.drop_constraint(op.f('uq_cluster_matches_cluster_id_a_cluster_id_b'), 'cluster_matches', type_='unique')
    op.create_index('ix_cluster_matches_cluster_id_b', 'cluster_matches', ['cluster_id_b'], unique=False)
    op.create_unique_constraint(op.f('uq_cluster_matches_match_set_id_cluster_id_a_cluster_id_b'), 'cluster_matches', ['match_set_id', 'cluster_id_a', 'cluster_id_b'])
    op.create_foreign_key(op.f('fk_cluster_matches_match_set_id_match_sets'), 'cluster_matches', 'match_sets', ['match_set_id'], ['id'], ondelete='CASCADE')
    op.execute(NAME_KEY)
    # dynamical masses are in h^-1 Msun: say so in their unit
    op.execute(
        "UPDATE observables SET unit = 'dex(solMass / littleh)' "
        "WHERE unit = 'dex(solMass)' AND name IN ('log10_M500c_dyn', 'log10_M200c_dyn')"
    )
    op.execute("""
        INSERT INTO cluster_names (cluster_id, name, name_key, source)
        SELECT DISTINCT ON (x.cluster_id, cm_name_key(x.name)) x.cluster_id, x.name,
               cm_name_key(x.name), x.source
        FROM (SELECT id AS cluster_id, name, 'name' AS source, 0 AS o FROM clusters
              WHERE coalesce(name, '') <> ''
              UNION ALL
              SELECT id, external_id, 'external_id', 1 FROM clusters) x
        ORDER BY x.cluster_id, cm_name_key(x.name), x.o""")
    for name in ("v_cluster_names", "v_mass_estimates"):
        op.execute(f"CREATE VIEW {name} AS {VIEWS[name]}")
    for signature, sql in FUNCTIONS.items():
        op.execute(sql)
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {READER}")
    for name in ("v_match_sets", "v_cluster_matches"):
        op.execute(f"CREATE VIEW {name} AS {VIEWS[name]}")
    for name, sql in LATE_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")
    for name in [*VIEWS, *LATE_VIEWS, *READER_TABLES]:
        op.execute(f"GRANT SELECT ON {name} TO {READER}")
    op.execute(f"GRANT EXECUTE ON FUNCTION cm_name_key(text) TO {READER}")


def downgrade() -> None:
    for name in READER_TABLES:
        op.execute(f"REVOKE SELECT ON {name} FROM {READER}")
    for name in [*reversed(LATE_VIEWS), "v_cluster_matches", "v_match_sets"]:
        op.execute(f"DROP VIEW {name}")
    for signature in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {signature}")
    for name in ("v_mass_estimates", "v_cluster_names"):
        op.execute(f"DROP VIEW {name}")
    op.execute("DROP FUNCTION cm_name_key(text)")
    op.execute(
        "UPDATE observables SET unit = 'dex(solMass)' "
        "WHERE unit = 'dex(solMass / littleh)' AND name IN ('log10_M500c_dyn', 'log10_M200c_dyn')"
    )
    # one row per pair of clusters again: the newest set's
    op.execute("""
        DELETE FROM cluster_matches m USING match_sets s
        WHERE s.id = m.match_set_id AND EXISTS (
            SELECT 1 FROM cluster_matches o JOIN match_sets so ON so.id = o.match_set_id
            WHERE o.cluster_id_a = m.cluster_id_a AND o.cluster_id_b = m.cluster_id_b
              AND (so.computed_at, so.id) > (s.computed_at, s.id))""")
    op.drop_constraint(op.f('fk_cluster_matches_match_set_id_match_sets'), 'cluster_matches', type_='foreignkey')
    op.drop_constraint(op.f('uq_cluster_matches_match_set_id_cluster_id_a_cluster_id_b'), 'cluster_matches', type_='unique')
    op.drop_index('ix_cluster_matches_cluster_id_b', table_name='cluster_matches')
    op.create_unique_constraint(op.f('uq_cluster_matches_cluster_id_a_cluster_id_b'), 'cluster_matches', ['cluster_id_a', 'cluster_id_b'], postgresql_nulls_not_distinct=False)
    op.drop_column('cluster_matches', 'match_set_id')
    op.drop_index(op.f('ix_mass_estimates_cluster_id'), table_name='mass_estimates')
    op.drop_table('mass_estimates')
    op.drop_index('ix_cluster_names_name_key', table_name='cluster_names')
    op.drop_table('cluster_names')
    op.drop_table('match_sets')
