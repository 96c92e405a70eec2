"""The mock catalogue in memory, its files on disk (manifest, truth table, FITS maps) and reading back.

Layout of a written catalogue ``out_dir``::

    manifest.json          config, seed, cosmology, package versions, n, sha256 of every file
    truth.ecsv, truth.fits one row per cluster (see mocks.columns.TRUTH_COLUMNS)
    maps/<cluster_id>.fits PRIMARY (header only, celestial TAN WCS of a fictitious pointing),
                           TOTAL, AGN, ICM (int32, (band, y, x)), GALAXIES (binary table)

Files are byte-identical for the same seed and config: no DATE keywords, sorted JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.cosmology import FLRW
from astropy.cosmology import units as cu
from astropy.io import fits
from astropy.table import QTable, Table
from numpy.typing import NDArray

from mocks import fitsio
from mocks.columns import REQUIRED_COLUMNS, TRUTH_COLUMNS
from mocks.config import HALF_WIDTH_MPC_H, NPIX, PIXEL_MPC_H, MockConfig
from mocks.errors import MockCatalogueError, MockFileMissingError, MockParameterError
from mocks.fitsio import Card
from mocks.galaxies import GALAXY_DTYPE
from mocks.halos import colossus_cosmology, get_cosmology
from mocks.icm import Components

__all__ = ["MockCatalogue", "build_truth", "read_catalogue", "FORMAT", "MAP_HDUS"]

FORMAT = "clustermass-mock/1"
MAP_HDUS = ("TOTAL", "AGN", "ICM")
_PACKAGES = ("numpy", "scipy", "astropy", "colossus", "pydantic", "clustermass")


def build_truth(raw: dict[str, NDArray], cfg: MockConfig) -> QTable:
    """Assemble the truth QTable (units and descriptions from :data:`TRUTH_COLUMNS`)."""
    n = raw["m500c"].size
    data = dict(raw)
    pos = data.pop("pos")
    data.update(pos_x=pos[:, 0], pos_y=pos[:, 1], pos_z=pos[:, 2])
    data["cluster_id"] = np.array([f"mock-s{cfg.seed}-{i:06d}" for i in range(n)])
    data["log10_m500c"] = np.log10(raw["m500c"])
    table = QTable()
    for name, unit, desc in TRUTH_COLUMNS:
        values = np.asarray(data[name])
        if values.dtype.kind in "iu":
            values = values.astype(np.int64)
        table[name] = values * unit if unit is not None else values
        table[name].info.description = desc
    table.meta["cosmology"] = cfg.cosmology
    table.meta["seed"] = cfg.seed
    table.meta["bands_kev"] = [list(b) for b in cfg.xray.bands_kev]
    return table


@dataclass
class MockCatalogue:
    """A generated (or read) mock catalogue.

    Attributes
    ----------
    config : MockConfig
        The parameters it was made with.
    cosmology : FLRW
        astropy cosmology (Planck18 by default).
    truth : QTable
        One row per cluster, columns in :data:`mocks.columns.TRUTH_COLUMNS`.
    counts_total, counts_agn, counts_icm : ndarray of int32
        Count maps, shape (n, n_band, 128, 128), axes (cluster, band, y, x);
        total = agn + icm + background exactly.
    galaxies : ndarray
        Structured array (``mocks.galaxies.GALAXY_DTYPE``) over all clusters.
    icm_components : Components or None
        The emission components (ambient, cool core, subcluster) that made the ICM photons,
        ``cluster`` indexing rows of ``truth`` (in memory only, for validation renderings such
        as :mod:`mocks.morphology`; None for a catalogue read from disk).
    """

    config: MockConfig
    cosmology: FLRW
    truth: QTable
    counts_total: NDArray[np.int32]
    counts_agn: NDArray[np.int32]
    counts_icm: NDArray[np.int32]
    galaxies: NDArray
    icm_components: Components | None = None

    def __len__(self) -> int:
        return len(self.truth)

    @property
    def counts_background(self) -> NDArray[np.int32]:
        """Diffuse background counts (total - AGN - ICM)."""
        return self.counts_total - self.counts_agn - self.counts_icm

    def galaxies_of(self, row: int) -> NDArray:
        """Return the galaxies (members and interlopers in the cylinder) of cluster ``row``."""
        idx = self.galaxies["cluster_index"]
        lo, hi = np.searchsorted(idx, [row, row + 1])
        return self.galaxies[lo:hi]

    # ------------------------------------------------------------------ writing
    def write(self, out_dir: str | Path, progress: Callable[[int], None] | None = None) -> Path:
        """Write manifest, truth table and one FITS file per cluster; return the manifest path.

        Parameters
        ----------
        out_dir : str or Path
            Output folder (created; existing files of the same names are replaced).
        progress : callable, optional
            Called with the number of map files written so far.
        """
        out = Path(out_dir)
        (out / "maps").mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        buf = io.StringIO()
        self.truth.write(buf, format="ascii.ecsv")
        files["truth.ecsv"] = _write_bytes(out / "truth.ecsv", buf.getvalue().encode())
        files["truth.fits"] = _write_bytes(out / "truth.fits", _truth_fits_bytes(self.truth))
        for i in range(len(self)):
            cid = str(self.truth["cluster_id"][i])
            data = _map_bytes(self, i)
            files[f"maps/{cid}.fits"] = _write_bytes(out / "maps" / f"{cid}.fits", data)
            if progress is not None:
                progress(i + 1)
        manifest = {
            "format": FORMAT,
            "n_clusters": len(self),
            "seed": self.config.seed,
            "config": self.config.to_dict(),
            "cosmology": _cosmology_dict(self.config),
            "bands_kev": [list(b) for b in self.config.xray.bands_kev],
            "npix": NPIX,
            "half_width_mpc_h": HALF_WIDTH_MPC_H,
            "package_versions": _versions(),
            "files": files,
        }
        path = out / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return path


def _truth_fits_bytes(truth: QTable) -> bytes:
    """FITS copy of the truth table; little-h units become the strings 'Mpc/h' and 'solMass/h'.

    FITS has no little-h unit, so those columns are written as plain numbers with a TUNIT string
    that astropy reads as an unrecognised unit (the ECSV file is the canonical copy).
    """
    plain = Table()
    h_units: dict[str, str] = {}
    for name in truth.colnames:
        col = truth[name]
        unit = getattr(col, "unit", None)
        if unit is not None and cu.littleh in unit.bases:
            h_units[name] = str(unit * cu.littleh) + "/h"
            plain[name] = np.asarray(col.value)
        else:
            plain[name] = col
        plain[name].description = truth[name].info.description
    hdu = fits.table_to_hdu(plain)
    for k, name in enumerate(plain.colnames, start=1):
        if name in h_units:
            hdu.header[f"TUNIT{k}"] = h_units[name]
    bio = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(bio)
    return bio.getvalue()


def _write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _cosmology_dict(cfg: MockConfig) -> dict:
    c = get_cosmology(cfg.cosmology)
    col = colossus_cosmology(cfg.cosmology)
    return {
        "name": cfg.cosmology,
        "H0": float(c.H0.value),
        "Om0": float(c.Om0),
        "Ode0": float(c.Ode0),
        "Ob0": float(c.Ob0),
        "Tcmb0": float(c.Tcmb0.value),
        "Neff": float(c.Neff),
        "m_nu_eV": [float(m) for m in np.atleast_1d(c.m_nu.value)],
        "sigma8": float(col.sigma8),
        "ns": float(col.ns),
    }


def _wcs_cards(pos: NDArray, box: float, pix_arcsec: float) -> list[Card]:
    """Return a celestial TAN WCS for a fictitious pointing derived from the box position."""
    ra = 360.0 * float(pos[0]) / box
    dec = float(np.degrees(np.arcsin(np.clip(2 * pos[1] / box - 1, -1, 1))))
    return [
        ("WCSAXES", 2, "axis 1 = x (columns), 2 = y (rows)"),
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("CUNIT1", "deg"),
        ("CUNIT2", "deg"),
        ("CRPIX1", (NPIX + 1) / 2),
        ("CRPIX2", (NPIX + 1) / 2),
        ("CRVAL1", ra),
        ("CRVAL2", dec),
        ("CDELT1", -pix_arcsec / 3600.0, "+x of the box -> decreasing RA"),
        ("CDELT2", pix_arcsec / 3600.0),
        ("RADESYS", "ICRS"),
        ("EQUINOX", 2000.0),
    ]


def _map_bytes(cat: MockCatalogue, i: int) -> bytes:
    """Return the FITS file of cluster row ``i`` (PRIMARY, TOTAL, AGN, ICM, GALAXIES)."""
    t, cfg = cat.truth, cat.config
    pos = np.array([t["pos_x"][i].value, t["pos_y"][i].value, t["pos_z"][i].value])
    pix = float(t["pixscale_arcsec"][i].value)
    wcs = _wcs_cards(pos, cfg.box_size, pix)
    prim: list[Card] = [
        ("CLUSTER", str(t["cluster_id"][i]), "cluster id"),
        ("SNAPSHOT", int(t["snapshot"][i]), "snapshot index"),
        ("REDSHIFT", float(t["redshift"][i]), "redshift"),
        ("M500C", float(t["m500c"][i].value), "[h^-1 Msun] M500c"),
        ("LOGM500C", float(t["log10_m500c"][i]), "log10 M500c [h^-1 Msun]"),
        ("R500C", float(t["r500c"][i].value), "[h^-1 Mpc] R500c, proper"),
        ("EXPOSURE", float(t["exposure"][i].value), "[s] unvignetted exposure"),
        ("NH", float(t["nH"][i].value), "[cm^-2] Galactic column"),
        ("BANDS", ",".join(f"{lo:g}-{hi:g}" for lo, hi in cfg.xray.bands_kev), "[keV] bands"),
        ("NBANDS", len(cfg.xray.bands_kev)),
        ("PIXSCALE", pix, "[arcsec] pixel side"),
        ("PIXMPCH", PIXEL_MPC_H, "[h^-1 Mpc] pixel side, comoving"),
        ("HALFWID", HALF_WIDTH_MPC_H, "[h^-1 Mpc] map half-width, comoving"),
        ("PSFHEW", float(t["psf_hew_arcsec"][i].value), "[arcsec] PSF half-energy width"),
        ("SEED", cfg.seed, "generator seed"),
        ("COSMO", cfg.cosmology, "cosmology"),
        ("ORIGIN", "clustermass mocks"),
        ("AXES", "band,y,x", "image axis order (numpy); pos_x -> columns"),
    ] + wcs
    maps = (cat.counts_total[i], cat.counts_agn[i], cat.counts_icm[i])
    g = cat.galaxies_of(i)
    gcols = [
        ("x_mpc_h", g["x_mpc_h"], "Mpc/h"),
        ("y_mpc_h", g["y_mpc_h"], "Mpc/h"),
        ("v_los_km_s", g["v_los_km_s"], "km/s"),
        ("is_member", g["is_member"], None),
    ]
    if not cfg.compress_maps:
        parts = [fitsio.primary_bytes(prim)]
        parts += [
            fitsio.image_bytes(arr, name, [("BUNIT", "count")] + wcs)
            for name, arr in zip(MAP_HDUS, maps, strict=True)
        ]
        parts.append(fitsio.bintable_bytes(gcols, "GALAXIES"))
        return b"".join(parts)
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [fits.PrimaryHDU()]
    for card in prim:
        hdus[0].header[card[0]] = card[1:] if len(card) == 3 else card[1]
    for name, arr in zip(MAP_HDUS, maps, strict=True):
        hdu = fits.CompImageHDU(
            data=np.ascontiguousarray(arr, np.int32), name=name, compression_type="RICE_1"
        )
        hdu.header["BUNIT"] = "count"
        for card in wcs:
            hdu.header[card[0]] = card[1:] if len(card) == 3 else card[1]
        hdus.append(hdu)
    cols = [
        fits.Column(n, "L" if v.dtype == np.bool_ else "E", unit=un, array=v) for n, v, un in gcols
    ]
    hdus.append(fits.BinTableHDU.from_columns(cols, name="GALAXIES"))
    bio = io.BytesIO()
    fits.HDUList(hdus).writeto(bio)
    return bio.getvalue()


# ------------------------------------------------------------------ reading
def read_catalogue(
    out_dir: str | Path,
    load_maps: bool = True,
    verify: bool = True,
    progress: Callable[[int], None] | None = None,
) -> MockCatalogue:
    """Read a catalogue written by :meth:`MockCatalogue.write`, checking every file.

    Parameters
    ----------
    out_dir : str or Path
        The folder holding ``manifest.json``.
    load_maps : bool
        Read the map files (else the count arrays have length 0 along the first axis and the
        galaxy table is empty).
    verify : bool
        Check the sha256 of every file against the manifest.
    progress : callable, optional
        Called with the number of map files read.

    Raises
    ------
    MockFileMissingError
        The manifest or a listed file is missing.
    MockCatalogueError
        A file is unreadable, corrupt, or inconsistent with the manifest (its path is named).
    """
    root = Path(out_dir)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise MockFileMissingError(mpath, "no manifest.json: not a mock catalogue folder")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MockCatalogueError(mpath, f"not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MockCatalogueError(mpath, f"format is not {FORMAT!r}")
    try:
        cfg = MockConfig(**manifest["config"])
    except (KeyError, MockParameterError) as exc:
        raise MockCatalogueError(mpath, f"invalid config ({exc})") from exc
    files: dict[str, str] = manifest.get("files", {})
    for rel, digest in files.items():
        path = root / rel
        if not path.is_file():
            raise MockFileMissingError(path, "listed in manifest.json but missing")
        if verify and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise MockCatalogueError(path, "sha256 does not match manifest.json (file changed)")
    tpath = root / "truth.ecsv"
    if "truth.ecsv" not in files:
        raise MockCatalogueError(mpath, "truth.ecsv not listed")
    try:
        with u.add_enabled_units(cu):
            truth = QTable.read(tpath, format="ascii.ecsv")
    except Exception as exc:  # astropy raises many types for a corrupt table
        raise MockCatalogueError(tpath, f"unreadable ECSV table ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in truth.colnames]
    if missing:
        raise MockCatalogueError(tpath, f"missing columns {missing}")
    if len(truth) != manifest.get("n_clusters"):
        raise MockCatalogueError(
            tpath, f"{len(truth)} rows but manifest says {manifest.get('n_clusters')}"
        )
    nb = len(cfg.xray.bands_kev)
    n = len(truth) if load_maps else 0
    maps = {k: np.zeros((n, nb, NPIX, NPIX), dtype=np.int32) for k in MAP_HDUS}
    gal_parts = []
    for i in range(n):
        cid = str(truth["cluster_id"][i])
        rel = f"maps/{cid}.fits"
        if rel not in files:
            raise MockCatalogueError(mpath, f"{rel} not listed")
        for name, arr in _read_map(root / rel, cid, nb).items():
            if name == "GALAXIES":
                gal_parts.append(_galaxies(arr, i))
            else:
                maps[name][i] = arr
        if progress is not None:
            progress(i + 1)
    galaxies = np.concatenate(gal_parts) if gal_parts else np.zeros(0, GALAXY_DTYPE)
    return MockCatalogue(
        config=cfg,
        cosmology=get_cosmology(cfg.cosmology),
        truth=truth,
        counts_total=maps["TOTAL"],
        counts_agn=maps["AGN"],
        counts_icm=maps["ICM"],
        galaxies=galaxies,
    )


def read_map_file(path: str | Path, cluster_id: str, n_bands: int = 3) -> dict:
    """Read one cluster's map file.

    Returns
    -------
    dict
        ``TOTAL``, ``AGN``, ``ICM``: int32 arrays (n_bands, 128, 128); ``GALAXIES``: dict of
        column arrays (``x_mpc_h``, ``y_mpc_h``, ``v_los_km_s``, ``is_member``).

    Raises
    ------
    MockCatalogueError
        The file is unreadable, belongs to another cluster, or its maps are inconsistent.
    """
    return _read_map(Path(path), cluster_id, n_bands)


def _read_map(path: Path, cid: str, nb: int) -> dict:
    """Read one map file: the fast parser for files this package wrote, else astropy."""
    raw = path.read_bytes()
    try:
        hdus = fitsio.read_hdus(raw)
        if not hdus:
            raise fitsio.FitsParseError("no HDU")
    except Exception:  # noqa: BLE001 - any damage: astropy re-reads strictly and names the file
        return _read_map_astropy(path, cid, nb)
    by_name = {str(h.get("EXTNAME", "PRIMARY")).strip(): (h, d) for h, d in hdus}
    if hdus[0][0].get("CLUSTER") != cid:
        raise MockCatalogueError(path, f"CLUSTER keyword is not {cid!r}")
    out: dict = {}
    for name in MAP_HDUS:
        if name not in by_name or by_name[name][1] is None:
            raise MockCatalogueError(path, f"no {name} HDU (need {', '.join(MAP_HDUS)})")
        data = np.asarray(by_name[name][1])
        if data.shape != (nb, NPIX, NPIX):
            raise MockCatalogueError(
                path, f"{name} has shape {data.shape}, want {(nb, NPIX, NPIX)}"
            )
        out[name] = data.astype(np.int32)
    gal = by_name.get("GALAXIES", ({}, None))[1]
    if not isinstance(gal, dict) or any(n not in gal for n in _GAL_NAMES):
        raise MockCatalogueError(path, f"GALAXIES must have the columns {_GAL_NAMES}")
    out["GALAXIES"] = gal
    _check_maps(path, out)
    return out


def _check_maps(path: Path, out: dict) -> None:
    if np.any(out["TOTAL"] < out["AGN"] + out["ICM"]):
        raise MockCatalogueError(path, "TOTAL < AGN + ICM somewhere: maps are inconsistent")


_GAL_NAMES = ("x_mpc_h", "y_mpc_h", "v_los_km_s", "is_member")


def _read_map_astropy(path: Path, cid: str, nb: int) -> dict:
    try:
        with warnings.catch_warnings():
            # a damaged file must fail loudly, not load with a VerifyWarning
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            return _read_map_astropy_checked(path, cid, nb)
    except MockCatalogueError:
        raise
    except Exception as exc:  # corrupt FITS
        raise MockCatalogueError(path, f"unreadable FITS file ({exc})") from exc


def _read_map_astropy_checked(path: Path, cid: str, nb: int) -> dict:
    with fits.open(path, memmap=False) as hdul:
        if hdul[0].header.get("CLUSTER") != cid:
            raise MockCatalogueError(path, f"CLUSTER keyword is not {cid!r}")
        out = {}
        for name in MAP_HDUS:
            if name not in hdul:
                raise MockCatalogueError(path, f"no {name} HDU (need {', '.join(MAP_HDUS)})")
            data = np.asarray(hdul[name].data)
            if data.shape != (nb, NPIX, NPIX):
                raise MockCatalogueError(
                    path, f"{name} has shape {data.shape}, want {(nb, NPIX, NPIX)}"
                )
            out[name] = data.astype(np.int32)
        if "GALAXIES" not in hdul:
            raise MockCatalogueError(path, "no GALAXIES HDU")
        gal = hdul["GALAXIES"].data
        if gal is None or any(n not in gal.names for n in _GAL_NAMES):
            raise MockCatalogueError(path, f"GALAXIES must have the columns {_GAL_NAMES}")
        out["GALAXIES"] = {n: np.array(gal[n]) for n in _GAL_NAMES}  # decodes 'L'
    _check_maps(path, out)
    return out


def _galaxies(rec: dict[str, NDArray], row: int) -> NDArray:
    g = np.empty(len(rec["x_mpc_h"]), dtype=GALAXY_DTYPE)
    g["cluster_index"] = row
    for name in ("x_mpc_h", "y_mpc_h", "v_los_km_s", "is_member"):
        g[name] = rec[name]
    return g
