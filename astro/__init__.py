"""Shared code below the science packages: the colossus-from-astropy cosmology helper
(``astro.cosmology``) and the one number formatter of tables and reports (``astro.numbers``).

``mocks``, ``survey`` and ``models`` are independent of each other (an import-linter contract);
what all of them need lives here. It imports numpy, astropy and colossus only.
"""
