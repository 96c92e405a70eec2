"""Manifests name files inside their own folder only; refusals never quote file content (issue 15).

An image-set YAML (``counts:``, ``exposure:``, ``background:``, ``mask:``) and a catalogue or
galaxy YAML dropped with a ``file:`` entry can reach the ingest jobs through ``serve --inbox``.
A path that climbs out with ``..``, an absolute path and a symbolic link to a file outside are
refused before the file is opened, with a message naming the manifest and the entry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db import tables as t
from services.jobs.ingest_inbox import ingest_path
from services.jobs.ingest_observed import ingest_image_set
from survey.errors import SpecError
from survey.specs import confined_path
from tests.survey.conftest import make_catalogue, make_image

SECRET = b"TOPSECRET-0123456789-abcdef\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """``drop/`` (the manifest's folder) and ``outside/secret.txt`` next to it."""
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    drop.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    return drop, outside


def _image_set(drop: Path, counts: str, *, root: str = "manifest") -> Path:
    p = drop / "set.yaml"
    p.write_text(
        "kind: image_set\ninstrument: T\ncluster: {ra: 150.0, dec: 2.0, z: 0.3}\n"
        f"root: {root}\n"
        f"bands: [{{band_kev: [0.5, 2.0], counts: '{counts}', exposure_s: 1000}}]\n"
    )
    return p


def _stored_messages(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(t.IngestFile.message)))


def test_confined_path_accepts_only_paths_inside_the_folder(layout: tuple[Path, Path]) -> None:
    drop, outside = layout
    (drop / "sub").mkdir()
    (drop / "a.fits").write_bytes(b"x")
    (drop / "link_in.fits").symlink_to(drop / "a.fits")
    (drop / "link_out.fits").symlink_to(outside / "secret.txt")
    (drop / "dir_out").symlink_to(outside)
    ok = dict(source="set.yaml", field="bands[0].counts")
    assert confined_path(drop, "a.fits", **ok) == (drop / "a.fits").resolve()
    assert confined_path(drop, "sub/../a.fits", **ok) == (drop / "a.fits").resolve()
    assert confined_path(drop, "link_in.fits", **ok) == (drop / "a.fits").resolve()
    for entry, why in (
        ("../outside/secret.txt", "outside"),
        ("../../../../../../etc/passwd", "outside"),
        ("sub/../../outside/secret.txt", "outside"),
        (str(outside / "secret.txt"), "absolute"),
        ("/etc/passwd", "absolute"),
        ("link_out.fits", "outside"),
        ("dir_out/secret.txt", "outside"),
        ("", "not a usable"),
        ("a\x00b", "not a usable"),
    ):
        with pytest.raises(SpecError) as info:
            confined_path(drop, entry, **ok)
        msg = str(info.value)
        assert why in msg and "set.yaml: bands[0].counts" in msg and repr(entry) in msg, msg
    # A trusted caller (the CLI with files it was given) may use absolute paths inside base.
    abs_ok = confined_path(Path("/"), str(drop / "a.fits"), allow_absolute=True, **ok)
    assert abs_ok == (drop / "a.fits").resolve()


@pytest.mark.parametrize(
    "shape", ["dotdot", "etc_passwd", "absolute", "symlink_file", "symlink_dir"]
)
def test_inbox_image_set_escaping_its_folder_is_refused_without_content(
    survey_engine: Engine, layout: tuple[Path, Path], shape: str
) -> None:
    drop, outside = layout
    if shape == "symlink_file":
        (drop / "c.fits").symlink_to(outside / "secret.txt")
    if shape == "symlink_dir":
        (drop / "imgs").symlink_to(outside)
    entry = {
        "dotdot": "../outside/secret.txt",
        "etc_passwd": "../../../../../../../../etc/passwd",
        "absolute": str(outside / "secret.txt"),
        "symlink_file": "c.fits",
        "symlink_dir": "imgs/secret.txt",
    }[shape]
    manifest = _image_set(drop, entry)
    with pytest.raises(SpecError, match=r"set\.yaml: bands\[0\]\.counts"):
        ingest_image_set(manifest, engine=survey_engine, data_dir=drop / "store")
    rep = ingest_path(manifest, engine=survey_engine, data_dir=drop / "store")
    assert rep.status == "rejected"
    assert str(manifest) in rep.message and repr(entry) in rep.message
    for text in [rep.message, *_stored_messages(survey_engine)]:
        assert "TOPSECRET" not in text and "root:" not in text


def test_unreadable_file_inside_the_folder_is_not_quoted(
    survey_engine: Engine, layout: tuple[Path, Path]
) -> None:
    drop, _ = layout
    (drop / "c.fits").write_bytes(SECRET * 10)
    rep = ingest_path(_image_set(drop, "c.fits"), engine=survey_engine, data_dir=drop / "s")
    assert rep.status == "rejected" and "not a FITS file" in rep.message
    for text in [rep.message, *_stored_messages(survey_engine)]:
        assert "TOPSECRET" not in text


def test_spec_yaml_error_does_not_quote_the_file(
    survey_engine: Engine, layout: tuple[Path, Path]
) -> None:
    drop, outside = layout
    (drop / "x.yaml").write_text("kind: [image_set\nTOPSECRET: {\n")
    rep = ingest_path(drop / "x.yaml", engine=survey_engine)
    assert rep.status == "rejected" and "invalid YAML" in rep.message and "line" in rep.message
    assert "TOPSECRET" not in rep.message


def test_shared_root_confines_to_the_shared_folder(
    survey_engine: Engine,
    layout: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.settings import get_settings

    drop, _ = layout
    shared = tmp_path / "shared"
    (shared / "images").mkdir(parents=True)
    make_image(shared / "images" / "c.fits", np.ones((20, 20)), with_wcs=False)
    monkeypatch.setenv("CLUSTERMASS_SHARED_DATA_DIR", str(shared))
    get_settings.cache_clear()
    try:
        with pytest.raises(SpecError, match="outside"):
            ingest_image_set(_image_set(drop, "../outside/secret.txt", root="shared"),
                             engine=survey_engine, data_dir=drop / "s")  # fmt: skip
        # inside the shared folder the file is opened (and refused for its own reason)
        with pytest.raises(Exception, match="no celestial WCS"):
            ingest_image_set(_image_set(drop, "images/c.fits", root="shared"),
                             engine=survey_engine, data_dir=drop / "s")  # fmt: skip
    finally:
        get_settings.cache_clear()


def test_catalogue_yaml_file_entry_is_confined(
    survey_engine: Engine, layout: tuple[Path, Path]
) -> None:
    import yaml

    from tests.survey.conftest import tiny_spec

    drop, outside = layout
    make_catalogue(outside / "cat.fits")
    doc = tiny_spec("conf_cat").model_dump(mode="json")
    for entry in ("../outside/cat.fits", str(outside / "cat.fits")):
        doc["file"] = entry
        (drop / "cat.yaml").write_text(yaml.safe_dump(doc))
        rep = ingest_path(drop / "cat.yaml", engine=survey_engine)
        assert rep.status == "rejected" and repr(entry) in rep.message and "file" in rep.message
    with survey_engine.connect() as conn:
        names = set(conn.scalars(sa.select(t.Catalogue.name)))
    assert "conf_cat" not in names
