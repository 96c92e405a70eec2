"""IAU-style names of coordinate targets (issue 17)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db import mass_catalogue
from db import survey_products as dbp
from db.session import session_scope
from survey.names import iau_name
from survey.specs import ClusterRef


def test_iau_name_truncates_each_field() -> None:
    # Coma: 12h59m48.72s +27d58m50.2s; the IAU convention truncates (48.72 -> 48.7, 50.2 -> 50)
    assert iau_name(194.9530, 27.9806) == "CM J125948.7+275850"
    # a position just below a field boundary stays in its cell (no rounding up to 60)
    assert iau_name(15 * (1 - 0.01 / 3600), -(1 - 0.4 / 3600)) == "CM J005959.9-005959"
    assert iau_name(0.0, -0.5, prefix="X") == "X J000000.0-003000"


@pytest.mark.parametrize("ra, dec", [(360.0, 0.0), (-1.0, 0.0), (10.0, 91.0), (float("nan"), 0.0)])
def test_iau_name_refuses_positions_off_the_sky(ra: float, dec: float) -> None:
    with pytest.raises(ValueError, match="give a finite"):
        iau_name(ra, dec)


def test_a_coordinate_target_gets_an_iau_name_that_is_searchable(survey_engine: Engine) -> None:
    with session_scope(survey_engine) as s:
        cl = dbp.resolve_cluster(s, ClusterRef(ra=201.5, dec=-31.25, z=0.05))
        cid, name = cl.id, cl.name
    assert name == "CM J132600.0-311500"
    with session_scope(survey_engine) as s:
        assert mass_catalogue.find_clusters_by_name(s, "cm j132600.0-311500") == [cid]
        sources = dict(
            s.execute(
                sa.text("SELECT source, name FROM v_cluster_names WHERE cluster_id = :c"),
                {"c": cid},
            ).all()
        )
    assert sources["iau"] == "CM J132600.0-311500" and "external_id" in sources
