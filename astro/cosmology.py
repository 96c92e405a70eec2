"""colossus cosmologies built from astropy ones: the project's one conversion.

astropy is the authoritative cosmology (distances, rho_crit(z)); colossus (Diemer 2018, ApJS 239,
35) supplies the halo mass function and the concentration-mass relation, and keeps one *global*
current cosmology. Everything that needs colossus goes through :func:`colossus_from_astropy`,
which never writes colossus's disk cache (``persistence=''``), and :func:`colossus_current`,
which sets the global for the duration of a block and restores the previous one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from astropy.cosmology import FLRW

__all__ = ["colossus_from_astropy", "colossus_current"]


def colossus_from_astropy(astro: FLRW, *, sigma8: float, ns: float, name: str) -> Any:
    """Return a colossus cosmology equal to ``astro`` with the given ``sigma8`` and ``n_s``.

    Parameters
    ----------
    astro : astropy.cosmology.FLRW
        The cosmology (H0, Om0, Ob0, Tcmb0, curvature).
    sigma8, ns : float
        Power-spectrum normalisation and tilt, which astropy does not carry (Planck 2018:
        0.8102 and 0.9665).
    name : str
        colossus's name for it (``clustermass-<name>``).

    Notes
    -----
    colossus ignores massive neutrinos (Planck18 has 0.06 eV; a < 1% effect on c(M)); its
    warning about that is silenced.
    """
    from colossus.cosmology import cosmology as ccosmo  # noqa: PLC0415 - colossus is heavy

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*massive neutrinos.*")
        return ccosmo.fromAstropy(
            astro,
            sigma8=sigma8,
            ns=ns,
            cosmo_name=f"clustermass-{name}",
            persistence="",
            print_warnings=False,
        )


@contextmanager
def colossus_current(cosmo: Any) -> Iterator[Any]:
    """Make ``cosmo`` colossus's current cosmology inside the block; restore the previous one."""
    from colossus.cosmology import cosmology as ccosmo  # noqa: PLC0415 - colossus is heavy

    try:
        previous = ccosmo.getCurrent()
    except Exception:  # noqa: BLE001 - colossus raises a bare Exception when none is set
        previous = None
    ccosmo.setCurrent(cosmo)
    try:
        yield cosmo
    finally:
        if previous is not None:
            ccosmo.setCurrent(previous)
