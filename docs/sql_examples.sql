-- The psql sessions of docs/sql.md. Run as the read-only role against the demo database:
--   psql "postgresql://clustermass_reader@127.0.0.1:5432/<demo db>" -e -f docs/sql_examples.sql
\pset null '-'
\pset numericlocale off

-- 1. Scatter per mass bin for the multiband run (the newest run of kind 'multi').
SELECT run_id, name, kind, status FROM v_runs ORDER BY run_id;
SELECT bin, bin_lo, bin_hi, n,
       round(bias_dex::numeric, 4) AS bias_dex, round(sigma_lnm::numeric, 4) AS sigma_lnm,
       round(p16_dex::numeric, 4) AS p16, round(p50_dex::numeric, 4) AS p50,
       round(p84_dex::numeric, 4) AS p84
FROM scatter_by_mass((SELECT run_id FROM v_runs WHERE kind = 'multi'
                      ORDER BY run_id DESC LIMIT 1));

-- ... with its stored bootstrap intervals (68%, 1000 resamples, seed 1) next to it.
SELECT s.bin_lo, s.bin_hi, s.n, round(s.sigma_lnm::numeric, 4) AS sigma_lnm,
       round(b.ci_lo::numeric, 4) AS ci_lo, round(b.ci_hi::numeric, 4) AS ci_hi
FROM scatter_by_mass(2) s
LEFT JOIN v_scatter_bootstrap b
       ON b.run_id = 2 AND b.axis = 'mass' AND b.input_domain = 'mock'
      AND b.bin_lo = s.bin_lo AND b.bin_hi = s.bin_hi AND b.seed = 1;

-- Your own edges, and mass x redshift.
SELECT bin_lo, bin_hi, n, round(sigma_lnm::numeric, 4) AS sigma_lnm
FROM scatter_by_mass(2, '{13.5,14.0,15.1}');
SELECT mass_lo, mass_hi, z_lo, z_hi, n, round(sigma_lnm::numeric, 4) AS sigma_lnm
FROM scatter_by_mass_z(2) WHERE mass_lo >= 14.0;

-- 2. Clusters whose predicted and catalogue masses differ by more than 3 sigma
--    (sigma = predicted and catalogue errors in quadrature: v_residuals.pull).
SELECT cluster_name, round(redshift::numeric, 3) AS z,
       round(log10_m500c::numeric, 3) AS log_m, round(log10_m500c_pred::numeric, 3) AS log_m_pred,
       round(residual_dex::numeric, 3) AS resid, round(pull::numeric, 2) AS pull
FROM v_residuals
WHERE run_id = 2 AND abs(pull) > 3
ORDER BY abs(pull) DESC;

--    ... or more than 3 times the run's own scatter (no per-cluster errors needed).
SELECT r.cluster_name, round(r.residual_dex::numeric, 3) AS resid,
       round((r.residual_dex / (s.sigma_lnm / ln(10)))::numeric, 2) AS n_sigma
FROM v_residuals r, scatter_by_mass(2, '{-Infinity,Infinity}') s
WHERE r.run_id = 2 AND r.input_domain = 'mock'
  AND abs(r.residual_dex) > 3 * s.sigma_lnm / ln(10)
ORDER BY abs(r.residual_dex) DESC LIMIT 5;

-- 3. Compare runs (and the scalar proxies) on the whole sample: the materialised summary.
SELECT label, run_id, catalogue_id AS cat, input_domain, n,
       round(bias_dex::numeric, 4) AS bias_dex, round(sigma_lnm::numeric, 4) AS sigma_lnm,
       round((sigma_lnm * 100)::numeric, 2) AS "sigma_lnM_%"
FROM v_scatter_summary
WHERE axis = 'all'
ORDER BY sigma_lnm;

--    Run against run, bin by bin (live, with your edges): multiband minus single band.
SELECT m.bin_lo, m.bin_hi, m.n,
       round(s.sigma_lnm::numeric, 4) AS single, round(m.sigma_lnm::numeric, 4) AS multi,
       round((m.sigma_lnm - s.sigma_lnm)::numeric, 4) AS diff
FROM scatter_by_mass(2) m JOIN scatter_by_mass(1) s USING (bin)
ORDER BY bin;

--    A CNN against the L_X proxy per redshift bin.
SELECT c.bin_lo, c.bin_hi, c.n, round(c.sigma_lnm::numeric, 4) AS multimodal_cnn,
       round(p.sigma_lnm::numeric, 4) AS l_x_proxy
FROM scatter_by_z(3) c JOIN proxy_scatter_by_z(1, 'L_X') p USING (bin);

-- The reader cannot touch the base tables.
SELECT count(*) FROM predictions;
