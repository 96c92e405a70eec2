"""Build the synthetic demo database that the psql sessions in docs/sql.md were run against.

Usage::

    python docs/sql_demo.py [ADMIN_URL]     # prints the demo database URL
    psql "$URL" -f docs/sql_examples.sql    # the sessions pasted in docs/sql.md
    python docs/sql_demo.py --drop URL

The data are the test fixtures of ``tests/results_data.py`` at the paper's sample size
(~3,300 clusters, three runs with the paper's scatters, T and L_X proxies), plus proxy-mass
estimates, a bootstrap of the multiband run and a refreshed summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import bootstrap, migrate, proxy_masses, results  # noqa: E402
from tests.conftest import LOCAL_ADMIN_URL, create_database, drop_database  # noqa: E402
from tests.results_data import seed  # noqa: E402


def build(admin_url: str) -> str:
    """Create, migrate and fill the demo database; return its URL."""
    url = create_database(admin_url, "cmsqldemo")
    migrate.upgrade(url, "head")
    engine = sa.create_engine(url)
    with Session(engine) as session, session.begin():
        data = seed(session, n=3500, seed=2023, name="magneticum-like")
        proxy_masses.fit_proxy_estimates(session, catalogue_id=data.catalogue_id)
        bootstrap.store_bootstrap(
            session, run_id=data.run_ids["multi"], axis="mass", n_resamples=1000, seed=1
        )
        results.refresh(session)
    engine.dispose()
    return url


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--drop":
        drop_database(LOCAL_ADMIN_URL, sys.argv[2])
    else:
        print(build(sys.argv[1] if len(sys.argv) > 1 else LOCAL_ADMIN_URL))
