"""Text tables are read in bounded memory (issue 15 bug 9d).

astropy holds a text column as rows x its longest cell x 4 bytes: one 200 KB cell in a
1,000-row CSV cost ~1 GB. A streaming scan refuses such files first, naming the file, the row
and the column; normal files read exactly as astropy reads them.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.catalogues import read_catalogue
from survey.errors import CatalogueReadError
from survey.files import read_table
from survey.text_tables import _Scan
from tests.survey.conftest import tiny_spec

ROOT = Path(__file__).resolve().parents[2]
HEADER = "ID,RA,DEC,Z,M500,LX,NOTE\n"


def _csv(path: Path, n: int, big_row: int | None = None, big: int = 0) -> Path:
    with open(path, "w") as fh:
        fh.write(HEADER)
        for i in range(n):
            note = "x" * big if i == big_row else "ok"
            fh.write(f"CL{i:04d},{i % 360}.5,10.0,0.2,3.0,1.0,{note}\n")
    return path


def _csv_spec(**over: object):
    return tiny_spec(
        position={"ra": {"column": "RA", "unit": "deg"}, "dec": {"column": "DEC", "unit": "deg"}},
        mass={"column": "M500", "unit": "1e14 Msun", "h_convention": "none"},
        luminosity=None,
        **over,
    )


def test_oversized_cell_is_refused_quickly_naming_file_row_and_column(tmp_path: Path) -> None:
    path = _csv(tmp_path / "big.csv", 1000, big_row=500, big=200_000)
    t0 = time.perf_counter()
    with pytest.raises(CatalogueReadError) as err:
        read_catalogue(path, _csv_spec())
    assert time.perf_counter() - t0 < 2.0
    assert "big.csv: line 502 (row 501), column 'NOTE': a cell longer than 65536 bytes" in str(
        err.value
    )


def test_refusing_a_huge_cell_keeps_memory_bounded(tmp_path: Path) -> None:
    # 1,000 rows with one 4 MB cell: astropy alone would need ~16 GB. The child caps its address
    # space at 1 GiB above what it has mapped, so the old code fails there instead of swapping.
    path = _csv(tmp_path / "huge.csv", 1000, big_row=3, big=4_000_000)
    code = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        from survey.errors import CatalogueReadError
        from survey.files import read_table
        vm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, ((vm << 10) + (1 << 30), resource.RLIM_INFINITY))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_table(Path({str(path)!r}), "csv")
        except CatalogueReadError as exc:
            print("REFUSED", exc)
        except MemoryError:
            print("MEMORYERROR")
        print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    ).stdout
    assert "REFUSED" in out and "huge.csv: line 5 (row 4), column 'NOTE'" in out, out
    growth_kb = int(out.rsplit("GROWTH_KB", 1)[1])
    assert growth_kb < 32 * 1024, out  # the scan reads 1 MiB chunks


def test_the_cell_limit_is_set_by_the_spec(tmp_path: Path) -> None:
    path = _csv(tmp_path / "long.csv", 20, big_row=3, big=100_000)
    with pytest.raises(CatalogueReadError, match="long.csv: line 5 .row 4., column 'NOTE'"):
        read_catalogue(path, _csv_spec())
    parsed = read_catalogue(path, _csv_spec(max_cell_bytes=200_000))
    assert len(parsed.rows) == 20


def test_wide_text_columns_are_refused_when_astropy_would_need_too_much(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    with open(path, "w") as fh:
        fh.write("ID,NOTE\n")
        for i in range(1000):
            fh.write(f"{i},{'y' * (2000 if i == 700 else 100)}\n")
    with pytest.raises(CatalogueReadError, match=r"wide\.csv: row 701, column 'NOTE'.*8 MiB"):
        read_table(path, "csv", max_text_bytes=1 << 20)
    assert len(read_table(path, "csv")) == 1000


_CSV_TEXT = (
    "ID,NAME,Z\r\n"
    '1,"Abell, 2029",0.077\r\n'
    "\r\n"
    '2,"the ""Bullet""",0.296\r\n'
    '3,"two\nlines",0.5\r\n'
    "#5,a hash is data in a CSV,0.2\r\n"
    "4,,0.1\r\n"
)


@pytest.mark.parametrize("kind", ["csv", "ecsv_space", "ecsv_comma"])
def test_normal_text_tables_read_exactly_as_astropy_reads_them(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        path = tmp_path / "t.csv"
        path.write_text(_CSV_TEXT, newline="")
        fmt = "ascii.csv"
    else:
        path = tmp_path / "t.ecsv"
        t = Table(
            {
                "ID": [1, 2, 3],
                "NAME": ["Abell 2029", 'the "Bullet"', "x y, z"],
                "Z": [0.1, 0.2, 0.3],
            }
        )
        t["Z"].unit = "deg"
        t.write(path, delimiter="," if kind == "ecsv_comma" else " ")
        fmt = "ascii.ecsv"
    ours, theirs = read_table(path), Table.read(path, format=fmt)
    assert ours.colnames == theirs.colnames and len(ours) == len(theirs) > 2
    for name in ours.colnames:
        assert list(ours[name]) == list(theirs[name]) and ours[name].unit == theirs[name].unit


_cells = st.text(alphabet=st.sampled_from(list('ab ,"\n#')), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(_cells, min_size=1, max_size=4), min_size=1, max_size=20),
    delimiter=st.sampled_from([",", " "]),
)
def test_the_fast_scan_measures_cells_like_the_exact_scan(
    rows: list[list[str]], delimiter: str
) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["a", "b", "c", "d"])
    writer.writerows(rows)
    data = buf.getvalue().encode()
    comments = delimiter == " "  # ECSV
    whole, small, exact = (
        _Scan(Path("x"), delimiter.encode(), 1 << 20, comments=comments) for _ in "abc"
    )
    whole.feed(data)
    for i in range(0, len(data), 7):  # small chunks: every state crosses a chunk boundary
        small.feed(data[i : i + 7])
    exact._exact(data)
    for scan in (whole, small, exact):
        scan.finish(1 << 40)
    expected = (exact.row, exact.line, exact.widest)
    assert (whole.row, whole.line, whole.widest) == expected
    assert (small.row, small.line, small.widest) == expected
