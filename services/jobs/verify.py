"""Job of ``clustermass db verify``: check the database against itself and the file store.

The checks are in :mod:`db.verify`; this job runs them against the configured store and, with
``repair``, restores stored files from what can re-derive them: the mock file a map was ingested
from (when it still has the recorded sha256), the same bytes stored under another name, or the
same path in another store the database wrote to (table ``stores``) or in the old default store.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from db import products, stores
from db import verify as checks
from db.session import session_scope
from services.database import ready_engine
from services.settings import Settings, get_settings, legacy_data_dir

__all__ = ["VerifyReport", "verify_database"]

_RESTORABLE = ("missing", "sha256", "shared")


@dataclass
class VerifyReport:
    """What ``verify_database`` found (and, with ``repair``, fixed)."""

    data_dir: Path
    n_products: int = 0
    n_files: int = 0
    problems: list[checks.Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem remains."""
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Problems remaining, per kind."""
        return dict(Counter(p.kind for p in self.problems))


def _candidates(data_dir: Path, pf: checks.ProductFile, other_roots: list[Path]) -> list[Path]:
    dest = data_dir / pf.path
    same_bytes = sorted(p for p in (data_dir / pf.sha256[:2]).glob(f"{pf.sha256}*") if p != dest)
    elsewhere = [root / pf.path for root in other_roots]
    return [*pf.sources, *same_bytes, *elsewhere]


def verify_database(*, repair: bool = False, settings: Settings | None = None) -> VerifyReport:
    """Check every product file and the consistency of runs, catalogues and products.

    Parameters
    ----------
    repair : bool
        Restore what can be re-derived (see the module docstring) and make stored files
        read-only; what cannot be repaired stays a problem, with the places looked in.
    """
    settings = settings or get_settings()
    data_dir = Path(settings.data_dir)
    engine = ready_engine(settings)
    with session_scope(engine) as session:
        files = checks.product_files(session)
        consistency = checks.consistency_problems(session)
        here = stores.store_key(data_dir)
        roots = [Path(r.path) for r in stores.recorded_stores(session) if r.path != here]
    legacy = legacy_data_dir()
    if legacy.is_dir() and stores.store_key(legacy) != here:
        roots.append(legacy)

    report = VerifyReport(data_dir=data_dir, n_files=len(files))
    report.n_products = sum(len(pf.product_ids) for pf in files)
    writable = 0
    for pf in files:
        problem = checks.check_file(data_dir, pf)
        if problem is None:
            if checks.is_writable(data_dir, pf):
                if repair:
                    os.chmod(data_dir / pf.path, products.STORED_MODE)
                    report.repaired.append(f"made read-only: {data_dir / pf.path}")
                else:
                    writable += 1
            continue
        if repair and problem.kind in _RESTORABLE:
            cands = _candidates(data_dir, pf, roots)
            if problem.kind == "shared":  # its bytes are right: give the store its own copy
                cands.insert(0, data_dir / pf.path)
            used = checks.restore_file(data_dir, pf, cands)
            if used is not None:
                report.repaired.append(f"restored {data_dir / pf.path} from {used}")
                continue
            looked = ", ".join(str(c) for c in cands[:4]) or "nowhere: no source is known"
            more = f" and {len(cands) - 4} more" if len(cands) > 4 else ""
            report.unrepaired.append(
                f"could not repair {data_dir / pf.path}: no file with sha256 {pf.sha256} in "
                f"{looked}{more}; re-run the ingest or training that made it"
            )
        report.problems.append(problem)
    report.problems.extend(consistency)

    if writable:
        report.notes.append(
            f"{writable} stored files are writable (the store keeps them read-only; "
            "`--repair` fixes that)"
        )
    referenced = {data_dir / pf.path for pf in files}
    unreferenced = [p for p in checks.store_files(data_dir) if p not in referenced]
    if unreferenced:
        report.notes.append(
            f"{len(unreferenced)} files in the store are not referenced by any product "
            f"(e.g. {unreferenced[0]}); they are kept"
        )
    return report
