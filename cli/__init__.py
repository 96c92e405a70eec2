"""The ``clustermass`` command line: parse, print, call flows (or jobs in-process).

The top layer: nothing in the project imports it (an import-linter contract checks this).
"""
