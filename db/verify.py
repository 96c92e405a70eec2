"""Consistency of the database with itself and with the file store (``clustermass db verify``).

Checks, each problem one line:

* every product row's file exists in the store, matches its sha256 (and size), and is owned by
  the store (a regular file with one link: no hard link shares its inode);
* a product's path is its content-addressed name (``<sha[:2]>/<sha><suffix>``);
* runs: a fold marked done has its weights product; a run marked done has every fold done;
  a prediction's fold is a fold of its run;
* simulated catalogues: every cluster has its X-ray map product;
* no orphan products: a product of no cluster is referenced by a fold, an attribution or a run.

Notes (not problems): stored files that are writable, files in the store that no row points to.
Repairs copy a file with the recorded sha256 back to the recorded path, from candidates the
caller names (the mock file it was ingested from, the same content under another name, another
store); nothing is ever deleted.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from db import products
from db.errors import ProductIntegrityError

__all__ = [
    "Problem",
    "ProductFile",
    "product_files",
    "check_file",
    "consistency_problems",
    "restore_file",
    "store_files",
]

MAP_KINDS = ("xray_total", "xray_agn", "xray_icm", "galaxies")


@dataclass(frozen=True)
class Problem:
    """One thing wrong; ``kind`` groups the counts, ``message`` is the line printed."""

    kind: str
    message: str


@dataclass
class ProductFile:
    """A stored file and the product rows that point to it."""

    path: str
    sha256: str
    size_bytes: int
    product_ids: list[int] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        """Name the rows (at most three) that point to this file."""
        more = f" and {len(self.owners) - 3} more" if len(self.owners) > 3 else ""
        return ", ".join(self.owners[:3]) + more


_PRODUCTS_SQL = text(
    """
    SELECT p.id, p.path, p.sha256, p.size_bytes, p.kind, p.label,
           c.external_id, cat.name AS catalogue, cat.kind AS catalogue_kind, cat.source_path
    FROM products p
    LEFT JOIN clusters c ON c.id = p.cluster_id
    LEFT JOIN catalogues cat ON cat.id = c.catalogue_id
    ORDER BY p.path, p.id
    """
)


def product_files(session: Session) -> list[ProductFile]:
    """Return every stored file referenced by a product row, with its rows and known sources.

    A map of a simulated catalogue names its source: ``<catalogue source_path>/maps/<id>.fits``.
    """
    files: dict[tuple[str, str], ProductFile] = {}
    for r in session.execute(_PRODUCTS_SQL).mappings():
        pf = files.setdefault(
            (r["path"], r["sha256"]), ProductFile(r["path"], r["sha256"], r["size_bytes"])
        )
        pf.product_ids.append(r["id"])
        if r["external_id"] is not None:
            owner = f"{r['kind']} of cluster {r['external_id']!r} in catalogue {r['catalogue']!r}"
        else:
            label = f" ({r['label']})" if r["label"] else ""
            owner = f"{r['kind']} product {r['id']}{label}"
        pf.owners.append(owner)
        if (
            r["kind"] in MAP_KINDS
            and r["catalogue_kind"] == "simulation"
            and r["source_path"]
            and r["path"].endswith(".fits")
        ):
            src = Path(r["source_path"]) / "maps" / f"{r['external_id']}.fits"
            if src not in pf.sources:
                pf.sources.append(src)
    return list(files.values())


def check_file(data_dir: Path, pf: ProductFile) -> Problem | None:
    """Check one stored file: present, right sha256 and size, owned by the store."""
    path = Path(data_dir) / pf.path
    who = pf.describe()
    if not path.is_file():
        return Problem("missing", f"missing: {path} ({who})")
    actual = products.sha256_file(path)
    if actual != pf.sha256:
        return Problem(
            "sha256", f"sha256 mismatch: {path} has {actual}, recorded {pf.sha256} ({who})"
        )
    st = os.lstat(path)
    if not products.is_owned(path):
        return Problem(
            "shared",
            f"shared inode: {path} has {st.st_nlink} names (a hard link: writing another name "
            f"changes it) ({who})",
        )
    if st.st_size != pf.size_bytes:
        return Problem(
            "size", f"size mismatch: {path} is {st.st_size} bytes, recorded {pf.size_bytes} ({who})"
        )
    if not pf.path.startswith(f"{pf.sha256[:2]}/{pf.sha256}"):
        return Problem(
            "name", f"not content-addressed: {pf.path} is not named by its sha256 ({who})"
        )
    return None


def is_writable(data_dir: Path, pf: ProductFile) -> bool:
    """Whether the stored file is writable (the store keeps its files read-only)."""
    path = Path(data_dir) / pf.path
    return path.is_file() and bool(stat.S_IMODE(os.lstat(path).st_mode) & 0o222)


_CONSISTENCY = {
    "fold without weights": (
        "SELECT f.run_id, f.fold FROM model_run_folds f "
        "WHERE f.status = 'done' AND f.weights_product_id IS NULL ORDER BY 1, 2",
        "run {0} fold {1} is done but has no weights product (re-train the fold)",
    ),
    "run not finished": (
        "SELECT r.id, count(*) FROM model_runs r JOIN model_run_folds f ON f.run_id = r.id "
        "WHERE r.status = 'done' AND f.status <> 'done' GROUP BY r.id ORDER BY 1",
        "run {0} is done but {1} of its folds are not",
    ),
    "prediction of no fold": (
        "SELECT p.run_id, p.fold, count(*) FROM predictions p WHERE p.fold IS NOT NULL AND NOT "
        "EXISTS (SELECT 1 FROM model_run_folds f WHERE f.run_id = p.run_id AND f.fold = p.fold) "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        "run {0}: {2} predictions name fold {1}, which the run does not have",
    ),
    "cluster without map": (
        "SELECT cat.name, count(*) FROM clusters c JOIN catalogues cat ON cat.id = c.catalogue_id "
        "WHERE cat.kind = 'simulation' AND NOT EXISTS (SELECT 1 FROM products p WHERE "
        "p.cluster_id = c.id AND p.kind = 'xray_total') GROUP BY 1 ORDER BY 1",
        "catalogue {0!r}: {1} clusters have no X-ray map product (re-run the ingest)",
    ),
    "orphan product": (
        "SELECT p.id, p.kind, p.path FROM products p WHERE p.cluster_id IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM model_run_folds f WHERE f.weights_product_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM attributions a WHERE a.product_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM model_runs r WHERE p.meta ? 'run_id' "
        "AND r.id::text = p.meta->>'run_id') ORDER BY 1",
        "orphan product {0} ({1}, {2}): no cluster, fold, attribution or run refers to it",
    ),
}


def consistency_problems(session: Session) -> list[Problem]:
    """Return the problems between rows (runs, folds, predictions, catalogues, products)."""
    out = []
    for kind, (sql, template) in _CONSISTENCY.items():
        for row in session.execute(text(sql)):
            out.append(Problem(kind, template.format(*row)))
    return out


def restore_file(data_dir: Path, pf: ProductFile, candidates: Iterable[Path]) -> Path | None:
    """Copy the first candidate whose bytes match ``pf.sha256`` to its recorded path.

    The copy is the store's own, read-only file (replacing whatever is at the path); returns the
    candidate used, or None when none matches.
    """
    dest = Path(data_dir) / pf.path
    for cand in candidates:
        cand = Path(cand)
        if not cand.is_file():
            continue
        try:
            products.restore_copy(cand, dest, pf.sha256)
        except ProductIntegrityError:
            continue
        return cand
    return None


def store_files(data_dir: Path) -> Iterator[Path]:
    """Every file of the content-addressed tree (``<2 hex>/<file>``) under ``data_dir``."""
    root = Path(data_dir)
    if not root.is_dir():
        return
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and len(sub.name) == 2 and all(ch in "0123456789abcdef" for ch in sub.name):
            yield from sorted(p for p in sub.iterdir() if p.is_file())
