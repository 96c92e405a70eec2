"""The truth-table columns: name, unit and meaning (the single source for code and docs).

Little-h units use ``astropy.cosmology.units.littleh``: "Msun/h" is ``u.Msun / cu.littleh``.
Luminosities, fluxes and exposures are for the run's cosmology (h = 0.6766 for Planck18), not
scaled by h.
"""

from __future__ import annotations

import astropy.units as u
from astropy.cosmology import units as cu

__all__ = ["TRUTH_COLUMNS", "MPC_H", "MSUN_H", "REQUIRED_COLUMNS"]

MPC_H = u.Mpc / cu.littleh
MSUN_H = u.Msun / cu.littleh
_ONE = u.dimensionless_unscaled

# name, unit (None: plain column), description
TRUTH_COLUMNS: tuple[tuple[str, u.UnitBase | None, str], ...] = (
    ("cluster_id", None, "Unique id 'mock-s<seed>-<row:06d>'"),
    ("snapshot", None, "Snapshot index (position in config.snapshot_redshifts)"),
    ("halo_id", None, "The halo: the same halo appears at several snapshots (mocks/assembly.py)"),
    ("redshift", _ONE, "Snapshot redshift"),
    ("pos_x", MPC_H, "Comoving box position x [h^-1 Mpc]; map columns run along +x"),
    ("pos_y", MPC_H, "Comoving box position y [h^-1 Mpc]; map rows run along +y"),
    ("pos_z", MPC_H, "Comoving box position z [h^-1 Mpc]; the line of sight"),
    ("log10_m500c", None, "log10(M500c / (h^-1 Msun)) (plain float, the regression target)"),
    ("m500c", MSUN_H, "Mass inside R500c [h^-1 Msun] (Tinker+08 mass function)"),
    ("r500c", MPC_H, "R500c, PROPER length [h^-1 Mpc]"),
    ("m200c", MSUN_H, "NFW M200c from M500c and c200c [h^-1 Msun]"),
    ("r200c", MPC_H, "R200c, proper [h^-1 Mpc]"),
    ("c200c", _ONE, "NFW concentration r200c/r_s: diemer19 mean x the halo's assembly scatter"),
    ("z_form", _ONE, "Half-mass formation redshift of the halo's MAH (Wechsler+02)"),
    ("accretion_rate", _ONE, "d ln M / d ln a at the snapshot (Wechsler+02 MAH)"),
    ("f_gas", _ONE, "Gas fraction M_gas / M500c inside R500c (the gas that makes the photons)"),
    ("f_nt", _ONE, "Non-thermal pressure fraction at R500c (lowers the hydrostatic T)"),
    ("T", u.keV, "Idealised ICM temperature (ambient gas) [keV]"),
    (
        "L_X",
        u.erg / u.s,
        "Idealised ICM luminosity, rest-frame 0.5-2.0 keV, inside projected R < R500c, main "
        "halo (ambient + cool core; excludes a merging subcluster) [erg/s]",
    ),
    ("M_gas", MSUN_H, "ICM mass inside R500c [h^-1 Msun]"),
    ("M_star", MSUN_H, "Total stellar mass inside R500c (BCG + satellites + ICL) [h^-1 Msun]"),
    ("N_gal", None, "Number of member galaxies (3D, inside R200c)"),
    ("N_gal_obs", None, "Galaxies in the cylinder |x|,|y| < 2.3 h^-1 Mpc, |v| < 3785 km/s"),
    ("sigma_v_true", u.km / u.s, "Members' 3D velocity dispersion as a 1D-equivalent [km/s]"),
    (
        "sigma_v_obs",
        u.km / u.s,
        "Standard deviation of v_los of all galaxies in the cylinder (interlopers included)",
    ),
    ("N_phot", None, "All counts in the TOTAL map, 0.5-7 keV (ICM + AGN + background)"),
    ("N_phot_500c", None, "TOTAL-map counts in pixels whose centre is within R500c (not 2 R500c)"),
    (
        "N_phot_bkgsub",
        _ONE,
        "N_phot minus the expected background and mean field-AGN counts (an observer's estimate)",
    ),
    ("N_phot_500c_bkgsub", _ONE, "N_phot_500c minus the same expectation inside the aperture"),
    ("N_phot_icm", None, "Counts in the ICM-only map (hidden truth)"),
    ("N_phot_agn", None, "Counts in the AGN-only map (hidden truth)"),
    ("L_X_ce", u.erg / u.s, "Core-excised L_X, 0.15 < R/R500c < 1 (hidden truth) [erg/s]"),
    ("L_X_core", u.erg / u.s, "L_X inside R < 0.15 R500c (hidden truth) [erg/s]"),
    (
        "c_SB",
        _ONE,
        "Surface-brightness concentration L(<40 kpc) / L(<400 kpc), projected, physical radii, "
        "before PSF (Santos+08; hidden truth)",
    ),
    ("L_X_sub", u.erg / u.s, "Subcluster luminosity inside its own R500c, 0 if none [erg/s]"),
    (
        "sub_separation",
        MPC_H,
        "Projected subcluster distance from the main X-ray centre, comoving (NaN if none)",
    ),
    (
        "F_X",
        u.erg / u.s / u.cm**2,
        "Unabsorbed observed-frame 0.5-2 keV flux of the main halo inside R500c",
    ),
    (
        "cts_icm_500c_expected",
        _ONE,
        "Expected ICM counts (all bands) inside projected R500c of the main halo, before PSF",
    ),
    ("cool_core", None, "Hosts a cool-core component (hidden truth)"),
    (
        "merger",
        None,
        "Major merger within one crossing time (Fakhouri+10 rate x accretion rate): subcluster, "
        "boosted sigma_DM, no cool core",
    ),
    ("merger_ratio", _ONE, "Mass ratio M2/M1 of the visible merger (FMBK10 kernel; 0 if none)"),
    ("t_since_merger", u.Gyr, "Time since the merger's first core passage [Gyr] (NaN if none)"),
    (
        "merger_boost_L",
        _ONE,
        "Transient L_X factor (ambient + compressed merger core) / ambient (1 if no merger; "
        "1 everywhere with the default, boosts-off config), included in L_X and the photons",
    ),
    (
        "merger_boost_T",
        _ONE,
        "Transient T boost (1 if no merger or boosts off, the default), included in T and the "
        "spectra",
    ),
    ("sigma_dm", u.km / u.s, "1D dark-matter velocity dispersion (Evrard+08 with scatter)"),
    ("n_expected_members", _ONE, "Expected member count including intrinsic scatter"),
    ("halo_bias", _ONE, "Linear halo bias (Tinker+10), used for correlated interlopers"),
    ("n_agn_field", None, "Field point sources drawn over the map and its margin"),
    ("n_agn_cluster", None, "Member galaxies hosting an X-ray AGN"),
    ("exposure", u.s, "Unvignetted exposure [s]"),
    ("nH", u.cm**-2, "Galactic hydrogen column [cm^-2]"),
    ("bkg_per_pixel", _ONE, "Expected diffuse background counts per pixel, per band (n, 3)"),
    ("pixscale_arcsec", u.arcsec, "Pixel side [arcsec] at the snapshot distance"),
    ("psf_hew_arcsec", u.arcsec, "PSF half-energy width [arcsec]"),
    ("rc_ambient", MPC_H, "Core radius of the ambient beta model, comoving [h^-1 Mpc]"),
    ("beta_ambient", _ONE, "Beta of the ambient component"),
    ("rc_cool_core", MPC_H, "Core radius of the cool-core component, comoving (NaN if none)"),
    ("axis_ratio", _ONE, "Projected axis ratio of the ambient component (<= 1)"),
    ("position_angle", u.rad, "Major-axis angle from the +x (column) axis [rad]"),
    ("offset_x", MPC_H, "X-ray centroid offset from the halo centre, comoving, x [h^-1 Mpc]"),
    ("offset_y", MPC_H, "Same, y [h^-1 Mpc]"),
)

REQUIRED_COLUMNS = tuple(name for name, _, _ in TRUTH_COLUMNS)
