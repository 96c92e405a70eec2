"""File hashes cover every byte (they decide whether a file was already ingested)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from survey.errors import CatalogueReadError, SurveyError
from survey.files import detect_format, file_identity, sha256_path


def test_a_change_near_the_end_of_a_large_file_changes_its_hash(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, 3 * 2**20 + 12345, dtype=np.uint8)
    path = tmp_path / "big.fits"
    path.write_bytes(data.tobytes())
    before = sha256_path(path)
    changed = data.copy()
    changed[-10] ^= 0xFF  # one byte, well past the first MiB
    path.write_bytes(changed.tobytes())
    after = sha256_path(path)
    assert after != before
    # and both are the sha256 of the whole file
    assert before == hashlib.sha256(data.tobytes()).hexdigest()
    assert after == hashlib.sha256(changed.tobytes()).hexdigest()


def test_file_identity_is_the_hash_and_size_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert file_identity(path) == (hashlib.sha256(b"a,b\n1,2\n").hexdigest(), 8)
    with pytest.raises(SurveyError, match=r"^.*missing\.csv: no such file$"):
        file_identity(tmp_path / "missing.csv")
    with pytest.raises(SurveyError, match="no such file"):
        file_identity(tmp_path)  # a directory is no file


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("cat.fits", "fits"),
        ("CAT.FIT", "fits"),
        ("c.fts", "fits"),
        ("c.fits.gz", "fits"),
        ("c.fit.gz", "fits"),
        ("c.fz", "fits"),
        ("c.ecsv", "ecsv"),
        ("c.ecsv.gz", "ecsv"),
        ("c.csv", "csv"),
        ("c.CSV.gz", "csv"),
        ("c.vot", "votable"),
        ("c.vot.gz", "votable"),
        ("c.xml", "votable"),
        ("c.xml.gz", "votable"),
    ],
)
def test_the_table_format_follows_the_file_name(name: str, fmt: str) -> None:
    assert detect_format(Path("/data") / name) == fmt


def test_an_unknown_suffix_names_the_file_and_the_known_suffixes() -> None:
    with pytest.raises(CatalogueReadError) as err:
        detect_format(Path("/data/cat.parquet"))
    msg = str(err.value)
    assert msg.startswith("/data/cat.parquet: cannot tell the table format from the name; ")
    assert msg.endswith(
        "use one of the suffixes ['.fits', '.fit', '.fts', '.fits.gz', '.fit.gz', '.fz', "
        "'.csv', '.ecsv', '.vot', '.xml'] or set 'format' in the spec"
    )


# ------------------------------------------------------------------ read_table and the columns
from astropy.io import fits  # noqa: E402
from astropy.table import MaskedColumn, Table  # noqa: E402

from survey.delimited import TextOptions  # noqa: E402
from survey.errors import CatalogueColumnError  # noqa: E402
from survey.files import float_column, read_table, row_lines, str_column  # noqa: E402


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_table_refuses_a_missing_file_and_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(CatalogueReadError, match=r"nope\.csv: no such file"):
        read_table(tmp_path / "nope.csv")
    path = _csv(tmp_path, "a,b\n1,2\n")
    with pytest.raises(CatalogueReadError, match=r"unknown format 'parquet'; choose one of \["):
        read_table(path, "parquet")


def test_read_table_guesses_csv_from_the_name_and_records_each_rows_file_line(
    tmp_path: Path,
) -> None:
    # a quoted cell spanning two lines: the third row starts on line 5, not 4
    path = _csv(tmp_path, 'name,z\nA,0.1\n"B\nsecond line",0.2\nC,0.3\n')
    table = read_table(path)
    assert table.colnames == ["name", "z"] and len(table) == 3
    assert list(table["z"]) == [0.1, 0.2, 0.3]
    lines = row_lines(table)
    assert lines is not None and lines.dtype == np.int64
    assert lines.tolist() == [2, 3, 5]
    assert read_table(path, "csv")["name"][2] == "C"


def test_read_table_names_the_file_when_the_content_is_unreadable_or_empty(
    tmp_path: Path,
) -> None:
    empty = _csv(tmp_path, "a,b\n", "empty.csv")
    with pytest.raises(CatalogueReadError, match=r"empty\.csv: the table has no rows"):
        read_table(empty)
    ragged = _csv(tmp_path, "a,b\n1,2,3,4\n5\n", "ragged.csv")
    with pytest.raises(CatalogueReadError, match=r"ragged\.csv: cannot read as csv: "):
        read_table(ragged)


def test_read_table_bounds_csv_cells_before_astropy_reads_them(tmp_path: Path) -> None:
    path = _csv(tmp_path, "name,z\n" + "x" * 300 + ",0.1\n")
    assert len(read_table(path)) == 1
    with pytest.raises(
        CatalogueReadError, match=r"line 2 \(row 1\), column 'name': a cell longer than 100"
    ):
        read_table(path, max_cell_bytes=100)
    with pytest.raises(CatalogueReadError, match="more than max_text_bytes"):
        read_table(path, max_text_bytes=100)


def test_read_table_reads_delimited_text_with_its_options(tmp_path: Path) -> None:
    path = tmp_path / "ned.txt"
    path.write_text("# NED output\nname|z\nA|0.1\nB|0.2\n")
    table = read_table(path, "text", text=TextOptions(delimiter="|", comment="#"))
    assert table.colnames == ["name", "z"] and len(table) == 2
    assert row_lines(table).tolist() == [3, 4]
    # the default options (NED's "|", no comments) read a file without a preamble
    plain = tmp_path / "plain.txt"
    plain.write_text("name|z\nA|0.1\n")
    assert read_table(plain, "text")["name"][0] == "A"
    with pytest.raises(CatalogueReadError, match="header\\) has no '\\|'"):
        read_table(path, "text")  # the comment line is taken as the header
    # the limits reach the text reader
    with pytest.raises(CatalogueReadError, match="max_cell_bytes"):
        read_table(path, "text", text=TextOptions(comment="#"), max_cell_bytes=1)


def test_read_table_reads_the_fits_extension_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "cat.fits"
    one = fits.BinTableHDU(Table({"z": [0.1, 0.2]}), name="FIRST")
    two = fits.BinTableHDU(Table({"z": [0.3, 0.4, 0.5]}), name="SECOND")
    fits.HDUList([fits.PrimaryHDU(), one, two]).writeto(path)
    assert list(read_table(path)["z"]) == [0.1, 0.2]  # HDU 1 by default
    assert len(read_table(path, hdu=2)) == 3
    assert len(read_table(path, "fits", hdu="SECOND")) == 3
    assert row_lines(read_table(path)) is None  # FITS rows have no file lines
    with pytest.raises(CatalogueReadError, match=r"has 3 HDUs, the spec asks for HDU 3"):
        read_table(path, hdu=3)


def test_row_lines_only_when_there_is_one_per_row() -> None:
    table = Table({"a": [1, 2]})
    assert row_lines(table) is None
    table.meta["row_lines"] = [3]
    assert row_lines(table) is None
    table.meta["row_lines"] = [3, 7]
    assert row_lines(table).tolist() == [3, 7]


def test_float_column_masks_blanks_and_text_and_refuses_what_is_not_numbers() -> None:
    path = Path("cat.csv")
    table = Table()
    table["i"] = MaskedColumn([1, 2, 3], mask=[False, True, False])
    table["s"] = ["1.5", " ", "x"]
    table["b"] = np.array([b"2.5", b"\xff", b""], dtype="S3")
    table["words"] = ["a", "b", "c"]
    table["v"] = np.ones((3, 2))
    table["o"] = np.array([{"a": 1}, None, 3], dtype=object)
    out = float_column(table, "i", path=path)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, np.nan, 3.0])
    out[0] = 99.0  # a copy: the table keeps its value
    assert table["i"][0] == 1
    np.testing.assert_array_equal(float_column(table, "s", path=path), [1.5, np.nan, np.nan])
    np.testing.assert_array_equal(float_column(table, "b", path=path), [2.5, np.nan, np.nan])
    with pytest.raises(
        CatalogueColumnError, match=r"cat\.csv: column 'words' is text, not numbers"
    ):
        float_column(table, "words", path=path)
    with pytest.raises(
        CatalogueColumnError, match=r"column 'v' is not a scalar column \(\(3, 2\)\)"
    ):
        float_column(table, "v", path=path)
    with pytest.raises(CatalogueColumnError, match="column 'o' has non-numeric type object"):
        float_column(table, "o", path=path)


def test_float_column_of_a_masked_text_column() -> None:
    table = Table()
    table["s"] = MaskedColumn(["1", "2", "3"], mask=[False, True, False])
    np.testing.assert_array_equal(float_column(table, "s", path=Path("x")), [1.0, np.nan, 3.0])


def test_str_column_decodes_utf8_strips_and_lists_what_is_not_utf8() -> None:
    table = Table()
    table["b"] = MaskedColumn(
        np.array([b" Caf\xc3\xa9 ", b"Caf\xe9", b"x", b"A1656"], dtype="S8"),
        mask=[False, False, True, False],
    )
    table["u"] = [" Coma ", "A2029", "", "  "]
    col = str_column(table, "b")
    assert col.values == ["Café", "", "", "A1656"]
    assert col.undecodable == {1: "Caf\\xe9"}
    col = str_column(table, "u")
    assert col.values == ["Coma", "A2029", "", ""] and col.undecodable == {}


def test_read_table_checks_ecsv_with_its_own_delimiter(tmp_path: Path) -> None:
    """ECSV (space-delimited by default) gets the same row lines and cell bounds as CSV."""
    path = tmp_path / "cat.ecsv"
    Table({"name": ["A", "x" * 300], "z": [0.1, 0.2]}).write(path)
    table = read_table(path)
    assert list(table["z"]) == [0.1, 0.2]
    assert row_lines(table).tolist() == [8, 9]  # after the 6-line YAML header and the names
    with pytest.raises(
        CatalogueReadError, match=r"line 9 \(row 2\), column 'name': a cell longer than 100"
    ):
        read_table(path, max_cell_bytes=100)


# ------------------------------------------------------------------ FITS completeness
import gzip  # noqa: E402

from survey.files import _data_size, _parse_header, check_fits_complete  # noqa: E402


def _fits(path: Path, *hdus: fits.hdu.base.ExtensionHDU, primary=None) -> Path:  # noqa: ANN001
    fits.HDUList([primary or fits.PrimaryHDU(), *hdus]).writeto(path)
    return path


def test_a_gzipped_fits_file_is_read_through_and_a_corrupt_stream_is_named(tmp_path: Path) -> None:
    plain = _fits(tmp_path / "a.fits", fits.BinTableHDU(Table({"z": [0.1, 0.2]})))
    gz = tmp_path / "a.fits.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert check_fits_complete(gz) == check_fits_complete(plain) == 2
    bad = tmp_path / "b.fits.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not a deflate stream" * 10)
    with pytest.raises(
        CatalogueReadError, match=r"b\.fits\.gz: gzip stream is corrupt or truncated \("
    ):
        check_fits_complete(bad)


def test_truncated_or_corrupt_headers_are_named_by_hdu(tmp_path: Path) -> None:
    full = _fits(tmp_path / "full.fits", fits.BinTableHDU(Table({"z": [0.1, 0.2]}))).read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(full[:100])  # inside the primary header
    with pytest.raises(
        CatalogueReadError,
        match=r"cut\.fits: primary header is corrupt \(no END card before the end of the file\)",
    ):
        check_fits_complete(cut)
    cut.write_bytes(full[: 2880 + 100])  # inside the extension's header
    with pytest.raises(
        CatalogueReadError, match=r"HDU 1 header is corrupt or truncated \(no END card"
    ):
        check_fits_complete(cut)
    data_start = 2 * 2880
    cut.write_bytes(full[: data_start + 10])  # the table's 16 data bytes, 10 present
    with pytest.raises(
        CatalogueReadError,
        match=r"truncated FITS file: HDU 1 declares 16 data bytes but only 10 are present",
    ):
        check_fits_complete(cut)
    cut.write_bytes(b"PK\x03\x04 a zip archive, not FITS")
    with pytest.raises(CatalogueReadError, match=r"cut\.fits: not a FITS file \(a FITS file"):
        check_fits_complete(cut)
    header = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 1)])
    bad_size = tmp_path / "size.fits"
    bad_size.write_bytes(header.tostring().encode())
    with pytest.raises(
        CatalogueReadError, match=r"HDU 0 header has an invalid or missing size keyword \("
    ):
        check_fits_complete(bad_size)


def test_the_data_size_follows_the_fits_standard() -> None:
    """|BITPIX|/8 GCOUNT (PCOUNT + prod NAXISn) bytes (Pence et al. 2010, eqs. 1-2)."""
    assert _data_size(fits.Header()) == 0  # no NAXIS: no data
    assert _data_size(fits.Header([("BITPIX", 16), ("NAXIS", 1), ("NAXIS1", 7)])) == 14
    assert (
        _data_size(fits.Header([("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", 3), ("NAXIS2", 0)])) == 0
    )
    groups = fits.Header(
        [("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 4), ("NAXIS2", 5), ("PCOUNT", 6), ("GCOUNT", 2)]
    )
    assert _data_size(groups) == 1 * 2 * (6 + 20)
    with pytest.raises(ValueError, match=r"negative axis length \[-1\]"):
        _data_size(fits.Header([("BITPIX", 8), ("NAXIS", 1), ("NAXIS1", -1)]))


def test_one_dimensional_images_heaps_and_big_data_blocks_are_stepped_over(tmp_path: Path) -> None:
    """HDUs after a 1-D image, a table with a heap (PCOUNT > 0) and > 8 MB of data are found."""
    one_d = fits.PrimaryHDU(np.arange(10, dtype=np.int16))
    vla = fits.BinTableHDU.from_columns(
        [fits.Column(name="v", format="PJ()", array=np.array([[1, 2, 3], [4]], dtype=object))]
    )
    path = _fits(tmp_path / "mixed.fits", vla, fits.BinTableHDU(Table({"z": [1.0]})), primary=one_d)
    assert fits.getheader(path, 1)["PCOUNT"] > 0  # the heap
    assert check_fits_complete(path) == 3
    # 2880 x 2881 bytes of data: a padding to any other block length lands inside the data
    big = fits.ImageHDU(np.zeros(2880 * 2881, dtype=np.uint8))
    path = _fits(tmp_path / "big.fits", big, fits.BinTableHDU(Table({"z": [1.0]})))
    assert check_fits_complete(path) == 3


def test_a_header_spanning_blocks_ends_only_at_its_end_card(tmp_path: Path) -> None:
    """A blank card, or a card ending in 'END', before the END card does not end the header."""
    primary = fits.PrimaryHDU()
    primary.header["HISTORY"] = "the pipeline came to its END"
    primary.header.append(fits.Card("", "", ""), bottom=True)  # a blank card
    for i in range(40):  # the header now spans two 2880-byte blocks
        primary.header[f"KEY{i}"] = i
    primary.header["COMMENT"] = "cafe"
    path = tmp_path / "long.fits"
    fits.HDUList([primary, fits.BinTableHDU(Table({"z": [1.0]}))]).writeto(path)
    # a byte that is not ASCII in a comment: replaced when parsed, not taken as corruption
    path.write_bytes(path.read_bytes().replace(b"cafe", b"caf\xe9"))
    assert check_fits_complete(path) == 2


def _block(*cards: str, fill: bytes = b" ") -> bytes:
    """Header cards as the FITS Standard writes them: 80 ASCII bytes each, the last 2880-byte
    block filled with ``fill`` (blanks; some writers leave NULs after END)."""
    raw = b"".join(c.encode("ascii").ljust(80) for c in cards)
    return raw + fill * (-len(raw) % 2880)


def test_hand_written_headers_end_at_their_end_card_and_nowhere_else() -> None:
    """astropy reorders HISTORY and drops blank cards when it writes, so these headers are
    written by hand: in the first block, a HISTORY card ending in 'END' followed by a blank
    card, and a commentary card 'ENDX'; the END card in the second block. The header is both
    blocks; every key is read."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8",
             "NAXIS   =                    1", "NAXIS1  =                   10",
             "HISTORY the pipeline came to its END", "", "ENDX",
             *[f"KEY{i:<5d}=                 {i:4d}" for i in range(40)], "END"]  # fmt: skip
    raw = _block(*cards)
    assert len(raw) == 2 * 2880 and raw[47 * 80 : 48 * 80] == b"END".ljust(80)  # block 2
    assert raw.index(b"END" + b" " * 77) < 2880  # the HISTORY card + the blank card after it
    header, length = _parse_header(raw + b"0123456789".ljust(2880, b"\0"), 0)
    assert length == 2 * 2880
    assert header["NAXIS1"] == 10 and header["KEY39"] == 39 and len(header["HISTORY"]) == 1
    # END followed by NULs instead of blanks (not compliant; astropy reads it with a warning)
    short = _block(*cards[:4], "END", fill=b"\0")
    header, length = _parse_header(short + b"x" * 2880, 0)
    assert length == 2880 and header["NAXIS1"] == 10


def test_a_file_ending_with_a_big_padded_data_unit_and_a_bare_header(tmp_path: Path) -> None:
    """The last HDU's padding is stepped over exactly (2880-byte blocks, nothing after it), and a
    header whose data is wholly missing says 0 bytes are present."""
    big = fits.ImageHDU(np.zeros(2880 * 2881, dtype=np.uint8))  # 8.3 MB: 2881 blocks
    path = _fits(tmp_path / "last.fits", big)
    assert path.stat().st_size % 2880 == 0
    assert check_fits_complete(path) == 2
    raw = _fits(tmp_path / "img.fits", fits.ImageHDU(np.arange(6, dtype=np.int16))).read_bytes()
    bare = tmp_path / "bare.fits"
    bare.write_bytes(raw[: 2 * 2880])  # primary header + extension header, no data
    with pytest.raises(
        CatalogueReadError, match=r"HDU 1 declares 12 data bytes but only 0 are present"
    ):
        check_fits_complete(bare)
