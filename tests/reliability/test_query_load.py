"""Bounded load: concurrent `query scatter` clients against PostgreSQL on loopback.

N clients (threads, each with its own connection, as separate CLI processes would have) run the
scatter-by-bin queries back to back for a fixed time. The test requires zero errors and every
answer identical to the first; the latency percentiles are reported (printed, and attached to
the test report as properties), never asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.results_data import Seeded, seeded_database

pytestmark = [pytest.mark.db, pytest.mark.integration]

CLIENTS = 8
SECONDS = 4.0


@pytest.fixture(scope="module")
def loaded(admin_url: str) -> Iterator[tuple[str, Seeded]]:
    with seeded_database(admin_url, "cmload") as pair:
        yield pair


def test_concurrent_scatter_clients(loaded: tuple[str, Seeded], record_property) -> None:
    from db import results

    url, data = loaded
    run_id = data.run_ids["multi"]
    engine = sa.create_engine(url, pool_size=CLIENTS, max_overflow=0)
    latencies: list[float] = []
    errors: list[BaseException] = []
    answers: list[tuple] = []
    lock = threading.Lock()
    stop = time.perf_counter() + SECONDS

    def client(k: int) -> None:
        by = ("mass", "z", "mass_z")[k % 3]
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                with Session(engine) as session:
                    session.execute(sa.text("SET TRANSACTION READ ONLY"))
                    bins = results.scatter(session, run_id=run_id, by=by)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    answers.append((by, tuple((b.n, b.sigma_lnm) for b in bins)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    engine.dispose()

    assert not errors, errors[:3]
    assert len(latencies) >= CLIENTS
    for by in ("mass", "z", "mass_z"):
        distinct = {a for b, a in answers if b == by}
        assert len(distinct) == 1, f"{by}: concurrent clients got different answers"
    p50, p90, p99 = np.percentile(np.array(latencies) * 1e3, [50, 90, 99])
    rate = len(latencies) / SECONDS
    summary = (
        f"{CLIENTS} clients x {SECONDS:.0f} s: {len(latencies)} queries ({rate:.0f}/s), "
        f"0 errors, latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms"
    )
    print(summary)
    record_property("load_summary", summary)
