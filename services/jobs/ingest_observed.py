"""Ingest observed clusters' X-ray image sets and member-galaxy tables; build model inputs.

* :func:`ingest_image_set` - an image-set YAML (counts + exposure (+ background) per band, WCS)
  reprojected onto the 128 x 128, +-2.3 h^-1 Mpc comoving model grid and stored as products;
* :func:`ingest_galaxy_table` - a spectroscopic member table -> ``galaxies`` product and
  sigma_v / N_gal / dynamical-mass observables;
* :func:`observed_model_input` - the array a network takes, ``(C, 128, 128)``, with a meta dict
  (instrument, bands, exposure scaling, masked fraction, caveats). This is what ``predict`` on
  observed data calls. By default it corrects an image from another instrument for the
  effective-area and band difference to the training instrument (:func:`area_correction`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy.engine import Engine

from db import mass_catalogue as dbm
from db import survey as dbs
from db import survey_products as dbp
from db.ingest import upsert_observables
from db.session import session_scope
from mocks.spectra import ARF_FILE
from models.kde import kde_cube
from services.database import ready_engine
from services.paths import shared_data_dir
from services.settings import get_settings
from survey.catalogues import ObservableValue
from survey.cosmology import PLANCK18, CosmologySpec
from survey.errors import SpecError, SurveyError
from survey.files import file_identity, sha256_path
from survey.galaxies import MIN_MEMBERS, GalaxyResult, analyse_galaxies, read_galaxy_table
from survey.images import GridImages, load_band_images, reproject_to_grid
from survey.model_input import TARGET_BANDS, ModelKind, model_input, plan_bands
from survey.responses import AreaCurve, band_count_rate_ratios, read_area_curve
from survey.specs import (
    ClusterRef,
    GalaxySpec,
    ImageSetSpec,
    load_galaxy_spec,
    load_image_set,
)

__all__ = [
    "ingest_image_set",
    "ingest_galaxy_table",
    "observed_model_input",
    "grid_from_arrays",
    "dynamical_flags",
    "FEW_MEMBERS",
    "area_correction",
    "TRAINING_INSTRUMENT",
    "DEFAULT_KT_KEV",
]

#: The instrument the mocks imitate (their effective area is the vendored eFEDS ARF,
#: :mod:`mocks.spectra`): images from it need no area correction.
TRAINING_INSTRUMENT = "eROSITA"
#: Rest-frame temperature assumed for the area correction's spectrum [keV]. The ROSAT PSPC
#: 0.4-2 keV -> eROSITA 0.5-7 keV ratio is 7.7, 8.2 and 8.4 at 2, 5 and 8 keV (docs/observed.md).
DEFAULT_KT_KEV = 5.0

logger = logging.getLogger(__name__)

H_MASS_UNIT = "dex(solMass / littleh)"
"""Unit of log10 masses in h^-1 Msun (astropy, with ``astropy.cosmology.units`` enabled)."""


def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    return get_settings().data_dir


def _base_dir(spec: ImageSetSpec, manifest: Path | None, base_dir: Path | None) -> Path:
    if base_dir is not None:
        return Path(base_dir)
    if spec.root == "shared":
        shared = shared_data_dir()
        if shared is None:
            raise SpecError(
                "image set uses root: shared but no shared data folder was found; set "
                "CLUSTERMASS_SHARED_DATA_DIR"
            )
        return shared
    return manifest.parent if manifest is not None else Path.cwd()


def _set_digest(spec: ImageSetSpec, paths: dict[str, Path], source: str) -> str:
    """Checksum of an image set: its spec plus every file it reads (idempotency key).

    ``paths`` maps each entry to its resolved path, already confined to the set's folder
    (:meth:`ImageSetSpec.resolve_files`).
    """
    files = {}
    for f in spec.files():
        p = paths[f]
        if not p.is_file():
            raise SurveyError(f"{source}: {f!r} ({p}): no such file (named by the image set)")
        files[f] = sha256_path(p)
    doc = {"spec": spec.model_dump(mode="json"), "files": files}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def ingest_image_set(
    manifest: Path | str | ImageSetSpec,
    *,
    base_dir: Path | None = None,
    engine: Engine | None = None,
    data_dir: Path | None = None,
    force: bool = False,
    grid_cosmology: CosmologySpec = PLANCK18,
) -> dbs.IngestReport:
    """Reproject an image set onto the model grid and store it as products of its cluster.

    Parameters
    ----------
    manifest : Path or ImageSetSpec
        Image-set YAML (``kind: image_set``) or the spec itself.
    base_dir : Path, optional
        Folder the spec's file paths are relative to (default: the YAML's folder, or the shared
        data folder for ``root: shared``).
    grid_cosmology : CosmologySpec
        Cosmology of the h^-1 Mpc comoving grid (that of the training mocks; Planck18).

    Raises
    ------
    SurveyError
        Unreadable image, no WCS, grids that differ, field outside the image (recorded as a
        refusal; nothing else is written).
    db.errors.ClusterNotFoundError
        The cluster named by the set is not in the database.
    """
    manifest_path = None if isinstance(manifest, ImageSetSpec) else Path(manifest).resolve()
    spec = manifest if isinstance(manifest, ImageSetSpec) else load_image_set(manifest_path)  # type: ignore[arg-type]
    base = _base_dir(spec, manifest_path, base_dir)
    engine = ready_engine(engine=engine)
    data_dir = _data_dir(data_dir)
    label_path = str(manifest_path) if manifest_path else f"<image set {spec.instrument}>"
    # A YAML names files relative to its folder (or the shared root) and never outside it; a
    # spec object comes from a trusted caller with the files it was given (absolute, in base).
    trusted = manifest_path is None
    paths = spec.resolve_files(base, source=label_path, allow_absolute=trusted)
    digest = _set_digest(spec, paths, label_path)
    size = manifest_path.stat().st_size if manifest_path else 0
    identity = {"grid_cosmology": grid_cosmology.model_dump(mode="json")}
    key = dbs.ingest_key(digest, "image_set", **identity)
    with session_scope(engine) as s:
        seen = dbs.find_ingested(s, key)
        if seen is not None and not force:
            return dbs.already_ingested_report(seen, label_path)
    try:
        bands = load_band_images(spec, base, source=label_path, allow_absolute=trusted)
    except SurveyError as exc:
        dbs.record_refusal(engine, Path(label_path), digest, size, "image_set", exc, key=key)
        raise
    with session_scope(engine) as s:
        cluster = dbp.resolve_cluster(s, spec.cluster)
        ra = spec.centre_ra if spec.centre_ra is not None else cluster.ra_deg
        dec = spec.centre_dec if spec.centre_dec is not None else cluster.dec_deg
        if ra is None or dec is None:
            raise SurveyError(f"cluster {cluster.external_id} has no position; set centre_ra/dec")
        grid = reproject_to_grid(
            bands, ra, dec, cluster.redshift, grid_cosmology, instrument=spec.instrument
        )
        files = {f: sha256_path(paths[f]) for f in spec.files()}
        meta: dict[str, Any] = {
            "source_files": files,
            "citation": spec.citation,
            "note": spec.note,
        }
        if spec.response:
            meta["response"] = {
                "path": str(paths[spec.response]),
                "sha256": files[spec.response],
                "entry": spec.response,
            }
        ids = dbp.store_grid(s, data_dir, cluster.id, grid, meta=meta)
        msg = (
            f"{label_path}: {spec.instrument} {len(bands)} band(s) reprojected onto the model "
            f"grid of cluster {cluster.name or cluster.external_id} (id {cluster.id}, "
            f"z={cluster.redshift:.4f}); {grid.masked_fraction:.1%} of pixels masked; counts in "
            f"field {sum(grid.meta['counts_in_field']):.0f}"
        )
        file_id = dbs.record_file(
            s,
            path=label_path,
            sha256=digest,
            size_bytes=size,
            kind="image_set",
            status="ingested",
            message=msg,
            key=key,
            target=f"image_set:{cluster.id}:{dbp.image_label(grid.instrument, grid.bands_kev)}",
            options=identity,
            n_rows=len(bands),
        )
        cid = cluster.id
    logger.info(msg)
    return dbs.IngestReport(
        label_path,
        "image_set",
        digest,
        "ingested",
        msg,
        n_rows=len(bands),
        file_id=file_id,
        cluster_ids=[cid],
        products=ids,
        extra={"masked_fraction": grid.masked_fraction, "label": dbp.image_label(
            grid.instrument, grid.bands_kev)},
    )  # fmt: skip


def ingest_galaxy_table(
    path: Path | str,
    *,
    spec: GalaxySpec | Path | str | None = None,
    cluster: ClusterRef | None = None,
    interlopers: Literal["mixture", "shifting_gapper", "sigma_clip", "none"] = "mixture",
    velocity_bias: float = 1.0,
    engine: Engine | None = None,
    data_dir: Path | None = None,
    force: bool = False,
    cosmology: CosmologySpec = PLANCK18,
) -> dbs.IngestReport:
    """Ingest a spectroscopic member table of one cluster (see :mod:`survey.galaxies`).

    Stores a ``galaxies`` product (x_mpc_h, y_mpc_h, v_los_km_s, is_member), a ``kde_cube``
    when ``models.kde`` is installed, and observables ``sigma_v_biweight``, ``sigma_v_gapper``
    (and ``sigma_v_mixture`` with the default interloper method) [km/s], ``N_gal`` and
    ``log10_M500c_dyn`` / ``log10_M200c_dyn`` [h^-1 Msun, in dex] (the latest table's), and a
    ``mass_estimates`` row keyed by (cluster, ``dynamical:<interlopers>``, ``galaxies:<label>``)
    with its members, interloper method and flags (:func:`dynamical_flags`): a second member
    table of the cluster adds a row.

    The report's ``extra`` (and the product's meta) carry ``interlopers`` and ``estimator``
    (the method and the dispersion the mass comes from) and ``diagnostics``
    (:func:`survey.galaxies.velocity_diagnostics`: ``few_members``, ``truncated``,
    ``excess_kurtosis``, ``member_excess_kurtosis``, ``edges_sigma``, ``warnings``).
    """
    path = Path(path).resolve()
    if isinstance(spec, str | Path):
        spec = load_galaxy_spec(Path(spec))
    cluster = cluster or (spec.cluster if spec is not None else None)
    if cluster is None:
        raise SpecError(f"{path}: say which cluster the galaxies belong to (--cluster or spec)")
    engine = ready_engine(engine=engine)
    data_dir = _data_dir(data_dir)
    sha, size = file_identity(path)
    # Everything besides the file that changes what is stored: another method, bias, cluster,
    # cosmology or spec is another ingestion (it replaces this file's products of the cluster).
    identity = {
        "spec": None if spec is None else spec.model_dump(mode="json"),
        "cluster": cluster.model_dump(mode="json"),
        "interlopers": interlopers,
        "velocity_bias": velocity_bias,
        "cosmology": cosmology.model_dump(mode="json"),
    }
    key = dbs.ingest_key(sha, "galaxies", **identity)
    with session_scope(engine) as s:
        seen = dbs.find_ingested(s, key)
        if seen is not None and not force:
            return dbs.already_ingested_report(seen, str(path))
    try:
        ra, dec, z, rejects = read_galaxy_table(path, spec)
    except SurveyError as exc:
        dbs.record_refusal(engine, path, sha, size, "galaxies", exc, key=key)
        raise
    with session_scope(engine) as s:
        cl = dbp.resolve_cluster(s, cluster)
        if cl.ra_deg is None or cl.dec_deg is None:
            raise SurveyError(f"cluster {cl.external_id} has no position")
        res = analyse_galaxies(
            ra, dec, z, ra_cl=cl.ra_deg, dec_cl=cl.dec_deg, z_cl=cl.redshift,
            cosmology=cosmology, interlopers=interlopers, velocity_bias=velocity_bias,
        )  # fmt: skip
        meta = {
            "source": str(path),
            "sha256": sha,
            "n_input": res.n_input,
            "n_in_cylinder": res.n_in_cylinder,
            "n_members": res.n_members,
            "interlopers": interlopers,
            "estimator": res.estimator,
            "dispersion": res.dispersion,
            "mass": res.mass,
            "diagnostics": res.diagnostics,
            "notes": res.notes,
            "input_domain": "observed",
        }
        arrays = res.arrays()
        label = f"observed/{path.name}"[:200]
        ids = dbp.store_galaxies(
            s, data_dir, cl.id, arrays, label=label, meta=meta,
            kde_cube=np.asarray(
                kde_cube(arrays["x_mpc_h"], arrays["y_mpc_h"], arrays["v_los_km_s"])
            ),
        )  # fmt: skip
        d, m, est = res.dispersion, res.mass, res.estimator
        flags = dynamical_flags(res)
        note = f"{path.name}: {res.n_members} members ({interlopers}); sigma_v from {est}"
        note += f"; flags: {', '.join(flags)}" if flags else ""
        obs = [
            ObservableValue("sigma_v_biweight", d["biweight"], "km / s", d["biweight_err"], note),
            ObservableValue("sigma_v_gapper", d["gapper"], "km / s", d["gapper_err"], note),
            ObservableValue("N_gal", float(res.n_gal_aperture), "", None,
                            f"{note}; members within R <= {res.aperture_mpc_h} h^-1 Mpc"),
            ObservableValue("log10_M200c_dyn", m["log10_m200c"], H_MASS_UNIT, m["err_dex"],
                            f"{note}; Evrard+08, h^-1 Msun"),
            ObservableValue("log10_M500c_dyn", m["log10_m500c"], H_MASS_UNIT, m["err_dex"],
                            f"{note}; Evrard+08 + NFW diemer19, h^-1 Msun"),
        ]  # fmt: skip
        if "mixture" in d:
            obs.append(
                ObservableValue("sigma_v_mixture", d["mixture"], "km / s", d["mixture_err"], note)
            )
        upsert_observables(s, dbs.observable_rows([(cl.id, o) for o in obs]))
        msg = (
            f"{path}: {res.n_members} members of {res.n_in_cylinder} galaxies in the cylinder "
            f"({res.n_input} read, {len(rejects)} rejected) for cluster "
            f"{cl.name or cl.external_id}; sigma_v ({est}, interlopers: {interlopers}) = "
            f"{d[est]:.0f} +- {d[f'{est}_err']:.0f} km/s; log10 M500c_dyn = "
            f"{m['log10_m500c']:.2f} +- {m['err_dex']:.2f}"
        )
        file_id = dbs.record_file(
            s, path=str(path), sha256=sha, size_bytes=size, kind="galaxies",
            status="partial" if rejects else "ingested", message=msg, key=key,
            target=f"galaxies:{cl.id}:{label}", options=identity, n_rows=res.n_input,
            n_rejected=len(rejects), rejects=rejects,
        )  # fmt: skip
        estimate_id = dbm.store_mass_estimate(
            s, cluster_id=cl.id, method=f"dynamical:{interlopers}", source=f"galaxies:{label}",
            log10_m500c=m["log10_m500c"], log10_m500c_err=m["err_dex"],
            n_members=res.n_members, interlopers=interlopers, flags=flags,
            details={
                "note": note, "sha256": sha, "velocity_bias": velocity_bias,
                "log10_m200c": m["log10_m200c"], "dispersion_km_s": d, "notes": res.notes,
                "n_input": res.n_input, "n_in_cylinder": res.n_in_cylinder,
            },
            file_id=file_id,
        )  # fmt: skip
        cid = cl.id
    return dbs.IngestReport(
        str(path), "galaxies", sha, "partial" if rejects else "ingested", msg,
        n_rows=res.n_input, n_rejected=len(rejects), file_id=file_id, cluster_ids=[cid],
        products=ids, rejects=[r.message(path.name) for r in rejects[:20]],
        extra={
            "dispersion": d, "mass": m, "n_gal": res.n_gal_aperture, "interlopers": interlopers,
            "estimator": est, "diagnostics": res.diagnostics, "notes": res.diagnostics["warnings"],
            "flags": flags, "mass_estimate_id": estimate_id,
        },
    )  # fmt: skip


FEW_MEMBERS = MIN_MEMBERS
"""Below this many members a dynamical mass is flagged ``few_members``
(:data:`survey.galaxies.MIN_MEMBERS`: sigma_v alone then has a statistical error over ~13%)."""


def dynamical_flags(res: GalaxyResult) -> list[str]:
    """Return the flags of a dynamical mass: ``truncated_velocities``, ``few_members``.

    Both come from the result's velocity diagnostics (:func:`survey.galaxies.velocity_diagnostics`:
    the truncation test on the input velocities within the model cylinder, and the member count),
    so the stored flags and the printed warnings never disagree.
    """
    diag = res.diagnostics
    flags = []
    if diag.get("truncated"):
        flags.append("truncated_velocities")
    if diag.get("few_members"):
        flags.append("few_members")
    return flags


def grid_from_arrays(arrays: dict[str, Any], meta: dict[str, Any] | None = None) -> GridImages:
    """Build :class:`GridImages` from stored arrays (``counts``, ``exposure``, ``mask``, ...)."""
    meta = dict(meta or {})
    counts = np.asarray(arrays["counts"], dtype=float)
    if counts.ndim == 2:
        counts = counts[None]
    bands = arrays.get("bands_kev", meta.get("bands_kev"))
    if bands is None:
        raise SurveyError("arrays need 'bands_kev' (or meta['bands_kev']) to choose model bands")
    exposure = np.asarray(arrays.get("exposure", np.ones_like(counts)), dtype=float)
    bg = arrays.get("background")
    return GridImages(
        counts=counts,
        exposure=exposure.reshape(counts.shape),
        background=None if bg is None else np.asarray(bg, dtype=float).reshape(counts.shape),
        mask=np.asarray(arrays.get("mask", np.zeros(counts.shape[1:])), dtype=bool),
        bands_kev=[tuple(map(float, b)) for b in np.asarray(bands).reshape(-1, 2)],  # type: ignore[misc]
        instrument=str(meta.get("instrument", "unknown instrument")),
        ra_deg=float(meta.get("centre_deg", [np.nan, np.nan])[0]),
        dec_deg=float(meta.get("centre_deg", [np.nan, np.nan])[1]),
        redshift=float(meta.get("redshift", np.nan)),
        pixel_scale_mpc_h=float(meta.get("pixel_scale_mpc_h", 4.6 / counts.shape[-1])),
        pixel_scale_arcsec=float(meta.get("pixel_scale_arcsec", np.nan)),
        meta=meta,
    )


def observed_model_input(
    target: int | GridImages | dict[str, Any],
    kind: ModelKind = "single",
    *,
    label: str | None = None,
    training_exposure_s: float = 2000.0,
    background: Literal["keep", "subtract"] = "keep",
    fill: Literal["auto", "radial", "zero", "background", "sky"] = "auto",
    count_rate_scale: float | Sequence[float] | None = None,
    kt_kev: float = DEFAULT_KT_KEV,
    engine: Engine | None = None,
    data_dir: Path | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Build the network input ``(C, 128, 128)`` of an observed cluster, with meta and caveats.

    Parameters
    ----------
    target : int, GridImages or dict
        A cluster id (its stored observed image set, or the one named by ``label``), a
        :class:`GridImages`, or a dict of arrays (``counts``, ``exposure``, ``mask``,
        ``bands_kev``, optional ``background``, optional ``meta``).
    kind : {'single', 'multi', 'multimodal'}
        Model kind; sets the bands (1 broad, or 3).
    training_exposure_s, background, fill
        See :func:`survey.model_input.model_input`.
    count_rate_scale : float, sequence of float or None
        ``None`` (default): the effective-area and band correction of :func:`area_correction`
        (from the response the image set names; 1 for the training instrument). A number
        (or one per model band) overrides it; ``1.0`` applies none.
    kt_kev : float ['energy']
        Rest-frame temperature of the spectrum the correction assumes [keV].

    Returns
    -------
    image : ndarray (C, 128, 128), float32
        Counts per pixel at ``training_exposure_s`` (before the run's own z-normalisation,
        log10(N+1) and standardisation).
    meta : dict
        ``instrument``, ``input_domain='observed'``, bands (nominal/achieved), exposure
        scaling, ``count_rate_scale`` and ``area_correction`` (how it was obtained),
        ``masked_fraction``, ``caveats`` (always includes the domain shift), and for a cluster
        id the cluster's identity and catalogue mass.
    """
    extra: dict[str, Any] = {}
    if isinstance(target, GridImages):
        grid = target
    elif isinstance(target, dict):
        grid = grid_from_arrays(target, target.get("meta"))
    else:
        engine = ready_engine(engine=engine)
        with session_scope(engine) as s:
            grid = dbp.load_grid(s, _data_dir(data_dir), int(target), label)
            extra = dbp.cluster_identity(s, int(target))
    if count_rate_scale is None:
        correction = area_correction(grid, kind, kt_kev=kt_kev)
    else:
        scales = np.atleast_1d(np.asarray(count_rate_scale, dtype=float))
        correction = {"source": "given", "scale": [float(x) for x in scales]}
    image, meta = model_input(
        grid, kind, training_exposure_s=training_exposure_s, background=background, fill=fill,
        count_rate_scale=correction["scale"],
    )  # fmt: skip
    meta["area_correction"] = correction
    if correction["source"] == "none":
        meta["caveats"].append(str(correction["reason"]))
    meta.update(extra)
    return image, meta


@lru_cache(maxsize=1)
def _training_area() -> AreaCurve:
    """Return the training instrument's area: the mocks' eFEDS ARF, CORRPSF divided out."""
    with resources.as_file(resources.files("mocks").joinpath("data", ARF_FILE)) as path:
        return read_area_curve(path, undo_psf_correction=True)


def area_correction(
    grid: GridImages, kind: ModelKind, *, kt_kev: float = DEFAULT_KT_KEV
) -> dict[str, Any]:
    """Return the count-rate factors that make an observed image look like a training one.

    * an image from the training instrument (``eROSITA ...``): 1, nothing to correct;
    * an image set that names its instrument's ``response`` (ARF or RSP): per model band,
      :func:`survey.responses.band_count_rate_ratios` of the mocks' eROSITA area (0.5-7 keV,
      or the three model bands) over the instrument's area in the observed bands that feed it,
      for bremsstrahlung at ``kt_kev`` (rest frame);
    * otherwise 1, with a caveat: the image set names no response.

    Returns
    -------
    dict
        ``scale`` (list, one per model band), ``source`` (``training instrument``,
        ``response`` or ``none``), and for ``response`` the file, its sha256, ``kt_kev``,
        the target and source bands; for ``none`` the ``reason``.

    Raises
    ------
    SurveyError
        The response the image set named is gone or has changed since ingestion.
    """
    n_bands = len(TARGET_BANDS[kind])
    if grid.instrument.strip().lower().startswith(TRAINING_INSTRUMENT.lower()):
        return {"source": "training instrument", "scale": [1.0] * n_bands}
    response = grid.meta.get("response")
    if not response:
        return {
            "source": "none",
            "scale": [1.0] * n_bands,
            "reason": f"no effective-area correction: the image set of {grid.instrument} names "
            "no 'response' (ARF/RSP); the counts are those of another instrument",
        }
    path = Path(response["path"])
    if not path.is_file():
        raise SurveyError(
            f"{grid.instrument} response {path} (named by the image set) is gone; restore it or "
            "pass count_rate_scale explicitly (1.0 = no correction)"
        )
    if sha256_path(path) != response.get("sha256"):
        raise SurveyError(
            f"{grid.instrument} response {path} changed since the image set was ingested; "
            "re-ingest the image set"
        )
    _, achieved, _ = plan_bands(grid.bands_kev, kind, instrument=grid.instrument)
    targets = [tuple(b) for b in TARGET_BANDS[kind]]
    scale = band_count_rate_ratios(
        _training_area(), path, target_bands_kev=targets,  # type: ignore[arg-type]
        source_bands_kev=[tuple(a) for a in achieved], kt_rest_kev=kt_kev,  # type: ignore[misc]
        redshift=grid.redshift,
    )  # fmt: skip
    return {
        "source": "response",
        "scale": [float(x) for x in scale],
        "response": response.get("entry", path.name),
        "response_sha256": response.get("sha256"),
        "training_area": f"mocks/data/{ARF_FILE} (SPECRESP / CORRPSF)",
        "kt_kev": kt_kev,
        "target_bands_kev": [list(b) for b in targets],
        "source_bands_kev": [list(a) for a in achieved],
    }
