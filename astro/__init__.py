"""Shared code below the science packages: the cosmology helper and the number formatter.

``astro.cosmology`` turns astropy cosmologies into colossus ones; ``astro.numbers`` formats
every number of tables, messages and reports.

``mocks``, ``survey`` and ``models`` are independent of each other (an import-linter contract);
what all of them need lives here. It imports numpy, astropy and colossus only.
"""
