"""Instrument responses: effective-area curves and count-rate ratios between instruments.

Rescaling an observed map to the training *exposure* does not make it an eROSITA map: the
effective area differs. :func:`count_rate_ratio` gives the factor by which the count rate of a
thermal spectrum changes from one instrument/band to another, so a caller can also rescale
in effective area (``model_input(..., count_rate_scale=ratio)``). The spectrum is a thermal
bremsstrahlung photon spectrum N(E) ~ g E^-1 exp(-E/kT) with a unit Gaunt factor
(Rybicki & Lightman 1979, eq. 5.14b), unabsorbed, at the observed frame (kT is the observed
temperature kT_rest / (1+z)). Lines and absorption are ignored: the ratio is good to ~10%
for kT >~ 2 keV.

Formats read: an ARF (``SPECRESP`` extension: ENERG_LO, ENERG_HI, SPECRESP [cm^2]) or a
combined RSP/RMF with ``MATRIX`` (or ``SPECRESP MATRIX``) and ``EBOUNDS`` extensions, in which
case the area counts only photons redistributed into channels inside the band.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from survey.errors import SurveyError

__all__ = ["AreaCurve", "read_area_curve", "count_rate_ratio", "band_count_rate_ratios"]


@dataclass(frozen=True)
class AreaCurve:
    """Effective area [cm^2] on energy bins [keV] (for channels in ``channel_band_kev``)."""

    e_lo: np.ndarray
    e_hi: np.ndarray
    area_cm2: np.ndarray
    channel_band_kev: tuple[float, float] | None = None

    def rate(self, kt_kev: float, band_kev: tuple[float, float] | None = None) -> float:
        """Relative count rate of a bremsstrahlung spectrum (photon energies in ``band_kev``)."""
        e = 0.5 * (self.e_lo + self.e_hi)
        sel = np.ones(e.size, dtype=bool)
        if band_kev is not None:
            sel = (e >= band_kev[0]) & (e < band_kev[1])
        photons = np.exp(-e / kt_kev) / e * (self.e_hi - self.e_lo)
        return float(np.sum(self.area_cm2[sel] * photons[sel]))


def _matrix_area(hdul: fits.HDUList, band: tuple[float, float], path: Path) -> AreaCurve:
    name = "MATRIX" if "MATRIX" in hdul else "SPECRESP MATRIX"
    m, eb = hdul[name].data, hdul["EBOUNDS"].data
    first = int(eb["CHANNEL"][0])
    use = (eb["E_MIN"] >= band[0]) & (eb["E_MAX"] <= band[1] + 0.05)
    if not use.any():
        raise SurveyError(f"{path}: no channel inside {band} keV")
    area = np.zeros(len(m))
    for i in range(len(m)):
        row = np.zeros(len(eb))
        fch, nch, mat = (np.atleast_1d(m[c][i]) for c in ("F_CHAN", "N_CHAN", "MATRIX"))
        k = 0
        for g in range(int(m["N_GRP"][i])):
            s = int(fch[g]) - first
            row[s : s + int(nch[g])] = mat[k : k + int(nch[g])]
            k += int(nch[g])
        area[i] = row[use].sum()
    return AreaCurve(np.asarray(m["ENERG_LO"]), np.asarray(m["ENERG_HI"]), area, band)


def read_area_curve(
    path: Path,
    channel_band_kev: tuple[float, float] | None = None,
    *,
    undo_psf_correction: bool = False,
) -> AreaCurve:
    """Read an ARF, or an RSP/RMF (then ``channel_band_kev`` selects the detected channels).

    ``undo_psf_correction``: an eSASS ARF's SPECRESP holds the area times the PSF fraction in
    the extraction region (CORRPSF); dividing it out gives the area for all of a source's
    photons, as the mocks use it (:mod:`mocks.spectra`).

    Raises
    ------
    SurveyError
        The file has neither a SPECRESP nor a MATRIX extension, or no channel in the band.
    """
    path = Path(path)
    with fits.open(path, memmap=False) as hdul:
        if "SPECRESP" in hdul:
            d = hdul["SPECRESP"].data
            area = np.asarray(d["SPECRESP"], dtype=float)
            if undo_psf_correction and "CORRPSF" in d.columns.names:
                area = area / np.asarray(d["CORRPSF"], dtype=float)
            return AreaCurve(np.asarray(d["ENERG_LO"]), np.asarray(d["ENERG_HI"]), area)
        if ("MATRIX" in hdul or "SPECRESP MATRIX" in hdul) and "EBOUNDS" in hdul:
            if channel_band_kev is None:
                raise SurveyError(f"{path}: a response matrix needs channel_band_kev")
            return _matrix_area(hdul, channel_band_kev, path)
    raise SurveyError(f"{path}: no SPECRESP or MATRIX+EBOUNDS extension (not an ARF/RSP)")


def count_rate_ratio(
    target: AreaCurve,
    source: AreaCurve,
    *,
    kt_kev: float,
    target_band_kev: tuple[float, float] | None = None,
    source_band_kev: tuple[float, float] | None = None,
) -> float:
    """Count-rate ratio target/source for a bremsstrahlung spectrum of temperature ``kt_kev``.

    E.g. eROSITA (eFEDS ARF, 0.5-7 keV) over ROSAT PSPC (0.4-2 keV channels): ~8 at 5 keV.
    """
    if kt_kev <= 0:
        raise ValueError(f"kt_kev must be > 0, got {kt_kev}")
    return target.rate(kt_kev, target_band_kev) / source.rate(kt_kev, source_band_kev)


def band_count_rate_ratios(
    target: AreaCurve,
    source_path: Path,
    *,
    target_bands_kev: list[tuple[float, float]],
    source_bands_kev: list[tuple[float, float]],
    kt_rest_kev: float,
    redshift: float,
) -> list[float]:
    """Per model band, the count-rate ratio training instrument / observing instrument.

    The factor an observed image's counts in ``source_bands_kev[i]`` are multiplied by to be
    what the training instrument would collect in ``target_bands_kev[i]`` from the same
    cluster: effective area and band at once (e.g. ROSAT PSPC 0.4-2 keV -> eROSITA
    0.5-7 keV: ~8 at kT = 5 keV). The spectrum is bremsstrahlung at the observed temperature
    ``kt_rest_kev / (1 + redshift)`` (:meth:`AreaCurve.rate`).

    Parameters
    ----------
    target : AreaCurve
        The training instrument's area (photon energies restricted to each target band).
    source_path : Path
        The observing instrument's ARF, or RSP/RMF (its channels restricted to each source
        band).
    target_bands_kev, source_bands_kev : list of (float, float)
        Model bands and the observed band edges that feed them, pairwise [keV].
    kt_rest_kev : float ['energy']
        Rest-frame gas temperature assumed for the spectrum [keV].
    redshift : float
        Cluster redshift.
    """
    if len(target_bands_kev) != len(source_bands_kev):
        raise ValueError("target and source bands go in pairs")
    kt_obs = kt_rest_kev / (1.0 + redshift)
    ratios = []
    for tb, sb in zip(target_bands_kev, source_bands_kev, strict=True):
        source = read_area_curve(source_path, channel_band_kev=tuple(sb))  # type: ignore[arg-type]
        band = None if source.channel_band_kev is not None else tuple(sb)
        ratios.append(
            count_rate_ratio(
                target, source, kt_kev=kt_obs, target_band_kev=tuple(tb), source_band_kev=band
            )  # type: ignore[arg-type]
        )
    return ratios
