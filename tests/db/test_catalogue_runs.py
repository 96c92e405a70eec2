"""Which runs a report reads: the newest finished run of each estimator, or the named ones."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db import ingest
from db import runs as db_runs
from db import tables as t
from db.errors import RunNotFoundError
from models.comparison import estimator_label, estimator_of

pytestmark = pytest.mark.db


def _run(session: Session, cat: int, key: str, kind: str, config: dict, status="done") -> int:
    run = t.ModelRun(run_key=key, kind=kind, config=config, catalogue_id=cat, seed=0,
                     fold_scheme="octant", status=status)  # fmt: skip
    session.add(run)
    session.flush()
    return run.id


def test_a_fold_ensemble_is_not_the_newest_single_network(session: Session) -> None:
    cat = ingest.upsert_catalogue(
        session, name="runs-by-estimator", kind="simulation", cosmology={}
    )
    single = _run(session, cat, "r-single", "single", {"model": {"kind": "single"}})
    multi = _run(session, cat, "r-multi", "multi", {"model": {"kind": "multi"}, "ensemble": 1})
    ens = _run(session, cat, "r-ens", "single", {"model": {"kind": "single"}, "ensemble": 3})
    gauss = {"model": {"kind": "single", "args": {"head": "gaussian"}}, "ensemble": 5}
    gaussian = _run(session, cat, "r-gauss", "single", gauss)
    _run(session, cat, "r-failed", "single", {"model": {"kind": "single"}}, status="failed")
    newer_single = _run(session, cat, "r-single-2", "single", {"model": {"kind": "single"}})

    # by kind (the default): one single-band run, the newest finished one of any variant
    by_kind = db_runs.catalogue_runs(session, cat, None)
    assert sorted(r.id for r in by_kind) == sorted([newer_single, multi])
    # by estimator: each variant is its own row
    by_estimator = db_runs.catalogue_runs(
        session, cat, None, key=lambda r: estimator_of(r.kind, r.config)
    )
    names = {estimator_of(r.kind, r.config): r.id for r in by_estimator}
    assert names == {
        "single": newer_single,
        "multi": multi,
        "single_ensemble": ens,
        "single_gaussian_ensemble": gaussian,
    }
    assert single not in names.values()
    assert estimator_label("single_gaussian_ensemble") == (
        "Single-band CNN (Gaussian head) (fold ensemble)"
    )
    with pytest.raises(ValueError, match="no network 'resnet'"):
        estimator_label("resnet_ensemble")
    # named runs are returned as named, in order, finished or not
    assert [r.id for r in db_runs.catalogue_runs(session, cat, [ens, single])] == [ens, single]
    with pytest.raises(RunNotFoundError, match="99999"):
        db_runs.catalogue_runs(session, cat, [single, 99999])
