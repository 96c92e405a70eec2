"""Shared code below the science packages: cosmology, number formatting, allocator set-up.

``astro.cosmology`` turns astropy cosmologies into colossus ones; ``astro.numbers`` formats
every number of tables, messages and reports; ``astro.allocator`` (standard library only) sets
glibc's malloc tunables for the entry points before torch is loaded.

``mocks``, ``survey`` and ``models`` are independent of each other (an import-linter contract);
what all of them need lives here. It imports numpy, astropy and colossus only.
"""
