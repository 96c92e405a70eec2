"""Shared astrophysics below the science packages: the one colossus-from-astropy cosmology helper.

``mocks``, ``survey`` and ``models`` are independent of each other (an import-linter contract);
what all of them need lives here. It imports numpy, astropy and colossus only.
"""
