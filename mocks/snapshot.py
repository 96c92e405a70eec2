"""Per-snapshot quantities shared by all clusters at one redshift: geometry, response, backgrounds."""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.cosmology import FLRW
from numpy.typing import NDArray

from mocks.config import HALF_WIDTH_MPC_H, MockConfig
from mocks.errors import MockParameterError
from mocks.galaxies import InterloperField
from mocks.halos import comoving_distance_h
from mocks.spectra import (
    Response,
    flat_band_fractions,
    load_response,
    powerlaw_band_rates,
    thermal_rate_per_norm,
)
from mocks.xray import DEG2_PER_SR, Optics, lognlogs_intensity, lognlogs_number

__all__ = ["Snapshot"]


@dataclass(frozen=True)
class Snapshot:
    """Everything that depends on the snapshot redshift only.

    Attributes
    ----------
    index : int
        Snapshot number (position in ``snapshot_redshifts``).
    z, ez : float
        Redshift and E(z) = H(z)/H0.
    d_m_h : float
        Comoving transverse distance [h^-1 Mpc].
    d_m_cm, d_l_cm : float
        Comoving transverse and luminosity distances [cm].
    optics : Optics
        Pixel scale and PSF at this distance.
    response : Response
        Energy grid and effective area.
    field : InterloperField
        Interloper density and correlation weights.
    agn_per_deg2 : float
        Field sources per deg^2 between s_min and s_max.
    agn_pad : float
        Margin around the map where field sources are placed, comoving [h^-1 Mpc].
    """

    index: int
    z: float
    ez: float
    d_m_h: float
    d_m_cm: float
    d_l_cm: float
    optics: Optics
    response: Response
    field: InterloperField
    agn_per_deg2: float
    agn_pad: float
    cfg: MockConfig

    @classmethod
    def build(cls, cfg: MockConfig, cosmo: FLRW, index: int) -> Snapshot:
        """Precompute the snapshot ``index`` of ``cfg``."""
        z = cfg.snapshot_redshifts[index]
        ez = float(cosmo.efunc(z))
        d_m_h = comoving_distance_h(cosmo, z)
        d_m_cm = float(cosmo.comoving_transverse_distance(z).to_value(u.cm))
        optics = Optics.build(
            d_m_h, cfg.xray.psf_hew_arcsec, cfg.xray.psf_king_beta, len(cfg.xray.bands_kev)
        )
        if lognlogs_intensity(cfg.agn) >= cfg.xray.cxb_intensity:
            raise MockParameterError(
                "xray.cxb_intensity",
                f"the explicit field sources (s > agn.s_min) already give "
                f"{lognlogs_intensity(cfg.agn):.3g} erg/s/cm^2/deg^2, more than the total CXB",
            )
        return cls(
            index=index,
            z=float(z),
            ez=ez,
            d_m_h=d_m_h,
            d_m_cm=d_m_cm,
            d_l_cm=d_m_cm * (1 + z),
            optics=optics,
            response=load_response(tuple(tuple(b) for b in cfg.xray.bands_kev)),
            field=InterloperField.build(z, ez, cfg.cosmology, cfg.scaling, cfg.galaxies),
            agn_per_deg2=lognlogs_number(cfg.agn),
            agn_pad=20 * optics.psf_rc,
            cfg=cfg,
        )

    def background_per_pixel(self, exposure: NDArray, nh: NDArray) -> NDArray:
        """Return the expected diffuse background counts per pixel and band, shape (n, n_band).

        Sum of the unresolved CXB (total minus the explicit sources above agn.s_min, power law
        of index cxb_photon_index, absorbed by N_H), the Galactic foreground (kT =
        foreground_kt_kev bremsstrahlung, unabsorbed) and the particle background (flat in
        counts/keV, not vignetted). Zero when ``xray.diffuse_background`` is off.
        """
        x = self.cfg.xray
        if not x.diffuse_background:  # the paper preset: ICM + AGN photons only
            return np.zeros((np.asarray(exposure).size, len(x.bands_kev)))
        unresolved = (x.cxb_intensity - lognlogs_intensity(self.cfg.agn)) / 3600.0  # per arcmin^2
        cxb = unresolved * powerlaw_band_rates(self.response, x.cxb_photon_index, nh)
        fg = x.foreground_rate * thermal_rate_per_norm(self.response, x.foreground_kt_kev, [0.0])
        particle = x.particle_rate * flat_band_fractions(self.response.bands)
        rate = cxb + fg + particle[None, :]  # counts / s / arcmin^2
        return rate * (exposure[:, None] * self.optics.pixel_arcmin2)

    def field_agn_per_pixel(self, exposure: NDArray, nh: NDArray) -> NDArray:
        """Mean counts per pixel and band from the explicit field sources, shape (n, n_band)."""
        pix_deg2 = self.optics.pixel_arcmin2 / 3600.0
        rates = powerlaw_band_rates(self.response, self.cfg.agn.photon_index, nh)
        return lognlogs_intensity(self.cfg.agn) * pix_deg2 * rates * exposure[:, None]

    def padded_area_deg2(self) -> float:
        """Solid angle of the map plus the AGN margin [deg^2]."""
        side = 2 * (HALF_WIDTH_MPC_H + self.agn_pad) / self.d_m_h
        return side**2 * DEG2_PER_SR
